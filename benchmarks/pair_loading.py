"""Does the pair stream keep a GPU fed? Pairs/s delivered by the training loop's pair stream with 0, 1
and 2 DataLoader workers, reading a 128 px file larger than the cache, beside what training steps consume,
in one run.

    python -m benchmarks.pair_loading [--quick]

- delivered: `StepBatches` (regaze/training/pair_stream.py) as the loop uses it, batch 64 (the 128 px GPU
  preset's), data.cache_mb below the file's image bytes, so every pair is read from the HDF5 file (from
  the OS page cache after the first pass: this is not a cold-disk figure); files written with lzf and
  with no compression;
- consumed on this CPU: `regaze train` steps of the CPU default recipe and of the 128 px GPU preset;
- consumed on a GPU (estimated): the preset's counted FLOPs per pair at 40 % of an H100's dense bf16 peak
  (benchmarks/gpu_recipe.py); the target is a loader that delivers >= 3x that.

Writes benchmarks/results/pair_loading.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.gpu_recipe import UTILISATION, gpu_consumption_pairs_per_s, preset_config, step_flops_per_pair, synthetic_file
from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULTS = Path(__file__).parent / "results" / "pair_loading.json"
SIZE = 128
CACHE_MB = 16  # below the training images of even the --quick file
COMPRESSIONS = ("lzf", "none")  # the writer's default; how camera crops effectively store (lzf gives up on them)


def delivered_pairs_per_s(data: Path, *, workers: int, batch_size: int, steps: int, cache_mb: int = CACHE_MB) -> float:
    """Pairs/s of the loop's pair stream over `steps` batches after the first two (worker start-up), every
    image read from the file (the training images must not fit in `cache_mb`)."""
    from regaze.data.dataset import open_dataset
    from regaze.data.pairs import PairSampler
    from regaze.training.batches import ImageSource
    from regaze.training.pair_stream import StepBatches, StepBatchMaker

    ds = open_dataset(data)
    train_idx = ds.split_indices("train")
    source = ImageSource(ds, train_idx, cache_mb=cache_mb)
    assert source.cache is None, f"the benchmark file's training images fit in cache_mb={cache_mb}"
    sampler = PairSampler(ds.gaze, ds.head, ds.subject, ds.session, indices=train_idx, seed=0)
    maker = StepBatchMaker(source=source, sampler=sampler, seed=0, rank=0, batch_size=batch_size)
    stream = StepBatches(maker, start_step=0, stop_step=steps + 2, workers=workers, prefetch=4)
    try:
        stream.next(0), stream.next(1)
        t0 = time.perf_counter()
        for step in range(2, steps + 2):
            stream.next(step)
        return steps * batch_size / (time.perf_counter() - t0)
    finally:
        stream.close()
        ds.close()


def consumed_pairs_per_s(cfg, *, data: Path, steps: int) -> float:
    """Pairs/s of `regaze train` steps on this machine (median of the logged intervals after the first)."""
    from dataclasses import replace

    from regaze.training.loop import train

    cfg = replace(cfg, max_steps=steps, log_every=1, val_every=10**9, ckpt_every=10**9, threads=0, device="cpu",
                  data=replace(cfg.data, loader_workers=0))
    with tempfile.TemporaryDirectory(prefix="regaze-consume-") as tmp:
        train(cfg, data=data, out=Path(tmp) / "run", progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "stats.jsonl").read_text().splitlines()]
    return statistics.median(r["pairs_per_s"] for r in rows if "pairs_per_s" in r and r["step"] > 1)


def main(quick: bool = False) -> dict:
    from regaze.config import TrainConfig, config_from_dict
    from regaze.model.redirector import Redirector

    subjects, per_subject, steps = (12, 60, 10) if quick else (40, 80, 40)
    preset = preset_config(SIZE)
    batch = preset.batch_size
    images = subjects * per_subject
    delivered, file_mb = {}, {}
    with tempfile.TemporaryDirectory(prefix="regaze-pairs-") as tmp:
        for compression in COMPRESSIONS:
            data = synthetic_file(Path(tmp) / f"synth128-{compression}.h5", size=SIZE, subjects=subjects,
                                  per_subject=per_subject, compression=compression)
            file_mb[compression] = round(os.path.getsize(data) / 2**20, 1)
            delivered[compression] = {f"workers{w}": round(delivered_pairs_per_s(data, workers=w, batch_size=batch, steps=steps), 1)
                                      for w in (0, 1, 2)}
        flops = step_flops_per_pair(preset, data=data)
        cpu_default = consumed_pairs_per_s(config_from_dict(TrainConfig, {"model": {"image_size": SIZE}}), data=data,
                                           steps=4 if quick else 8)
        cpu_preset = consumed_pairs_per_s(preset_config(SIZE, batch_size=8), data=data, steps=3)
    gpu = gpu_consumption_pairs_per_s(flops)
    params_m = sum(p.numel() for p in Redirector(preset.model).parameters()) / 1e6
    best = {c: max(rates.values()) for c, rates in delivered.items()}
    per_worker = {c: rates["workers1"] for c, rates in delivered.items()}
    met = {c: b >= 3 * gpu for c, b in best.items()}
    result = {
        "benchmark": "pair_loading",
        "data": {"images": images, "size": SIZE, "file_mb": file_mb, "image_mb": round(images * SIZE * SIZE * 3 / 2**20, 1),
                 "cache_mb": CACHE_MB, "note": "synthetic renders; lzf shrinks them ~3x, camera crops hardly at all "
                 "(benchmarks/results/data_loading.json), so 'none' is how camera data reads; read from the file, "
                 "served by the OS page cache after the first pass"},
        "batch_size": batch,
        "delivered_pairs_per_s": delivered,
        "consumed_pairs_per_s": {
            "this_cpu_default_recipe": round(cpu_default, 2),
            "this_cpu_gpu_preset_128": round(cpu_preset, 3),
            "h100_estimate_gpu_preset_128": round(gpu, 1),
        },
        "gpu_preset_128": {"generator_params_M": round(params_m, 1), "step_GFLOPs_per_pair": round(flops / 1e9, 2),
                           "assumed": f"{UTILISATION:.0%} of 989.4 TFLOPS (H100 SXM dense bf16)"},
        "target_pairs_per_s": round(3 * gpu, 1),
        "target_met_here": met,
        "summary": {
            "best_delivered": best,
            "best_delivered_over_cpu_step": {c: round(b / cpu_default, 1) for c, b in best.items()},
            "best_delivered_over_h100_step": {c: round(b / gpu, 2) for c, b in best.items()},
            "workers_for_3x_h100": {c: int(-(-3 * gpu // w)) for c, w in per_worker.items()},
        },
        "machine": describe(),
    }
    result["conclusion"] = "; ".join(
        f"{c}: {best[c]:.0f} pairs/s from {os.cpu_count()} cores = {best[c] / gpu:.2f}x an H100 step, target "
        + ("met" if met[c] else f"missed: this machine's CPU side is the limit; at {per_worker[c]:.0f} pairs/s per worker, "
           f"{result['summary']['workers_for_3x_h100'][c]} workers (cores) per GPU give 3x") for c in COMPRESSIONS)
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller file and fewer steps")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(json.dumps(main(quick=args.quick), indent=2))
