"""Training throughput of the whole loop (`regaze train`): pairs per second at 64 and 128 px on this machine.

    python -m benchmarks.training_speed [--quick] [--threads 2]

Unlike benchmarks/model_speed.py (one isolated step on random tensors), this runs regaze.training.loop.train on a
small synthetic file written to a temporary directory: pair sampling, batch assembly, the D step, the G
step (L1 + adversarial + label + orthogonality), EMA, logging — everything a user's run pays for except
validation and checkpoints (pushed past the end). Configs: the default TrainConfig (GAN on, batch 16) and
the demo's (64 px, GAN off, batch 8), and the default at 64 px with channels_last=true and with compile=true. Figure: the median of the logged pairs/s intervals after the first
(warm-up). Other processes on the machine make figures pessimistic; run on a quiet machine for the record.
Writes benchmarks/results/training_speed.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULTS = Path(__file__).parent / "results" / "training_speed.json"


def _measure(*, data: Path, out: Path, overrides: dict, steps: int, log_every: int, threads: int) -> dict:
    from regaze.config import TrainConfig, config_from_dict
    from regaze.training.loop import train

    cfg = config_from_dict(TrainConfig, {**overrides, "max_steps": steps, "log_every": log_every, "val_every": 10**9,
                                         "ckpt_every": 10**9, "threads": threads, "seed": 0})
    train(cfg, data=data, out=out, progress=False)
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["pairs_per_s"] for r in rows if "pairs_per_s" in r][1:]  # drop the warm-up interval
    return {"pairs_per_s_median": round(statistics.median(rates), 2), "pairs_per_s_intervals": [round(r, 2) for r in rates],
            "steps": steps, "batch_size": cfg.batch_size, "gan": bool(cfg.loss.gen and cfg.loss.disc),
            "image_size": cfg.model.image_size}


def main(quick: bool = False, *, threads: int = 2) -> dict:
    from regaze.data.synth.generate import write_synthetic_dataset
    from regaze.demo.job import DEMO_TRAIN

    torch.set_num_threads(threads)
    steps, log_every = (12, 4) if quick else (60, 10)
    runs = {
        "default_64": ({"model": {"image_size": 64}}, 64),
        "demo_64": (DEMO_TRAIN, 64),
        "default_128": ({"model": {"image_size": 128}}, 128),
        # the GPU recipe's switches on this CPU (the first interval, dropped, holds torch.compile's compiling)
        "default_64_channels_last": ({"model": {"image_size": 64}, "channels_last": True}, 64),
        "default_64_compiled": ({"model": {"image_size": 64}, "compile": True}, 64),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for size in (64, 128):
            files[size] = write_synthetic_dataset(Path(tmp) / f"synth{size}.h5", subjects=12, per_subject=24, size=size,
                                                  seed=0, workers=1, progress=False)
        for name, (overrides, size) in runs.items():
            results[name] = _measure(data=files[size], out=Path(tmp) / name, overrides=overrides, steps=steps,
                                     log_every=log_every, threads=threads)
            print(f"[training_speed] {name}: {results[name]['pairs_per_s_median']} pairs/s", file=sys.stderr)
    result = {
        "benchmark": "training_speed",
        "quick": quick,
        "machine": {**describe(), "torch_threads": threads},
        "runs": results,
        "summary": {f"{k}_pairs_per_s": v["pairs_per_s_median"] for k, v in results.items()},
    }
    if not quick:
        write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    json.dump(main(quick=a.quick, threads=a.threads)["summary"], sys.stdout, indent=2)
    print()
