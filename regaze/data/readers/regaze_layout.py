"""The regaze layout (ours; DESIGN §3): the reader. The writer is regaze/data/writer.py, the converter from
the other layouts regaze/data/convert.py.

One HDF5 file with ETH-XGaze key names: `face_patch` (N, S, S, 3) uint8 in the order of attribute
`colour_order` ("RGB" when we write it), `face_gaze` (N, 2) (optional), `face_head_pose` (N, 2),
`subject` (N,), optional `session` (N,) (images sharing light and background), and any extra per-image
arrays (provenance such as `source_index`, synthetic render parameters). File attributes: `regaze_version`,
`colour_order`, `size`, `split` and, where known, `subjects_train` / `subjects_val` / `subjects_test`, and the
framing `camera_focal_px` / `camera_distance_mm` (for the file's size). A file without camera attributes is
given those of the layout it was converted from (`source_layout`), else ETH-XGaze's, marked "assumed" in
attrs["camera_framing"] (cameras.py).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np

from regaze.data.h5_files import (ImageBlock, check_ids, check_image_array, open_h5, read_attrs, read_pose_labels,
                                   require_key)
from regaze.data.readers.cameras import regaze_camera_attrs
from regaze.data.writer import LAYOUT_VERSION
from regaze.errors import RegazeError

__all__ = ["read_regaze", "IMAGE_KEY"]

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


def read_regaze(path) -> dict:
    """A regaze-layout file -> the keyword arguments of its GazeDataset (layout 'regaze')."""
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
        head, gaze = read_pose_labels(f, path=path, n=n)
        subject = check_ids(require_key(f, "subject", path=path)[()], path=path, key="subject", n=n)
        session = None
        if "session" in f:
            session = check_ids(f["session"][()], path=path, key="session", n=n)
        array_keys = sorted(k for k in f if k != IMAGE_KEY and isinstance(f[k], h5py.Dataset)
                            and f[k].ndim >= 1 and f[k].shape[0] == n)
    attrs.update(regaze_camera_attrs(attrs, size=size))
    if gaze is None:
        warnings.warn(f"{path}: no 'face_gaze' labels: gaze is NaN and has_gaze_labels is False", stacklevel=3)
    block = ImageBlock(path=path, group="", image_key=IMAGE_KEY, start=0, count=n)
    return dict(layout="regaze", path=path, blocks=[block], size=size, gaze=gaze, head=head,
                subject=subject, session=session, attrs=attrs, colour_order=colour, array_keys=array_keys)
