"""The regaze layout (ours; DESIGN §3): reader and converter here, writer in `writer.py` (re-exported).

One HDF5 file with ETH-XGaze key names: `face_patch` (N, S, S, 3) uint8 in the order of attribute
`colour_order` ("RGB" when we write it), `face_gaze` (N, 2) (optional), `face_head_pose` (N, 2),
`subject` (N,), optional `session` (N,) (images sharing light and background), and any extra per-image
arrays (provenance such as `source_index`, synthetic render parameters). File attributes: `regaze_version`,
`colour_order`, `size`, `split` and, where known, `subjects_train` / `subjects_val` / `subjects_test`.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from regaze.data.dataset import (GazeDataset, ImageBlock, check_angles, check_ids, check_image_array, open_dataset,
                                 open_h5, read_attrs, require_key)
from regaze.data.writer import DEFAULT_COMPRESSION, LAYOUT_VERSION, RegazeWriter, write_regaze
from regaze.errors import RegazeError

__all__ = ["open_regaze", "convert_to_regaze", "resize_images", "RegazeWriter", "write_regaze", "LAYOUT_VERSION",
           "IMAGE_KEY", "RESAMPLE"]

IMAGE_KEY = "face_patch"


def _check_header(attrs: dict, *, path: Path) -> str:
    """Version and colour order from the file attributes -> colour order."""
    try:
        version = int(attrs["regaze_version"])
    except (TypeError, ValueError) as e:
        raise RegazeError(f"{path}: attribute 'regaze_version' should be an integer; "
                          f"found {attrs['regaze_version']!r}") from e
    if version > LAYOUT_VERSION:
        raise RegazeError(f"{path}: regaze layout version {version} is newer than this reader "
                          f"(version {LAYOUT_VERSION}); upgrade regaze")
    colour = attrs.get("colour_order", "RGB")
    if colour not in ("RGB", "BGR"):
        raise RegazeError(f"{path}: attribute 'colour_order' should be 'RGB' or 'BGR'; found {colour!r}")
    return colour


def open_regaze(path) -> GazeDataset:
    """Open a regaze-layout file as a GazeDataset (layout 'regaze')."""
    path = Path(path)
    with open_h5(path) as f:
        attrs = read_attrs(f)
        if "regaze_version" not in attrs:
            raise RegazeError(f"{path}: not a regaze file: attribute 'regaze_version' missing; "
                              f"found attributes {sorted(attrs)}")
        colour = _check_header(attrs, path=path)
        images = require_key(f, IMAGE_KEY, path=path)
        size = check_image_array(images, path=path, key=IMAGE_KEY)
        if "size" in attrs and int(attrs["size"]) != size:
            raise RegazeError(f"{path}: attribute size={attrs['size']} but '{IMAGE_KEY}' images are {size}x{size}")
        n = images.shape[0]
        if n == 0:
            raise RegazeError(f"{path}: '{IMAGE_KEY}' holds 0 images; expected at least 1")
        head = check_angles(require_key(f, "face_head_pose", path=path)[()], path=path, key="face_head_pose", n=n)
        gaze = None
        if "face_gaze" in f:
            gaze = check_angles(f["face_gaze"][()], path=path, key="face_gaze", n=n)
        subject = check_ids(require_key(f, "subject", path=path)[()], path=path, key="subject", n=n)
        session = None
        if "session" in f:
            session = check_ids(f["session"][()], path=path, key="session", n=n)
        array_keys = sorted(k for k in f if k != IMAGE_KEY and isinstance(f[k], h5py.Dataset)
                            and f[k].ndim >= 1 and f[k].shape[0] == n)
    if gaze is None:
        warnings.warn(f"{path}: no 'face_gaze' labels: gaze is NaN and has_gaze_labels is False", stacklevel=3)
    block = ImageBlock(path=path, group="", image_key=IMAGE_KEY, start=0, count=n)
    return GazeDataset(layout="regaze", path=path, blocks=[block], size=size, gaze=gaze, head=head,
                       subject=subject, session=session, attrs=attrs, colour_order=colour, array_keys=array_keys)


# ------------------------------------------------------------------------------------------ convert
RESAMPLE = ("auto", "bicubic", "area")
_LABEL_KEYS = ("face_gaze", "face_head_pose", "subject", "session")
_WRITER_ATTRS = ("regaze_version", "colour_order", "size", "compression")
_PIXEL_KEYS = ("facial_landmarks",)  # per-image pixel coordinates, scaled when resizing


def resize_images(images: np.ndarray, *, size: int, resample: str = "auto") -> np.ndarray:
    """(n, S, S, 3) uint8 -> (n, size, size, 3) uint8 with PIL; "auto" = area when shrinking, else bicubic."""
    from PIL import Image

    if images.shape[1] == size:
        return images
    if resample not in RESAMPLE:
        raise RegazeError(f"unknown resample '{resample}'; expected one of {RESAMPLE}")
    if resample == "auto":
        resample = "area" if size < images.shape[1] else "bicubic"
    mode = Image.Resampling.BOX if resample == "area" else Image.Resampling.BICUBIC
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for k, image in enumerate(images):
        out[k] = np.asarray(Image.fromarray(image).resize((size, size), resample=mode))
    return out


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
    attrs.update({"source_path": os.fspath(src), "source_layout": ds.layout, "source_size": ds.size})
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
