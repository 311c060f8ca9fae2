"""Evaluation speed on this machine: `regaze evaluate` time for N pairs, and the independent estimator's
inference and training throughput (the figure behind "time per epoch").

    python -m benchmarks.evaluation_speed [--quick]

Measured on synthetic 64² data written to a temporary directory, with a random-weights estimator of the
default architecture (speed does not depend on the weights) and two models: the copy-the-source baseline
(the evaluation's own cost: reads, exact renders, estimator, metrics) and a random-weights Redirector of
the default ModelConfig at 64² (adds the model's cost), on torch's default thread count and on one
thread: on a shared two-core machine one thread is often several times faster. Other processes on the machine make figures
pessimistic; re-run on a quiet machine for the record. Writes benchmarks/results/evaluation_speed.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULTS = Path(__file__).parent / "results" / "evaluation_speed.json"


def _median_rate(fn, *, items: int, repeats: int) -> dict:
    fn()  # the first call picks kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"items": items, "median_s": round(t, 4), "per_s": round(items / t, 1),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4)}


def estimator_throughput(*, size: int, quick: bool, threads: int = 0) -> dict:
    """Inference images/s (batch 256, eval, no_grad) and training images/s (batch 64, AdamW, augmentation
    excluded) of the default estimator at `size`² on `threads` torch threads (0 = torch's default);
    seconds per epoch of 10,000 images."""
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        return {"threads": torch.get_num_threads(), **_estimator_throughput(size=size, quick=quick)}
    finally:
        torch.set_num_threads(default_threads)


def _estimator_throughput(*, size: int, quick: bool) -> dict:
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator

    model = GazeHeadEstimator(EstimatorConfig(image_size=size, n_subjects=100))
    x_inf = torch.rand(64 if quick else 256, 3, size, size) * 2 - 1
    repeats = 2 if quick else 5
    with torch.no_grad():
        model.eval()
        infer = _median_rate(lambda: model(x_inf), items=len(x_inf), repeats=repeats)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(64, 3, size, size) * 2 - 1
    y = torch.rand(64, 2) - 0.5

    def step():
        out = model(x)
        loss = (out["gaze"] - y).abs().mean() + (out["head"] - y).abs().mean() + out["embedding"].square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train = _median_rate(step, items=64, repeats=repeats)
    return {"size": size, "parameters": sum(p.numel() for p in model.parameters()), "inference": infer,
            "train": train, "train_s_per_epoch_of_10k_images": round(10_000 / train["per_s"], 1)}


def evaluation_time(*, root: Path, quick: bool) -> dict:
    """Seconds for `regaze evaluate` on N pairs (copy baseline and a random Redirector), with breakdown."""
    from regaze.checkpoint import save_checkpoint
    from regaze.config import ModelConfig
    from regaze.data.synth.generate import write_synthetic_dataset
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
    from regaze.evaluation.estimator.store import save_estimator
    from regaze.evaluation.protocol import evaluate_run
    from regaze.model.redirector import Redirector

    n_pairs = 16 if quick else 256
    data = write_synthetic_dataset(root / "synth64.h5", subjects=8 if quick else 20, per_subject=6 if quick else 24,
                                   per_session=3 if quick else 6, size=64, seed=0, workers=1, progress=False)
    save_estimator(root / "estimator", model=GazeHeadEstimator(EstimatorConfig(image_size=64)), record=None)
    cfg = ModelConfig(image_size=64)
    save_checkpoint(root / "run" / "checkpoints" / "best.pt",
                    {"ema": Redirector(cfg).state_dict(), "config": {"model": cfg.to_dict()}, "step": 0})
    out = {"n_pairs": n_pairs, "size": 64}
    default_threads = torch.get_num_threads()
    cases = (("copy_source", "baseline:copy", 0), ("copy_source_1_thread", "baseline:copy", 1),
             ("redirector_random_weights_1_thread", str(root / "run"), 1))
    for name, run, threads in cases:
        torch.set_num_threads(threads or default_threads)
        try:
            t0 = time.perf_counter()
            result = evaluate_run(run=run, data=data, estimator=root / "estimator", out=root / name, n_pairs=n_pairs,
                                  split="all", allow_untrained_estimator=True, progress=False)
            total = time.perf_counter() - t0
        finally:
            torch.set_num_threads(default_threads)
        out[name] = {"threads": threads or default_threads, "total_s": round(total, 2),
                     "pairs_per_s": round(n_pairs / total, 2), "breakdown": result["timing"]}
    return out


def main(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="regaze-evalbench-") as tmp:
        result = {
            "machine": describe(),
            "quick": quick,
            # torch's default thread count, and one thread: on a shared machine the second often wins
            "estimator": [estimator_throughput(size=s, quick=quick, threads=t)
                          for s in ((64,) if quick else (64, 128)) for t in (0, 1)],
            "evaluation": evaluation_time(root=Path(tmp), quick=quick),
        }
    e64 = max((e for e in result["estimator"] if e["size"] == 64), key=lambda e: e["train"]["per_s"])
    ev = result["evaluation"]
    result["summary"] = {
        "estimator64_inference_img_per_s": e64["inference"]["per_s"],
        "estimator64_train_img_per_s": e64["train"]["per_s"],
        "estimator64_train_s_per_epoch_10k": e64["train_s_per_epoch_of_10k_images"],
        "estimator64_best_threads": e64["threads"],
        "evaluate_pairs_per_s_copy": ev["copy_source"]["pairs_per_s"],
        "evaluate_pairs_per_s_copy_1_thread": ev["copy_source_1_thread"]["pairs_per_s"],
        "evaluate_pairs_per_s_redirector_1_thread": ev["redirector_random_weights_1_thread"]["pairs_per_s"],
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args()
    print(json.dumps(main(quick=args.quick)["summary"], indent=2), file=sys.stderr)
