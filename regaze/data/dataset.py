"""The one dataset interface over ETH-XGaze, ST-ED/FAZE and the regaze layout, and layout detection.

    ds = open_dataset(path)     # a dir of subject*.h5, one subject*.h5, an ST-ED/FAZE h5, a regaze h5
    ds.gaze, ds.head            # (N, 2) float32 radians (pitch, yaw); ds.gaze is None without gaze labels
    ds.read_images(indices)     # (n, S, S, 3) uint8 RGB, whatever the colour order on disk

Labels are small and loaded (and validated) at open time; images stay on disk and are read on demand.
HDF5 handles are opened on the first image read and reopened when the process id changes, and the object
pickles without them, so the same dataset works in the main process and in DataLoader workers.

A dataset is a list of `ImageBlock`s: rows [start, start + count) of the dataset live in one HDF5 array
(one ETH-XGaze subject file, one ST-ED person group, or the whole regaze file). The readers in
`ethxgaze.py`, `sted.py` and `regaze_layout.py` build the blocks and labels; reading is shared here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD

__all__ = [
    "GazeDataset",
    "ImageBlock",
    "open_dataset",
    "detect_layout",
    "check_image_array",
    "check_angles",
    "open_h5",
    "read_attrs",
    "LAYOUTS",
    "SPLITS",
]

LAYOUTS = ("ethxgaze", "sted", "regaze")
SPLITS = ("train", "val", "test")
_ANGLE_TOL_RAD = 1e-6  # float32(pi/2) is a hair above pi/2
_CHUNK_CACHE_BYTES = 8 * 2**20


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


class GazeDataset:
    """Images (lazy) and labels (eager) of one dataset in any supported layout; see the module docstring.

    Attributes: layout, path, size (image side, pixels), colour_order (on disk; reads are always RGB),
    gaze (N, 2) float32 or None, head (N, 2) float32, subject (N,) int64, session (N,) int64 or None,
    attrs (dict), array_keys (per-image arrays readable with `read_array`).
    """

    def __init__(self, *, layout: str, path: Path, blocks: list[ImageBlock], size: int,
                 gaze: np.ndarray | None, head: np.ndarray, subject: np.ndarray,
                 session: np.ndarray | None, attrs: dict, colour_order: str, array_keys: list[str]):
        self.layout = layout
        self.path = Path(path)
        self.blocks = blocks
        self.size = int(size)
        self.gaze = gaze  # (N, 2) float32 radians or None
        self.head = head  # (N, 2) float32 radians
        self.subject = subject  # (N,) int64
        self.session = session  # (N,) int64 or None
        self.attrs = attrs
        self.colour_order = colour_order
        self.array_keys = array_keys
        self._starts = np.array([b.start for b in blocks], dtype=np.int64)
        self._handles: dict[Path, h5py.File] = {}
        self._pid = os.getpid()

    # ------------------------------------------------------------------------------ basic facts
    def __len__(self) -> int:
        return len(self.head)

    @property
    def has_gaze_labels(self) -> bool:
        return self.gaze is not None

    def __repr__(self) -> str:
        return (f"GazeDataset(layout={self.layout!r}, path='{self.path}', n={len(self)}, size={self.size}, "
                f"subjects={len(np.unique(self.subject))}, gaze_labels={self.has_gaze_labels})")

    # ----------------------------------------------------------------------- lazy, per-process handles
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def _file(self, path: Path) -> h5py.File:
        if self._pid != os.getpid():  # forked: the parent's handles are not ours to use
            self._handles = {}
            self._pid = os.getpid()
        f = self._handles.get(path)
        if f is None:
            f = open_h5(path, rdcc_nbytes=_CHUNK_CACHE_BYTES)
            self._handles[path] = f
        return f

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._handles.values():
                f.close()
        self._handles = {}

    def __enter__(self) -> "GazeDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ reading
    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise IndexError(f"{self.path}: index {bad} out of range for a dataset of {len(self)} images")
        return idx

    def _rows_by_block(self, unique_idx: np.ndarray):
        """Yield (block, local rows, positions in unique_idx) for sorted unique global indices."""
        which = np.searchsorted(self._starts, unique_idx, side="right") - 1
        for b in np.unique(which):
            pos = np.flatnonzero(which == b)
            block = self.blocks[b]
            yield block, unique_idx[pos] - block.start, pos

    def read_images(self, indices) -> np.ndarray:
        """Images at `indices` (any order, repeats allowed) -> (n, S, S, 3) uint8 RGB."""
        idx = self._check_indices(indices)
        unique_idx, inverse = np.unique(idx, return_inverse=True)
        buf = np.empty((len(unique_idx), self.size, self.size, 3), dtype=np.uint8)  # (u, S, S, 3)
        for block, rows, pos in self._rows_by_block(unique_idx):
            dset = self._file(block.path)[block.key(block.image_key)]
            for start, stop, dest in _runs(rows, pos):
                dset.read_direct(buf, source_sel=np.s_[start:stop], dest_sel=np.s_[dest:dest + stop - start])
        if self.colour_order == "BGR":
            buf = np.ascontiguousarray(buf[..., ::-1])
        if len(unique_idx) == len(idx) and np.array_equal(unique_idx, idx):
            return buf
        return buf[inverse.reshape(-1)]

    def __getitem__(self, i: int) -> dict:
        i = int(self._check_indices([i])[0])
        return self._item(i, self.read_images([i])[0])

    def __getitems__(self, indices) -> list[dict]:
        """Batched form used by torch's DataLoader: one read for the whole batch."""
        idx = self._check_indices(indices)
        images = self.read_images(idx)
        return [self._item(int(i), image) for i, image in zip(idx, images)]

    def _item(self, i: int, image: np.ndarray) -> dict:
        gaze = self.gaze[i].copy() if self.gaze is not None else np.full(2, np.nan, dtype=np.float32)
        return {
            "image": image,  # (S, S, 3) uint8 RGB
            "gaze": gaze,  # (2,) float32 radians, NaN when unlabelled
            "head": self.head[i].copy(),  # (2,) float32 radians
            "subject": int(self.subject[i]),
            "session": int(self.session[i]) if self.session is not None else -1,
            "index": i,
        }

    def read_array(self, key: str, indices=None) -> np.ndarray:
        """A per-image array stored beside the images (e.g. `source_index`, `cam_index`) -> (n, ...)."""
        if key not in self.array_keys:
            raise RegazeError(f"{self.path}: no per-image array '{key}'; available: {self.array_keys}")
        idx = np.arange(len(self)) if indices is None else self._check_indices(indices)
        if not len(idx):
            first = self.blocks[0]
            return self._file(first.path)[first.key(key)][0:0]
        unique_idx, inverse = np.unique(idx, return_inverse=True)
        parts = []  # blocks come in index order, so the parts concatenate to unique_idx's order
        for block, rows, _ in self._rows_by_block(unique_idx):
            dset = self._file(block.path)[block.key(key)]
            span = int(rows[-1]) + 1 - int(rows[0])
            if span <= 4 * len(rows):  # dense enough: one slice read, then pick
                parts.append(dset[int(rows[0]):int(rows[-1]) + 1][rows - rows[0]])
            else:  # sparse: HDF5 point selection (rows are sorted and unique)
                parts.append(dset[rows.tolist()])
        return np.concatenate(parts)[inverse.reshape(-1)]

    def split_indices(self, split: str) -> np.ndarray:
        """Indices (sorted, int64) of the images whose subject belongs to `split` ("train"|"val"|"test").

        Uses attrs["subjects_<split>"]; a file whose attrs["split"] equals `split` and that lists no subjects
        is wholly that split. Anything else is a RegazeError.
        """
        if split not in SPLITS:
            raise RegazeError(f"unknown split '{split}'; expected one of {SPLITS}")
        key = f"subjects_{split}"
        if key in self.attrs:
            members = np.asarray(self.attrs[key], dtype=np.int64).reshape(-1)
            return np.flatnonzero(np.isin(self.subject, members)).astype(np.int64)
        if self.attrs.get("split") == split:
            return np.arange(len(self), dtype=np.int64)
        present = sorted(k for k in self.attrs if k.startswith("subjects_")) or "none"
        raise RegazeError(f"{self.path}: no split information for '{split}': expected attribute '{key}' "
                          f"(subject ids) or split='{split}'; found split={self.attrs.get('split')!r}, "
                          f"subject lists: {present}")


