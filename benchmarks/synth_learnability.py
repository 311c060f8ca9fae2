"""Is gaze learnable from the synthetic pixels? A small CNN trained on <= 5,000 renders at 128 px predicts
gaze and head pose of held-out subjects; writes benchmarks/results/synth_learnability.json.

    OMP_NUM_THREADS=1 python -m benchmarks.synth_learnability [--quick] [--epochs 60] [--train-subjects 250]

CPU-only by design (the figure is about the data, not the hardware), one torch thread: renders the default
distribution (head pitch +/-30, yaw +/-45 deg, gaze within 35 deg of the head), 5,000 training images of
--train-subjects subjects (250 x 20 by default: the render budget spent on many faces rather than on many
poses of few faces, since the test is on unseen faces) and 600 test images of 24 other subjects (another
seed: other identities, sessions, poses), trains for a fixed number of epochs, reports the mean angular
errors (degrees) on the held-out subjects. Target: gaze < 3 deg, head < 2 deg.

The network and its training are the evaluation estimator's (regaze/estimator.py,
regaze/evaluation/estimator/trainer.py): a small ResNet on the face reads the head pose; two eye patches
placed by the head pose (regaze/eye_regions.py) go through a small shared network, and the gaze *in head
coordinates* (what the eyes show) is read from both eyes, the face and the head, the camera-frame gaze
composed analytically; AdamW,
cosine schedule, label-exact augmentation (photometric, and a mirror with yaw negated; no shifts: moving
the face off the image centre is another camera rotation, i.e. other labels).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe
from benchmarks.result_file import write_result
from regaze.data.synth import render
from regaze.data.synth.camera import CAMERA_DISTANCE_MM, focal_px
from regaze.data.synth.generate import sample_dataset
from regaze.evaluation.estimator.network import EstimatorConfig
from regaze.evaluation.estimator.trainer import (EstimatorTrainConfig, ImageBank, LabelledImages, train_estimator,
                                                  validate_estimator)

RESULTS = Path(__file__).parent / "results" / "synth_learnability.json"
SIZE = 128
# Eye crops placed by the renderer's camera (the framing the synthetic files record).
NETWORK = EstimatorConfig(image_size=SIZE, width=16, eye_width=16, focal_px=focal_px(SIZE),
                          distance_mm=CAMERA_DISTANCE_MM)


def _render(sample, *, batch: int = 64) -> LabelledImages:
    """Render every row of a SyntheticSample -> LabelledImages with uint8 (n, SIZE, SIZE, 3) images in memory."""
    n = len(sample.subject)
    images = np.concatenate([render(identity=sample.identity[i:i + batch], session=sample.session_params[i:i + batch],
                                    head=sample.head[i:i + batch], gaze=sample.gaze[i:i + batch], size=SIZE)
                             for i in range(0, n, batch)])  # (n, SIZE, SIZE, 3)
    return LabelledImages(images=ImageBank([images]), gaze=sample.gaze.astype(np.float32),
                          head=sample.head.astype(np.float32), subject=sample.subject.astype(np.int64))


def _subset(data: LabelledImages, n: int) -> LabelledImages:
    idx = np.arange(min(n, len(data)))
    return LabelledImages(images=ImageBank([data.images.get(idx)]), gaze=data.gaze[idx], head=data.head[idx],
                          subject=data.subject[idx])


def _rounded(metrics: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()}


def main(quick: bool = False, *, epochs: int = 60, n_train: int = 5000, train_subjects: int = 250,
         seed: int = 0) -> dict:
    torch.set_num_threads(1)
    if quick:
        epochs, n_train, train_subjects = 2, 600, 30
    if not 1 <= train_subjects <= n_train:
        raise SystemExit(f"--train-subjects must be in 1..{n_train}")
    per_subject = max(1, n_train // train_subjects)
    test_subjects, test_per_subject = (24, 25) if not quick else (6, 20)
    t0 = time.time()
    train = _render(sample_dataset(subjects=train_subjects, per_subject=per_subject, per_session=5, seed=seed,
                                   splits=(1, 0, 0)))
    test = _render(sample_dataset(subjects=test_subjects, per_subject=test_per_subject, per_session=5,
                                  seed=seed + 1000, splits=(1, 0, 0)))
    render_s = time.time() - t0

    tc = EstimatorTrainConfig(epochs=epochs, seed=seed, threads=1)
    t_train = time.time()
    model, record = train_estimator(train=train, val=None, config=NETWORK, train_config=tc, progress=False,
                                    log=lambda msg: print(msg, flush=True))
    train_s = time.time() - t_train
    metrics = validate_estimator(model, test)
    train_metrics = validate_estimator(model, _subset(train, 600))
    summary = {"gaze_error_deg": metrics["gaze_err_deg"], "head_error_deg": metrics["head_err_deg"],
               "gaze_error_median_deg": metrics["gaze_err_median_deg"],
               "head_error_median_deg": metrics["head_err_median_deg"]}
    result = {
        "benchmark": "synth_learnability",
        "command": "OMP_NUM_THREADS=1 python -m benchmarks.synth_learnability" + (
            " --quick" if quick else f" --epochs {epochs} --train-subjects {train_subjects}"),
        "quick": quick,
        "summary": {**_rounded(summary), "target_gaze_deg": 3.0, "target_head_deg": 2.0,
                    "passes": summary["gaze_error_deg"] < 3.0 and summary["head_error_deg"] < 2.0},
        "train_set_error": _rounded(train_metrics),
        "data": {"size": SIZE, "train_images": len(train), "train_subjects": train_subjects,
                 "test_images": len(test), "test_subjects": test_subjects, "held_out": "other identities",
                 "ranges_deg": {"head_pitch": 30, "head_yaw": 45, "gaze_cone": 35}},
        "network": {"class": "regaze.evaluation.estimator.network.GazeHeadEstimator", "config": NETWORK.__dict__,
                    "targets": "head (pitch, yaw) from the face; gaze in head coordinates from eye crops "
                               "placed by the head pose + face; camera gaze composed",
                    "parameters": sum(p.numel() for p in model.parameters())},
        "training": {"epochs": epochs, "steps": record["steps"], "batch": tc.batch_size, "lr": tc.lr,
                     "weight_decay": tc.weight_decay, "train_seconds": round(train_s, 1),
                     "render_seconds": round(render_s, 1),
                     "images_per_second": round(record["steps"] * tc.batch_size / train_s, 1),
                     "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                                 for h in record["history"]]},
        "machine": describe(),
    }
    if not quick:
        write_result(RESULTS, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 images, 2 epochs; writes nothing")
    parser.add_argument("--epochs", type=int, default=60, help="passes over the 5,000 training renders (default 60)")
    parser.add_argument("--train-subjects", type=int, default=250,
                        help="identities the 5,000 training renders are spread over (default 250, i.e. 20 each)")
    args = parser.parse_args()
    print(json.dumps(main(quick=args.quick, epochs=args.epochs, train_subjects=args.train_subjects)["summary"],
                     indent=2))
