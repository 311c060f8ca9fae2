"""Augmentation throughput: `regaze augment` end to end (read, targets, redirect, part files, merge) against
pure inference (`model.redirect` on in-memory uint8 batches, same batch size, same conversion to and from
uint8) with the default 128² model. The pipeline overlaps reading and writing with compute; the target is
end to end >= 85 % of pure inference.

    python -m benchmarks.augment_speed [--quick]

Writes benchmarks/results/augment_speed.json. Weights are random (speed does not depend on them); the
images are smooth random fields like camera crops. Measurements alternate (inference, end to end, ...) and
the medians are reported, which damps, but does not remove, the effect of other jobs on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.data_loading import smooth_images
from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.augment.augmentation import augment, redirect_u8
from regaze.checkpoint import save_checkpoint
from regaze.config import ModelConfig
from regaze.data.writer import write_regaze
from regaze.dist import pick_device
from regaze.model.redirector import Redirector

RESULTS = Path(__file__).parent / "results" / "augment_speed.json"
TARGET_RATIO = 0.85


def _inference_images_per_s(model, images: np.ndarray, *, batch_size: int, device) -> float:
    """Pure inference over `images` (n, S, S, 3) uint8 already in memory, batches of `batch_size`."""
    u8 = torch.from_numpy(images)
    targets = np.radians(np.tile([[5.0, -10.0, 3.0, 8.0]], (batch_size, 1))).astype(np.float32)  # (B, 4)
    t0 = time.perf_counter()
    for s in range(0, len(images), batch_size):
        b = u8[s:s + batch_size]
        redirect_u8(model, b, change="both", targets=targets[:len(b)], sources=targets[:len(b)] * 0.5, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - t0)


def main(quick: bool = False) -> dict:
    sources, per_image, batch_size, repeats = (48, 2, 16, 2) if quick else (192, 4, 32, 3)
    device = pick_device("auto")
    cfg = ModelConfig()  # the default 128² model
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="augment_speed_") as tmp:
        tmp = Path(tmp)
        images = smooth_images(rng, sources, kind="photo", size=cfg.image_size)  # (n, S, S, 3)
        gaze = np.radians(rng.uniform(-30, 30, (sources, 2))).astype(np.float32)
        head = np.radians(rng.uniform(-20, 20, (sources, 2))).astype(np.float32)
        data = write_regaze(tmp / "data.h5", images=images, gaze=gaze, head=head,
                            subject=np.arange(sources) // 8, session=np.arange(sources) // 4)
        torch.manual_seed(0)
        model = Redirector(cfg).eval().requires_grad_(False).to(device)
        ckpt = save_checkpoint(tmp / "model.pt", {"ema": model.state_dict(), "config": {"model": cfg.to_dict()}, "step": 0})

        infer_images = np.concatenate([images] * per_image)  # as many images as the augmentation plans
        _inference_images_per_s(model, infer_images[:batch_size], batch_size=batch_size, device=device)  # warm-up
        infer, e2e, breakdown = [], [], []
        for r in range(repeats):
            infer.append(_inference_images_per_s(model, infer_images, batch_size=batch_size, device=device))
            t0 = time.perf_counter()
            summary = augment(run=ckpt, data=data, out=tmp / f"aug_{r}.h5", per_image=per_image, targets="kde",
                              split="all", batch_size=batch_size, chunk_size=256, progress=False)
            seconds = time.perf_counter() - t0
            n_items = summary["images"]  # written: targets out of the data's range are left out
            e2e.append(n_items / seconds)
            breakdown.append({"seconds_total": round(seconds, 3), "seconds_until_parts_done": round(summary["seconds_compute"], 3)})
            (tmp / f"aug_{r}.h5").unlink()

    med_infer, med_e2e = statistics.median(infer), statistics.median(e2e)
    ratio = med_e2e / med_infer
    result = {
        "benchmark": "augment_speed",
        "quick": quick,
        "machine": describe(),
        "device": str(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "model": cfg.to_dict(),
        "sources": sources,
        "per_image": per_image,
        "images": n_items,
        "batch_size": batch_size,
        "chunk_size": 256,
        "inference_images_per_s": {"median": med_infer, "runs": infer},
        "end_to_end_images_per_s": {"median": med_e2e, "runs": e2e},
        "end_to_end_breakdown": breakdown,
        "target_ratio": TARGET_RATIO,
        "note": "end to end includes opening the data, loading the checkpoint, hashing it, and the final merge. "
                "Figures from a shared 2-core CPU are taken under contention from other jobs.",
        "summary": {"inference_images_per_s": round(med_infer, 1), "end_to_end_images_per_s": round(med_e2e, 1),
                    "ratio": round(ratio, 3), "meets_target": ratio >= TARGET_RATIO},
    }
    write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 sources x 2, batch 16 (smoke test)")
    args = parser.parse_args()
    print(json.dumps(main(quick=args.quick)["summary"]))