def _runs(rows: np.ndarray, pos: np.ndarray):
    """Consecutive stretches of sorted `rows` -> (start, stop, destination offset) for slice reads."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for seg_rows, seg_pos in zip(np.split(rows, breaks), np.split(pos, breaks)):
        yield int(seg_rows[0]), int(seg_rows[-1]) + 1, int(seg_pos[0])


# ------------------------------------------------------------------------------- opening and checks
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


# ---------------------------------------------------------------------------------------- detection
def detect_layout(path) -> str:
    """'ethxgaze' | 'sted' | 'regaze' for a path, from its structure; RegazeError when none fits."""
    path = Path(path)
    if not path.exists():
        raise RegazeError(f"{path}: no such file or directory")
    if path.is_dir():
        if any(path.glob("subject*.h5")):
            return "ethxgaze"
        raise RegazeError(f"{path}: unknown layout: a directory should hold ETH-XGaze subject*.h5 files; "
                          f"found {sorted(p.name for p in path.iterdir())[:10]}")
    with open_h5(path) as f:
        if "regaze_version" in f.attrs:
            return "regaze"
        if "face_patch" in f:
            return "ethxgaze"
        groups = [k for k in f if isinstance(f[k], h5py.Group)]
        if groups and any("pixels" in f[g] for g in groups):
            return "sted"
        raise RegazeError(f"{path}: unknown layout: expected a regaze file (attribute 'regaze_version'), an "
                          f"ETH-XGaze subject file (key 'face_patch') or an ST-ED/FAZE file (groups with "
                          f"'pixels'); found keys {sorted(f.keys())[:10]}")


def open_dataset(path, *, layout: str | None = None) -> GazeDataset:
    """Open any supported dataset; the layout is detected unless given."""
    path = Path(path)
    layout = layout or detect_layout(path)
    if layout == "ethxgaze":
        from regaze.data.ethxgaze import open_ethxgaze

        return open_ethxgaze(path)
    if layout == "sted":
        from regaze.data.sted import open_sted

        return open_sted(path)
    if layout == "regaze":
        from regaze.data.regaze_layout import open_regaze

        return open_regaze(path)
    raise RegazeError(f"unknown layout '{layout}'; expected one of {LAYOUTS}")
