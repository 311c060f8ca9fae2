"""ONNX Runtime (CPU) against PyTorch eager on the exported redirection graph, in one run.

    python -m benchmarks.onnx_speed [--quick] [--threads 2]

Both run the same computation, regaze.export.RedirectionGraph (encode, rotate gaze and head, decode, eye
composite; every switch on), PyTorch in eval mode under no_grad, ONNX Runtime on the file `regaze export`
writes (opset 17, its default graph optimizations, CPU execution provider), each with `threads` intra-op
threads (and one inter-op thread for ONNX Runtime). Models: the shipped reference model at 64 px (a warping
decoder), and a model of the default ModelConfig at 128 px with random weights (speed does not depend on the
weights). Batch sizes 1, 16 and 64; images/s as min / median / max over the repeats. Other processes on the
machine make figures pessimistic; re-run on a quiet machine for the record.
Writes benchmarks/results/onnx_speed.json with the machine description.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.config import ModelConfig
from regaze.export import INPUT_NAMES, RedirectionGraph, example_inputs, onnx_session, run_onnx
from regaze.export.onnx_graph import DEFAULT_OPSET, onnx_bytes
from regaze.model import Redirector
from regaze.model.pretrained import load_redirector, reference_checkpoint

RESULTS = Path(__file__).parent / "results" / "onnx_speed.json"
BATCH_SIZES = (1, 16, 64)


def _models() -> dict:
    """name -> (Redirector in eval mode, what it is)."""
    ref = reference_checkpoint()
    if ref is not None:
        small, about = load_redirector(ref)[0], f"the shipped reference model ({ref.name})"
    else:  # an install without the reference: the same architecture, random weights
        small = Redirector(ModelConfig(image_size=64, decoder_mode="warp")).eval()
        about = "ModelConfig(image_size=64, decoder_mode='warp'), random weights (no reference model here)"
    torch.manual_seed(0)
    large = Redirector(ModelConfig(image_size=128)).eval()
    return {"64px": (small, about), "128px": (large, "ModelConfig(image_size=128), random weights")}


def _rates(step, *, batch_size: int, steps: int, repeats: int, warmup: int) -> dict:
    """Images/s of each repeat of `steps` calls (min / median / max)."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch_size * steps / (time.perf_counter() - t0))
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates), "runs": rates}


def measure(model: Redirector, *, threads: int, batch_sizes=BATCH_SIZES, images_per_repeat: int = 64,
            repeats: int = 5, warmup: int = 2) -> dict:
    """Images/s of PyTorch eager and ONNX Runtime at each batch size, and their largest output difference."""
    torch.set_num_threads(threads)
    graph = RedirectionGraph(model.requires_grad_(False).eval())
    session = onnx_session(onnx_bytes(model, opset=DEFAULT_OPSET), threads=threads)
    out = {}
    for b in batch_sizes:
        inputs = example_inputs(batch_size=b, image_size=model.config.image_size, seed=b)
        inputs.update(change_gaze=torch.ones(b, 1), change_head=torch.ones(b, 1))  # the whole graph's work
        feed = {n: inputs[n].numpy() for n in INPUT_NAMES}
        args = tuple(inputs[n] for n in INPUT_NAMES)

        def torch_step():
            with torch.no_grad():
                return graph(*args)

        steps = max(1, images_per_repeat // b)
        eager = _rates(torch_step, batch_size=b, steps=steps, repeats=repeats, warmup=warmup)
        ort = _rates(lambda: session.run(None, feed), batch_size=b, steps=steps, repeats=repeats, warmup=warmup)
        diff = max(float(np.abs(o - e.numpy()).max()) for o, e in zip(run_onnx(session, inputs).values(), torch_step()))
        out[str(b)] = {"torch_images_per_s": eager, "onnxruntime_images_per_s": ort,
                       "speedup_median": ort["median"] / eager["median"], "max_abs_diff": diff}
    return out


def main(quick: bool = False, *, threads: int = 2) -> dict:
    import onnxruntime

    plan = dict(batch_sizes=(1, 16), images_per_repeat=16, repeats=1, warmup=1) if quick else {}
    models, results = _models(), {}
    for name, (model, about) in models.items():
        results[name] = {"model": about, "image_size": model.config.image_size,
                         "parameters": sum(p.numel() for p in model.parameters()),
                         "by_batch": measure(model, threads=threads, **plan)}
    result = {
        "benchmark": "onnx_speed",
        "quick": quick,
        "machine": {**describe(), "torch_threads": threads, "onnxruntime": onnxruntime.__version__},
        "threads": threads,
        "opset": DEFAULT_OPSET,
        "workload": "RedirectionGraph: encode, rotate gaze and head, decode, eye composite (all switches on)",
        "models": results,
        "summary": {f"{name}_images_per_s_median_torch_onnxruntime": {
            b: [round(r["torch_images_per_s"]["median"], 1), round(r["onnxruntime_images_per_s"]["median"], 1)]
            for b, r in res["by_batch"].items()} for name, res in results.items()},
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both runtimes (default 2)")
    a = parser.parse_args()
    r = main(quick=a.quick, threads=a.threads)
    json.dump(r["summary"], sys.stdout, indent=2)
    print()
