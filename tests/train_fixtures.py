"""A tiny labelled regaze file for training tests: smooth images whose content follows the angles."""
from __future__ import annotations

import numpy as np

from regaze.data.writer import write_regaze

# the smallest generator and discriminator the training tests use (TrainConfig's "model" section)
TINY_MODEL = {"image_size": 32, "k": 8, "channel_max": 32, "disc_channel_max": 32, "flat_channels": 8,
              "estimator_hidden": 16}


def blob_images(gaze: np.ndarray, head: np.ndarray, subject: np.ndarray, *, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8: a subject-coloured face disc moved by the head angles, a dark pupil
    moved by the gaze angles. Deterministic, smooth, and learnable."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    out = np.empty((len(gaze), size, size, 3), np.uint8)
    for i, (g, h, s) in enumerate(zip(gaze, head, subject)):
        colour = np.array([0.3 + 0.15 * (s % 4), 0.5, 0.8 - 0.1 * (s % 3)], np.float32)
        cx, cy = -0.4 * np.sin(h[1]), -0.4 * np.sin(h[0])
        face = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
        px, py = cx - 0.2 * np.sin(g[1]), cy - 0.2 * np.sin(g[0])
        pupil = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 0.004)
        img = 0.15 + face[..., None] * colour - 0.6 * pupil[..., None]
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


def write_tiny_dataset(path, *, subjects: int = 6, per_subject: int = 12, size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = subjects * per_subject
    subject = np.repeat(np.arange(subjects), per_subject)
    session = subject * 10 + (np.arange(n) % per_subject) // 6  # two sessions per subject
    head = np.radians(rng.uniform(-25, 25, (n, 2))).astype(np.float32)
    gaze = (head + np.radians(rng.uniform(-20, 20, (n, 2)))).astype(np.float32)
    ids = np.arange(subjects)
    attrs = {"subjects_train": ids[: subjects - 2], "subjects_val": ids[subjects - 2 : subjects - 1], "subjects_test": ids[subjects - 1 :]}
    write_regaze(path, images=blob_images(gaze, head, subject, size=size), gaze=gaze, head=head, subject=subject,
                 session=session, attrs=attrs)
    return path


def train_tiny_run(*, config: dict, data: str, out: str) -> None:
    """regaze training with the config dict `config` on `data` into the run directory `out`; called in a child
    process by fixtures (tests/isolation.call_in_child) so that a crash fails their tests, not the suite."""
    from regaze.config import TrainConfig, config_from_dict
    from regaze.training.loop import train

    train(config_from_dict(TrainConfig, config), data=data, out=out, progress=False)
