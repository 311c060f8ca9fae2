"""ST-ED / FAZE preprocessed reader (GazeCapture, MPIIFaceGaze, Columbia): one HDF5 file, one group per person.

Per group: `pixels` (N, 128, 128, 3) uint8 RGB and `labels` (N, 4) or (N, 8) =
[gaze pitch, gaze yaw, head pitch, head yaw, (left-eye gaze pitch, yaw, right-eye gaze pitch, yaw)], radians.
The subject id is the group's position in the file's (sorted) key order; the names are kept in
attrs["subject_names"]. FAZE's 64x256 eye strips are rejected: regaze needs square face images.

Framing: the files name no camera; faze_preprocess (create_hdf_files_for_sted.py) normalizes faces with
f = 500 px at 128 px, d = 600 mm (cameras.py), recorded in attrs camera_focal_px (scaled to the file's
size) and camera_distance_mm. ETH-XGaze's framing would put the eyes ~3 px off at 128 px.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from regaze.data.h5_files import ImageBlock, check_angles, check_image_array, open_h5, require_key
from regaze.data.readers.cameras import camera_attrs
from regaze.errors import RegazeError

__all__ = ["read_sted", "IMAGE_KEY"]

IMAGE_KEY = "pixels"
_LABEL_COLUMNS = (4, 8)


def _check_labels(labels, *, path: Path, key: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4|8) labels -> gaze (n, 2), head (n, 2) float32, validated."""
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.shape[1] not in _LABEL_COLUMNS:
        raise RegazeError(f"{path}: '{key}' should have shape ({n}, 4) or ({n}, 8) "
                          f"(gaze pitch, yaw, head pitch, yaw[, eye gazes]); found {arr.shape}")
    gaze = check_angles(arr[:, 0:2], path=path, key=f"{key}[:, 0:2] (gaze)", n=n)
    head = check_angles(arr[:, 2:4], path=path, key=f"{key}[:, 2:4] (head)", n=n)
    return gaze, head


def read_sted(path) -> dict:
    """An ST-ED/FAZE file -> the keyword arguments of its GazeDataset (layout 'sted')."""
    path = Path(path)
    blocks, gazes, heads, subjects, names = [], [], [], [], []
    size, start = None, 0
    with open_h5(path) as f:
        groups = [k for k in f if isinstance(f[k], h5py.Group)]
        if not groups:
            raise RegazeError(f"{path}: an ST-ED/FAZE file should hold one group per person; found no groups "
                              f"(keys {sorted(f.keys())[:10]})")
        for sid, name in enumerate(groups):
            g = f[name]
            images = require_key(g, IMAGE_KEY, path=path, where=f"{name}/")
            size = check_image_array(images, path=path, key=f"{name}/{IMAGE_KEY}", size=size)
            n = images.shape[0]
            if n == 0:
                raise RegazeError(f"{path}: empty subject: group '{name}' holds 0 images; expected at least 1")
            labels = require_key(g, "labels", path=path, where=f"{name}/")[()]
            gaze, head = _check_labels(labels, path=path, key=f"{name}/labels", n=n)
            blocks.append(ImageBlock(path=path, group=name, image_key=IMAGE_KEY, start=start, count=n))
            gazes.append(gaze)
            heads.append(head)
            subjects.append(np.full(n, sid, dtype=np.int64))
            names.append(name)
            start += n
        array_keys = sorted(set.intersection(*[
            {k for k in f[b.group] if isinstance(f[b.group][k], h5py.Dataset) and f[b.group][k].ndim >= 1
             and f[b.group][k].shape[0] == b.count and k != IMAGE_KEY} for b in blocks]))
    attrs = {"split": "all", "colour_order": "RGB", "subject_names": names, **camera_attrs("sted", size=size)}
    return dict(layout="sted", path=path, blocks=blocks, size=size, gaze=np.concatenate(gazes),
                head=np.concatenate(heads), subject=np.concatenate(subjects), session=None, attrs=attrs,
                colour_order="RGB", array_keys=array_keys)
