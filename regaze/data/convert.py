"""Convert any supported dataset (ETH-XGaze, ST-ED/FAZE, regaze) to a regaze-layout file, optionally resized.

    convert_to_regaze(SRC, DST, size=128, val_subjects=[...], test_subjects=[...])   # `regaze data convert`

The source's framing (readers/cameras.py: camera_focal_px, camera_distance_mm, camera_framing) is written
into DST, the focal length scaled with the images when they are resized.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from regaze.data.dataset import GazeDataset, open_dataset
from regaze.data.readers.cameras import scale_camera_attrs
from regaze.data.writer import DEFAULT_COMPRESSION, RegazeWriter
from regaze.errors import RegazeError
from regaze.image_io import RESAMPLE, resize_images

__all__ = ["convert_to_regaze"]

_LABEL_KEYS = ("face_gaze", "face_head_pose", "subject", "session")
_WRITER_ATTRS = ("regaze_version", "colour_order", "size", "compression")
_PIXEL_KEYS = ("facial_landmarks",)  # per-image pixel coordinates, scaled when resizing


def _subject_attrs(subject: np.ndarray, *, val: list[int] | None, test: list[int] | None) -> dict:
    """subjects_train/val/test attrs from explicit val/test ids (train = the rest)."""
    ids = np.unique(subject)
    val_ids = np.asarray(val or [], dtype=np.int64)
    test_ids = np.asarray(test or [], dtype=np.int64)
    for name, chosen in (("val", val_ids), ("test", test_ids)):
        unknown = np.setdiff1d(chosen, ids)
        if len(unknown):
            raise RegazeError(f"{name} subjects {unknown.tolist()} are not in the data; subjects are {ids.tolist()}")
    if len(np.intersect1d(val_ids, test_ids)):
        raise RegazeError(f"subjects {np.intersect1d(val_ids, test_ids).tolist()} are in both val and test")
    return {"subjects_train": np.setdiff1d(ids, np.union1d(val_ids, test_ids)), "subjects_val": val_ids,
            "subjects_test": test_ids}


def convert_to_regaze(src, dst, *, size: int | None = None, batch_size: int = 64,
                      compression: str = DEFAULT_COMPRESSION, resample: str = "auto", split: str | None = None,
                      val_subjects: list[int] | None = None, test_subjects: list[int] | None = None,
                      overwrite: bool = False, progress: bool = True) -> Path:
    """Convert any supported dataset to a regaze-layout file at `dst` (atomic: nothing at `dst` on failure).

    Pixels are kept exactly unless `size` differs (PIL resize); images are stored RGB whatever the source
    order. Labels, subjects and sessions are copied; other per-image arrays come along (landmarks scaled
    with the images), plus `source_index` (N,) int64 when the source has none. Returns `dst`.
    """
    src, dst = Path(src), Path(dst)
    ds = open_dataset(src)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise RegazeError(f"{dst}: destination is the source; write to another path")
    if dst.exists() and not overwrite:
        raise RegazeError(f"{dst}: already exists; pass overwrite (--force) to replace it")
    size = int(size or ds.size)
    if size <= 0:
        raise RegazeError(f"--size must be positive; got {size}")
    if resample not in RESAMPLE:
        raise RegazeError(f"unknown resample '{resample}'; expected one of {RESAMPLE}")
    attrs = {k: v for k, v in ds.attrs.items() if k not in _WRITER_ATTRS}
    attrs.update({"source_path": os.fspath(src), "source_layout": ds.layout, "source_size": ds.size,
                  **scale_camera_attrs(ds.attrs, from_size=ds.size, to_size=size)})
    if split is not None:
        attrs["split"] = split
    if val_subjects or test_subjects:
        attrs.update(_subject_attrs(ds.subject, val=val_subjects, test=test_subjects))
    try:
        _copy(ds, dst, size=size, batch_size=batch_size, compression=compression, resample=resample, attrs=attrs,
              progress=progress)
    finally:
        ds.close()
    return dst


def _copy(ds: GazeDataset, dst: Path, *, size: int, batch_size: int, compression: str, resample: str,
          attrs: dict, progress: bool) -> None:
    from tqdm import tqdm

    extra_keys = [k for k in ds.array_keys if k not in _LABEL_KEYS]
    scale = size / ds.size
    with RegazeWriter(dst, size=size, attrs=attrs, compression=compression) as writer, \
            tqdm(total=len(ds), unit="img", desc=f"convert {ds.path.name}", disable=not progress) as bar:
        for start in range(0, len(ds), batch_size):
            idx = np.arange(start, min(start + batch_size, len(ds)))
            images = resize_images(ds.read_images(idx), size=size, resample=resample)  # (b, size, size, 3)
            extra = {k: ds.read_array(k, idx) for k in extra_keys}
            for k in _PIXEL_KEYS:
                if k in extra and scale != 1:
                    extra[k] = extra[k] * scale
            if "source_index" not in extra:
                extra["source_index"] = idx
            writer.append(images=images, head=ds.head[idx], subject=ds.subject[idx],
                          gaze=None if ds.gaze is None else ds.gaze[idx],
                          session=None if ds.session is None else ds.session[idx], **extra)
            bar.update(len(idx))
