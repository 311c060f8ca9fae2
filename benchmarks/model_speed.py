"""Model speed on the CPU: one training step of the pair method, and inference.

    python -m benchmarks.model_speed [--quick] [--size 128] [--threads 2]

Training step (the measurement behind the ">= 23 pairs/s" target, 5x ST-ED's 4.7 pairs/s on this machine
kind): B = 4 pairs at 128 px; encode 2B images, rotate and swap the target features (claim 5), decode B,
discriminator on the B outputs, backward of L1 + adversarial + label + orthogonality terms, Adam step on
the generator and on the discriminator. Inference: encode + decode, eval mode, no_grad, batch 16.

Each figure is measured `repeats` times (10 steps each); min / median / max over the repeats are reported,
pairs (images) per second, and the rate of the fastest single step. Other processes on the machine make
figures pessimistic; re-run on a quiet machine for the record.
Writes benchmarks/results/model_speed.json with the machine description, parameters and FLOPs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.commands.model import model_summary
from regaze.config import ModelConfig
from regaze.model import Discriminator, Redirector

RESULTS = Path(__file__).parent / "results" / "model_speed.json"
TARGET_TRAIN_PAIRS_PER_S = 23.0
TARGET_INFER_IMAGES_PER_S = 130.0


def _train_step_fn(cfg: ModelConfig, *, batch_size: int):
    g = Redirector(cfg)
    d = Discriminator(**cfg.discriminator_kwargs())
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)  # as regaze/train.py
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)
    gen = torch.Generator().manual_seed(0)
    s, b = cfg.image_size, batch_size
    x = torch.rand(2 * b, 3, s, s, generator=gen) * 2 - 1  # (2B, 3, S, S)
    angles = (torch.rand(2 * b, 4, generator=gen) - 0.5)  # (2B, 4) gaze, head radians
    cas = g.separation

    def step():
        feats = g.encode(x)
        fa, fb = feats.split(b)
        gaze_sel, head_sel = cas.choose_target(b, mode="random", generator=gen)
        fba = cas.rotate_features(fb, source_gaze=angles[b:, :2], source_head=angles[b:, 2:],
                                  target_gaze=angles[:b, :2], target_head=angles[:b, 2:], gaze_sel=gaze_sel, head_sel=head_sel)
        out = g.decode(cas.swap(into=fa, from_=fba, gaze_sel=gaze_sel, head_sel=head_sel), base=x[b:], base_feats=fb)  # (B, 3, S, S)
        logits = d(out)
        z_gh = torch.cat([feats.z_gaze, feats.z_head], dim=1)  # (2B, 2K, 3)
        loss = (
            (out - x[:b]).abs().mean()
            + F.softplus(-logits).mean()
            + (feats.z_id * z_gh).abs().mean()
            + (feats.gaze_est - angles[:, :2]).abs().mean()
            + (feats.head_est - angles[:, 2:]).abs().mean()
        )
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        opt_d.step()

    return step


def _infer_fn(cfg: ModelConfig, *, batch_size: int):
    g = Redirector(cfg).eval()
    x = torch.rand(batch_size, 3, cfg.image_size, cfg.image_size) * 2 - 1

    def step():
        with torch.no_grad():
            g(x)

    return step


def _rates(step, *, items_per_step: int, steps: int, repeats: int, warmup: int) -> dict:
    """Items/s of each repeat of `steps` steps (min / median / max), and of the fastest single step (the
    closest to a quiet machine when other processes share the cores)."""
    for _ in range(warmup):
        step()
    rates, best = [], float("inf")
    for _ in range(repeats):
        t_repeat = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        rates.append(items_per_step * steps / (time.perf_counter() - t_repeat))
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates), "best_step": items_per_step / best, "runs": rates}


def measure(cfg: ModelConfig, *, threads: int = 2, train_batch: int = 4, infer_batch: int = 16, quick: bool = False) -> dict:
    """Training pairs/s and inference images/s (min / median / max over repeats) for `cfg`."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    steps, repeats, warmup = (3, 2, 2) if quick else (10, 5, 3)
    train = _rates(_train_step_fn(cfg, batch_size=train_batch), items_per_step=train_batch, steps=steps, repeats=repeats, warmup=warmup)
    infer = _rates(_infer_fn(cfg, batch_size=infer_batch), items_per_step=infer_batch, steps=steps, repeats=repeats, warmup=warmup)
    by_batch = {}  # latency-bound (1) and throughput-bound (64) inference
    for b in (1, 64):
        n = max(2, steps * infer_batch // b)  # about the same images per repeat as the batch-16 figure
        by_batch[str(b)] = _rates(_infer_fn(cfg, batch_size=b), items_per_step=b, steps=n, repeats=repeats, warmup=min(warmup, n))
    return {
        "train_pairs_per_s": train,
        "infer_images_per_s": infer,
        "infer_images_per_s_by_batch": by_batch,
        "train_batch_pairs": train_batch,
        "infer_batch_images": infer_batch,
        "threads": threads,
    }


def main(quick: bool = False, *, size: int = 128, threads: int = 2) -> dict:
    cfg = ModelConfig(image_size=size)
    speed = measure(cfg, threads=threads, quick=quick)
    summary = model_summary(cfg, batch_size=16, time_forward=False)
    result = {
        "benchmark": "model_speed",
        "quick": quick,
        "machine": {**describe(), "torch_threads": threads},
        "config": cfg.to_dict(),
        "parameters": summary["parameters"],
        "flops_per_image": summary["flops_per_image"],
        **speed,
        "targets": {"train_pairs_per_s": TARGET_TRAIN_PAIRS_PER_S, "infer_images_per_s": TARGET_INFER_IMAGES_PER_S},
        "summary": {
            "train_pairs_per_s_min_median": [round(speed["train_pairs_per_s"][q], 1) for q in ("min", "median")],
            "infer_images_per_s_min_median": [round(speed["infer_images_per_s"][q], 1) for q in ("min", "median")],
            "infer_images_per_s_median_batch_1_64": [round(speed["infer_images_per_s_by_batch"][b]["median"], 1) for b in ("1", "64")],
            "generator_params_M": round(summary["parameters"]["generator"] / 1e6, 2),
            "generator_GFLOPs_per_image": round(summary["flops_per_image"]["generator"] / 1e9, 3),
        },
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    r = main(quick=a.quick, size=a.size, threads=a.threads)
    json.dump(r["summary"], sys.stdout, indent=2)
    print()
