"""HDF5 inputs: opening read-only with a clear error, attributes as plain Python, validation of image, angle
and id arrays from their metadata, and `ImageBlock` (rows of a dataset that live in one HDF5 array).
Shared by the dataset interface (dataset.py), the readers (readers/) and the writer (writer.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD

__all__ = ["ImageBlock", "open_h5", "read_attrs", "check_image_array", "check_angles", "check_ids", "require_key",
           "read_pose_labels"]

_ANGLE_TOL_RAD = 1e-6  # float32(pi/2) is a hair above pi/2


@dataclass(frozen=True)
class ImageBlock:
    """Rows [start, start + count) of a dataset: `path[group/image_key]`, per-image arrays beside it."""

    path: Path
    group: str  # "" for the file root
    image_key: str
    start: int
    count: int

    def key(self, name: str) -> str:
        return f"{self.group}/{name}" if self.group else name


def open_h5(path: Path, **kwargs) -> h5py.File:
    """Open an HDF5 file read-only; RegazeError when it is missing or not HDF5."""
    path = Path(path)
    if not path.exists():
        raise RegazeError(f"{path}: no such file or directory")
    if not path.is_file() or not h5py.is_hdf5(path):
        raise RegazeError(f"{path}: not an HDF5 file (expected an .h5 file written by h5py)")
    try:
        return h5py.File(path, "r", **kwargs)
    except OSError as e:
        raise RegazeError(f"{path}: cannot open as HDF5 ({e})") from e


def read_attrs(obj) -> dict:
    """HDF5 attributes as plain Python: bytes -> str, string arrays -> list of str, scalars -> numbers."""
    out = {}
    for k, v in obj.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray) and v.dtype.kind in "OSU":
            v = [x.decode() if isinstance(x, bytes) else str(x) for x in v.reshape(-1)]
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def check_image_array(dset, *, path: Path, key: str, size: int | None = None) -> int:
    """Validate an image dataset from its metadata (no read): (N, S, S, 3) uint8. Returns S."""
    shape = tuple(dset.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise RegazeError(f"{path}: '{key}' should be images of shape (N, S, S, 3); found shape {shape}")
    if dset.dtype != np.uint8:
        raise RegazeError(f"{path}: '{key}' should be uint8 images; found dtype {dset.dtype}")
    if shape[1] != shape[2]:
        hint = " (FAZE 64x256 eye strips are not supported: regaze needs square face images)" \
            if {shape[1], shape[2]} == {64, 256} else ""
        raise RegazeError(f"{path}: '{key}' should hold square images (N, S, S, 3); found {shape}{hint}")
    if size is not None and shape[1] != size:
        raise RegazeError(f"{path}: '{key}' images are {shape[1]}x{shape[2]}, expected {size}x{size} "
                          f"like the rest of the dataset")
    return shape[1]


def check_angles(values, *, path: Path, key: str, n: int) -> np.ndarray:
    """Validate a (n, 2) pitch/yaw label array in radians -> float32 copy.

    Checks shape, floating dtype, finiteness and range |pitch| <= pi/2, |yaw| <= pi.
    """
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise RegazeError(f"{path}: '{key}' should have shape ({n}, 2) (pitch, yaw); found {arr.shape}")
    if arr.shape[0] != n:
        raise RegazeError(f"{path}: '{key}' has {arr.shape[0]} rows but there are {n} images "
                          f"(images/labels length mismatch)")
    if arr.dtype.kind != "f":
        raise RegazeError(f"{path}: '{key}' should be floating-point radians; found dtype {arr.dtype}")
    finite = np.isfinite(arr)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise RegazeError(f"{path}: '{key}' has NaN/inf values (first at row {row}: {arr[row].tolist()}); "
                          f"expected finite angles in radians")
    for col, name, limit in ((0, "pitch", MAX_PITCH_RAD), (1, "yaw", MAX_YAW_RAD)):
        bad = np.abs(arr[:, col].astype(np.float64)) > limit + _ANGLE_TOL_RAD
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise RegazeError(f"{path}: '{key}' {name} out of range at row {row}: {float(arr[row, col]):.4f} rad; "
                              f"expected |{name}| <= {limit:.4f} rad (are the labels in degrees?)")
    return arr.astype(np.float32)


def check_ids(values, *, path: Path, key: str, n: int) -> np.ndarray:
    """Validate a per-image integer id array (subject, session, frame) of length n -> int64 (n,)."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise RegazeError(f"{path}: '{key}' should have shape ({n},); found {arr.shape}")
    if arr.shape[0] != n:
        raise RegazeError(f"{path}: '{key}' has {arr.shape[0]} rows but there are {n} images "
                          f"(images/labels length mismatch)")
    if arr.dtype.kind not in "iu":
        raise RegazeError(f"{path}: '{key}' should be integer ids; found dtype {arr.dtype}")
    return arr.astype(np.int64)


def require_key(group, key: str, *, path: Path, where: str = "") -> h5py.Dataset:
    """group[key] as an HDF5 dataset, or a RegazeError naming what is there instead."""
    if key not in group or not isinstance(group[key], h5py.Dataset):
        found = sorted(group.keys())
        raise RegazeError(f"{path}: missing key '{where}{key}'; found keys {found}")
    return group[key]


def read_pose_labels(f, *, path: Path, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The ETH-XGaze-named labels of an open file: `face_head_pose` (required) and `face_gaze` (optional)
    -> head (n, 2), gaze (n, 2) or None, float32 radians, validated."""
    head = check_angles(require_key(f, "face_head_pose", path=path)[()], path=path, key="face_head_pose", n=n)
    gaze = check_angles(f["face_gaze"][()], path=path, key="face_gaze", n=n) if "face_gaze" in f else None
    return head, gaze
