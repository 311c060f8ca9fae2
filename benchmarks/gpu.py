"""`make bench-gpu`: the GPU recipe measured on this machine's GPU in at most about 5 minutes.

    python -m benchmarks.gpu                  # on a CUDA machine; writes benchmarks/results/gpu_<device>.json
    python -m benchmarks.gpu --dry-run        # the same code path on the CPU with tiny models (a plumbing check)
    python -m benchmarks.gpu --no-compile     # without the torch.compile row

Records the device, then for the presets configs/xgaze128.json and configs/xgaze224.json (the GPU recipe:
wide generator, batch per GPU, bf16 autocast, channels-last, DataLoader workers streaming from the file):
training pairs/s (`regaze.training.loop.train` itself, median of the logged intervals after the first,
pairs streamed from a synthetic file with no cache) and peak memory; the same at 128 px with
torch.compile (as many steps as the eager run; its first interval holds the compiling); inference images/s of `Redirector.redirect` at batch
256 under bf16 autocast; the pair stream's delivery rate beside the training rates; and the step's
counted FLOPs with the fraction of the device's peak that the measured rate means. Without a CUDA device
it measures nothing and exits 2.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.gpu_recipe import H100_BF16_DENSE_FLOPS, preset_config, step_flops_per_pair, synthetic_file
from benchmarks.machine import describe
from benchmarks.pair_loading import delivered_pairs_per_s
from benchmarks.result_file import write_result

RESULTS = Path(__file__).parent / "results"
TINY_MODEL = {"k": 8, "channel_base": 256, "channel_max": 16, "disc_channel_base": 256, "disc_channel_max": 16,
              "flat_channels": 8, "estimator_hidden": 16}


def _train_rate(cfg, *, data: Path, device: str, seconds: float = 0.0, steps: int = 10**6) -> dict:
    """Pairs/s and peak memory of `train` on `data` for about `seconds` (from the loop's start), or `steps`."""
    from regaze.training.loop import train

    cfg = replace(cfg, max_steps=steps, max_minutes=seconds / 60, log_every=5, val_every=10**9, ckpt_every=10**9,
                  val_pairs=4, val_redirect_pairs=0, device=device, data=replace(cfg.data, cache_mb=0))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="regaze-gpu-train-") as tmp:
        t0 = time.perf_counter()
        summary = train(cfg, data=data, out=Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "stats.jsonl").read_text().splitlines()]
    rates = [r["pairs_per_s"] for r in rows if "pairs_per_s" in r]
    steady = rates[1:] or rates
    return {"pairs_per_s": round(statistics.median(steady), 1), "first_interval_pairs_per_s": round(rates[0], 1),
            "steps": summary["step"], "batch_size": cfg.batch_size, "wall_s": round(wall, 1), "compile": cfg.compile,
            "amp": cfg.amp, "channels_last": cfg.channels_last, "loader_workers": cfg.data.loader_workers,
            "peak_memory_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}


def _inference_rate(cfg, *, device: str, batch: int, seconds: float) -> dict:
    """Images/s of Redirector.redirect (gaze and head changed, the decoder's image) at `batch` under bf16."""
    from regaze.model.redirector import Redirector

    s = cfg.model.image_size
    model = Redirector(cfg.model).to(device).eval().to(memory_format=torch.channels_last)
    x = (torch.rand(batch, 3, s, s, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    angles = torch.zeros(batch, 2, device=device)
    amp = torch.autocast(device_type=device, dtype=torch.bfloat16)

    def run():
        with amp:
            model.redirect(x, gaze=angles + 0.1, head=angles - 0.1, source_gaze=angles, source_head=angles, compose="decode")

    run()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        run()
        n += 1
    if device == "cuda":
        torch.cuda.synchronize()
    rate = n * batch / (time.perf_counter() - t0)
    return {"images_per_s": round(rate, 1), "batch_size": batch, "image_size": s, "dtype": "bf16 autocast",
            "peak_memory_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}


def main(*, dry_run: bool = False, out: Path | None = None, compile_row: bool = True) -> dict:
    device = "cpu" if dry_run else "cuda"
    seconds = 3.0 if dry_run else 30.0  # per eager training measurement (timed from inside the loop)
    subjects, per_subject = (6, 12) if dry_run else (24, 60)
    model = TINY_MODEL if dry_run else {}
    shrink = {"batch_size": 4, "data.loader_workers": 1} if dry_run else {}
    t_start = time.perf_counter()
    result = {"benchmark": "gpu", "dry_run": dry_run, "machine": describe(),
              "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
              "cuda": torch.version.cuda, "gpus": torch.cuda.device_count() if device == "cuda" else 0}
    with tempfile.TemporaryDirectory(prefix="regaze-gpu-") as tmp:
        rows = {}
        for size in (128, 224):
            cfg = preset_config(size, **{f"model.{k}": v for k, v in model.items()}, **shrink)
            if dry_run:
                cfg = replace(cfg, amp="off")
            data = synthetic_file(Path(tmp) / f"synth{size}.h5", size=size, subjects=subjects, per_subject=per_subject,
                                  compression="none")
            row = {"preset": f"configs/xgaze{size}.json", "train": _train_rate(cfg, data=data, seconds=seconds, device=device)}
            row["loader_pairs_per_s"] = round(delivered_pairs_per_s(data, workers=cfg.data.loader_workers,
                                                                    batch_size=cfg.batch_size, steps=10 if dry_run else 40, cache_mb=0), 1)
            flops = step_flops_per_pair(cfg, data=data)
            row["step_GFLOPs_per_pair"] = round(flops / 1e9, 2)
            row["achieved_TFLOPS"] = round(row["train"]["pairs_per_s"] * flops / 1e12, 2)
            row["fraction_of_H100_bf16_peak"] = round(row["achieved_TFLOPS"] * 1e12 / H100_BF16_DENSE_FLOPS, 3)
            if size == 128 and compile_row:  # as many steps as the eager run made: compiling comes on top of them
                row["train_compiled"] = _train_rate(replace(cfg, compile=True), data=data, steps=row["train"]["steps"], device=device)
                row["compile_speedup"] = round(row["train_compiled"]["pairs_per_s"] / row["train"]["pairs_per_s"], 3)
            if size == 128:
                row["inference"] = _inference_rate(cfg, device=device, batch=8 if dry_run else 256, seconds=1 if dry_run else 10)
            rows[size] = row
        result["presets"] = rows
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    if out is None and not dry_run:  # a dry run writes only where it is told to
        out = RESULTS / f"gpu_{re.sub(r'[^a-z0-9]+', '_', result['device'].lower()).strip('_')}.json"
    if out is not None:
        write_result(out, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny models on the CPU: check the command, measure nothing")
    parser.add_argument("--out", type=Path, help="result file (default benchmarks/results/gpu_<device>.json; "
                        "a dry run writes none unless given)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (it compiles for a minute or two)")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("benchmarks.gpu: no CUDA device on this machine, so nothing is measured. Run `make bench-gpu` on a "
              "GPU machine (README, 'On GPUs'), or --dry-run to check the command on the CPU.", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(main(dry_run=args.dry_run, out=args.out, compile_row=not args.no_compile), indent=2))
