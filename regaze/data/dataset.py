"""The one dataset interface over ETH-XGaze, ST-ED/FAZE and the regaze layout, and layout detection.

    ds = open_dataset(path)     # a dir of subject*.h5, one subject*.h5, an ST-ED/FAZE h5, a regaze h5
    ds.gaze, ds.head            # (N, 2) float32 radians (pitch, yaw); ds.gaze is None without gaze labels
    ds.read_images(indices)     # (n, S, S, 3) uint8 RGB, whatever the colour order on disk

Labels are small and loaded (and validated) at open time; images stay on disk and are read on demand.
HDF5 handles are opened on the first image read and reopened when the process id changes, and the object
pickles without them, so the same dataset works in the main process and in DataLoader workers.

A dataset is a list of `ImageBlock`s (h5_files.py): rows [start, start + count) of the dataset live in one
HDF5 array (one ETH-XGaze subject file, one ST-ED person group, or the whole regaze file). The readers in
`readers/` return the blocks and labels of their format; reading is shared here.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from regaze.data.h5_files import ImageBlock, open_h5
from regaze.data.readers import ethxgaze, regaze_layout, sted
from regaze.errors import RegazeError

__all__ = ["GazeDataset", "open_dataset", "detect_layout", "LAYOUTS", "SPLITS"]

LAYOUTS = ("ethxgaze", "sted", "regaze")
SPLITS = ("train", "val", "test")
_CHUNK_CACHE_BYTES = 8 * 2**20


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
            if _stored_raw_per_image(dset, first_row=int(rows[0])):
                _read_raw_chunks(dset, rows=rows, pos=pos, buf=buf)
                continue
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


def _stored_raw_per_image(dset: h5py.Dataset, *, first_row: int) -> bool:
    """Is `dset` uint8 with one image per chunk, and is the chunk of `first_row` stored as its plain bytes
    (no compression, or a compressor that gave up on it, as lzf does on camera noise)?"""
    if dset.dtype != np.uint8 or dset.chunks is None or dset.chunks != (1, *dset.shape[1:]):
        return False
    skipped = (1 << dset.id.get_create_plist().get_nfilters()) - 1  # the filter mask of a chunk stored unfiltered
    return dset.id.get_chunk_info_by_coord((first_row,) + (0,) * (dset.ndim - 1)).filter_mask == skipped


def _read_raw_chunks(dset: h5py.Dataset, *, rows: np.ndarray, pos: np.ndarray, buf: np.ndarray) -> None:
    """buf[pos[i]] = dset[rows[i]], reading each image's chunk as stored when no filter changed it: one call
    per image instead of HDF5's selection machinery, about 3x faster for 128 px crops
    (benchmarks/pair_loading.py). A chunk that a filter did change is decoded the usual way."""
    skipped = (1 << dset.id.get_create_plist().get_nfilters()) - 1  # the filter mask of a chunk stored unfiltered
    shape = dset.shape[1:]
    for row, p in zip(rows.tolist(), pos.tolist()):
        mask, data = dset.id.read_direct_chunk((row,) + (0,) * len(shape))
        if mask == skipped:
            buf[p] = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        else:
            dset.read_direct(buf, source_sel=np.s_[row:row + 1], dest_sel=np.s_[p:p + 1])


def _runs(rows: np.ndarray, pos: np.ndarray):
    """Consecutive stretches of sorted `rows` -> (start, stop, destination offset) for slice reads."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for seg_rows, seg_pos in zip(np.split(rows, breaks), np.split(pos, breaks)):
        yield int(seg_rows[0]), int(seg_rows[-1]) + 1, int(seg_pos[0])


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
    readers = {"ethxgaze": ethxgaze.read_ethxgaze, "sted": sted.read_sted, "regaze": regaze_layout.read_regaze}
    if layout in readers:
        return GazeDataset(**readers[layout](path))  # a reader returns the dataset's blocks and labels
    raise RegazeError(f"unknown layout '{layout}'; expected one of {LAYOUTS}")
