"""Reading images chunk by chunk as stored (regaze/data/dataset.py:_read_raw_chunks) gives exactly what
HDF5's own decoding gives, for every compression, for chunks a compressor gave up on (camera-like noise
under lzf) and for files that mix both, in any order with repeats."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from regaze.data.dataset import open_dataset
from regaze.data.writer import write_regaze


def _images(kind: str, n: int = 24, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)  # lzf cannot shrink it: stored raw
    flat = np.repeat(rng.integers(0, 256, (n, 1, 1, 3), dtype=np.uint8), size, axis=1).repeat(size, axis=2)
    if kind == "noise":
        return noise
    if kind == "flat":
        return flat
    return np.where((np.arange(n) % 3 == 1)[:, None, None, None], flat, noise)  # mixed, a noisy first image


@pytest.mark.parametrize("compression,kind", [("none", "noise"), ("lzf", "noise"), ("lzf", "flat"),
                                              ("lzf", "mixed"), ("gzip", "mixed")])
def test_reads_match_hdf5s_own_decoding(tmp_path, compression, kind):
    images = _images(kind)
    n = len(images)
    path = write_regaze(tmp_path / "d.h5", images=images, gaze=np.zeros((n, 2)), head=np.zeros((n, 2)),
                        subject=np.arange(n) // 4, compression=compression)
    with h5py.File(path, "r") as f:
        dset = f["face_patch"]
        np.testing.assert_array_equal(dset[:], images)
        masks = [dset.id.get_chunk_info_by_coord((i, 0, 0, 0)).filter_mask for i in range(n)]
    if compression == "lzf":  # the cases this test is about: lzf gave up on noise (mask bit set), not on flat colour
        expected = {"noise": [1] * n, "flat": [0] * n, "mixed": [0 if i % 3 == 1 else 1 for i in range(n)]}[kind]
        assert masks == expected
    order = np.random.default_rng(0).integers(0, n, 40)  # any order, repeats
    with open_dataset(path) as ds:
        np.testing.assert_array_equal(ds.read_images(order), images[order])
        np.testing.assert_array_equal(ds.read_images(np.arange(n)), images)
