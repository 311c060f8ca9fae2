"""Tiny datasets in each layout, written by the tests themselves (images are small; labels random but valid)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from regaze.data.writer import write_regaze

SIZE = 16


def random_images(rng: np.random.Generator, n: int, size: int = SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8 RGB with distinct channels, so a colour swap is visible."""
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def random_angles(rng: np.random.Generator, n: int, limit_rad: float = 0.7) -> np.ndarray:
    return rng.uniform(-limit_rad, limit_rad, size=(n, 2)).astype(np.float32)


def write_ethxgaze(root: Path, *, counts: dict[int, int] | None = None, size: int = SIZE, gaze: bool = True,
                   frames_per_subject: int = 2, seed: int = 0) -> dict:
    """Write root/subjectNNNN.h5 files (BGR on disk). Returns the expected RGB images and labels in order."""
    counts = counts or {0: 6, 3: 4}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {"rgb": [], "gaze": [], "head": [], "subject": [], "frame": [], "cam": []}
    for sid, n in counts.items():
        rgb = random_images(rng, n, size)
        g, h = random_angles(rng, n), random_angles(rng, n)
        frame = (np.arange(n) % frames_per_subject).reshape(n, 1).astype(np.int32)
        cam = (np.arange(n) // frames_per_subject).reshape(n, 1).astype(np.int32)
        with h5py.File(root / f"subject{sid:04d}.h5", "w") as f:
            f["face_patch"] = rgb[..., ::-1]  # ETH-XGaze stores BGR
            if gaze:
                f["face_gaze"] = g
            f["face_head_pose"] = h
            f["face_mat_norm"] = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
            f["frame_index"] = frame
            f["cam_index"] = cam
            f["facial_landmarks"] = rng.uniform(0, size, (n, 68, 2)).astype(np.float32)
        for key, value in (("rgb", rgb), ("gaze", g), ("head", h), ("subject", np.full(n, sid)),
                           ("frame", frame[:, 0]), ("cam", cam[:, 0])):
            out[key].append(value)
    return {k: np.concatenate(v) for k, v in out.items()}


def write_sted(path: Path, *, counts: dict[str, int] | None = None, size: int = SIZE, columns: int = 4,
               seed: int = 1) -> dict:
    """Write an ST-ED/FAZE file: one group per person with pixels (RGB) and labels (n, columns)."""
    counts = counts or {"p01": 5, "p02": 3, "p10": 4}
    rng = np.random.default_rng(seed)
    out = {"rgb": [], "gaze": [], "head": [], "subject": []}
    with h5py.File(path, "w") as f:
        for sid, (name, n) in enumerate(sorted(counts.items())):
            rgb = random_images(rng, n, size)
            labels = np.concatenate([random_angles(rng, n) for _ in range(columns // 2)], axis=1)
            f[f"{name}/pixels"] = rgb
            f[f"{name}/labels"] = labels
            out["rgb"].append(rgb)
            out["gaze"].append(labels[:, 0:2])
            out["head"].append(labels[:, 2:4])
            out["subject"].append(np.full(n, sid))
    return {k: np.concatenate(v) for k, v in out.items()}


def regaze_arrays(n: int = 24, *, size: int = SIZE, subjects: int = 4, sessions_per_subject: int = 2,
                  seed: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    subject = np.arange(n) % subjects
    return {
        "images": random_images(rng, n, size),
        "gaze": random_angles(rng, n),
        "head": random_angles(rng, n),
        "subject": subject,
        "session": subject * sessions_per_subject + (np.arange(n) // subjects) % sessions_per_subject,
        "source_index": np.arange(n) + 1000,
        "synth_identity": rng.normal(size=(n, 5)).astype(np.float32),
    }


def write_regaze_file(path: Path, *, n: int = 24, size: int = SIZE, attrs: dict | None = None, **kwargs) -> dict:
    arrays = regaze_arrays(n, size=size, **kwargs)
    attrs = attrs if attrs is not None else {"split": "all", "subjects_train": np.array([0, 1]),
                                             "subjects_val": np.array([2]), "subjects_test": np.array([3])}
    write_regaze(path, attrs=attrs, **arrays)
    return arrays


def write_raw(path: Path, arrays: dict, attrs: dict | None = None) -> Path:
    """An HDF5 file with exactly these datasets (keys may contain '/') and attributes, for bad-input tests."""
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def regaze_raw(n: int = 4, size: int = SIZE, **overrides) -> dict:
    """The arrays of a minimal valid regaze file, with overrides (None removes a key)."""
    rng = np.random.default_rng(3)
    arrays = {"face_patch": random_images(rng, n, size), "face_gaze": random_angles(rng, n),
              "face_head_pose": random_angles(rng, n), "subject": np.zeros(n, dtype=np.int64)}
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


REGAZE_ATTRS = {"regaze_version": 1, "colour_order": "RGB", "size": SIZE, "split": "all"}
