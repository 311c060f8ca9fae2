"""ETH-XGaze reader: a directory of `subjectXXXX.h5` files, or one of them (DESIGN §3).

Per subject file: `face_patch` (N, 224, 224, 3) uint8 **BGR** (converted to RGB on read), `face_gaze` (N, 2)
(absent in the test split), `face_head_pose` (N, 2), and optionally `face_mat_norm` (N, 3, 3),
`frame_index` (N, 1), `cam_index` (N, 1), `facial_landmarks` (N, 68, 2). Only `face_patch` and
`face_head_pose` are required. The subject id comes from the file name.

Sessions: the views of one frame (equal `frame_index`, different `cam_index`) share the instant, light and
background, so `session` is the frame made unique across subjects (dense ids 0..F-1).

Framing: the files name no camera; ETH-XGaze normalizes faces with f = 960 px at 224 px, d = 600 mm
(cameras.py), recorded in attrs camera_focal_px (scaled to the file's size) and camera_distance_mm.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import h5py
import numpy as np

from regaze.data.h5_files import ImageBlock, check_ids, check_image_array, open_h5, read_pose_labels, require_key
from regaze.data.readers.cameras import camera_attrs
from regaze.errors import RegazeError

__all__ = ["read_ethxgaze", "subject_files", "IMAGE_KEY"]

IMAGE_KEY = "face_patch"
_SUBJECT_RE = re.compile(r"^subject(\d+)\.h5$")
_LABEL_KEYS = ("face_patch", "face_gaze", "face_head_pose")


def subject_files(path: Path) -> list[tuple[int, Path]]:
    """(subject id, file) for a directory of subject*.h5 or a single subject file, sorted by id."""
    path = Path(path)
    files = sorted(path.glob("subject*.h5")) if path.is_dir() else [path]
    if not files:
        raise RegazeError(f"{path}: no ETH-XGaze subject*.h5 files in this directory")
    out = []
    for f in files:
        m = _SUBJECT_RE.match(f.name)
        if not m:
            raise RegazeError(f"{f}: ETH-XGaze file names should be subjectNNNN.h5 (the subject id is read "
                              f"from the name); found '{f.name}'")
        out.append((int(m.group(1)), f))
    return sorted(out)


def _read_subject(file: Path, *, size: int | None) -> dict:
    """Labels and metadata of one subject file, validated (no image read)."""
    with open_h5(file) as f:
        images = require_key(f, IMAGE_KEY, path=file)
        s = check_image_array(images, path=file, key=IMAGE_KEY, size=size)
        n = images.shape[0]
        if n == 0:
            raise RegazeError(f"{file}: empty subject: '{IMAGE_KEY}' holds 0 images; expected at least 1")
        head, gaze = read_pose_labels(f, path=file, n=n)
        frame = None
        if "frame_index" in f:
            frame = check_ids(f["frame_index"][()], path=file, key="frame_index", n=n)
        extra = sorted(k for k in f if k not in _LABEL_KEYS and isinstance(f[k], h5py.Dataset)
                       and f[k].ndim >= 1 and f[k].shape[0] == n)
    return {"size": s, "n": n, "head": head, "gaze": gaze, "frame": frame, "extra": extra}


def read_ethxgaze(path) -> dict:
    """An ETH-XGaze directory or subject file -> the keyword arguments of its GazeDataset (layout 'ethxgaze')."""
    path = Path(path)
    files = subject_files(path)
    blocks, parts, size, start = [], [], None, 0
    for sid, file in files:
        part = _read_subject(file, size=size)
        size = part["size"]
        blocks.append(ImageBlock(path=file, group="", image_key=IMAGE_KEY, start=start, count=part["n"]))
        parts.append((sid, part))
        start += part["n"]

    with_gaze = [file.name for (_, file), (_, p) in zip(files, parts) if p["gaze"] is not None]
    if with_gaze and len(with_gaze) != len(files):
        without = [file.name for (_, file), (_, p) in zip(files, parts) if p["gaze"] is None]
        raise RegazeError(f"{path}: 'face_gaze' is present in {len(with_gaze)} subject files but missing in "
                          f"{without[:5]}; expected all (train split) or none (test split)")
    gaze = np.concatenate([p["gaze"] for _, p in parts]) if with_gaze else None
    if gaze is None:
        warnings.warn(f"{path}: no 'face_gaze' labels (ETH-XGaze test split?): images and head pose are "
                      f"readable, gaze is NaN and has_gaze_labels is False", stacklevel=3)
    head = np.concatenate([p["head"] for _, p in parts])
    subject = np.concatenate([np.full(p["n"], sid, dtype=np.int64) for sid, p in parts])
    session = None
    if all(p["frame"] is not None for _, p in parts):
        frame = np.concatenate([p["frame"] for _, p in parts])
        _, session = np.unique(np.stack([subject, frame], axis=1), axis=0, return_inverse=True)
        session = session.reshape(-1).astype(np.int64)
    extra_sets = [set(p["extra"]) for _, p in parts]
    array_keys = sorted(set.intersection(*extra_sets) | {"face_head_pose"} | ({"face_gaze"} if with_gaze else set()))
    attrs = {
        "split": "all",
        "colour_order": "BGR",
        "subject_files": [file.name for _, file in files],
        **camera_attrs("ethxgaze", size=size),
    }
    return dict(layout="ethxgaze", path=path, blocks=blocks, size=size, gaze=gaze, head=head,
                subject=subject, session=session, attrs=attrs, colour_order="BGR", array_keys=array_keys)
