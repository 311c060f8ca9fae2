"""What the training loop feeds on: images by index (cached in memory when they fit) and validation's pair batches."""
from __future__ import annotations

import numpy as np
import torch

from regaze.errors import RegazeError

__all__ = ["ImageSource", "split_or_none", "pair_batch"]


class ImageSource:
    """Images by index as float (n, 3, S, S) in [-1, 1]; held in memory when they fit in `cache_mb`."""

    def __init__(self, dataset, indices: np.ndarray, *, cache_mb: int):
        self.dataset = dataset
        s = dataset.size
        self.cache = None
        if cache_mb and len(indices) * s * s * 3 <= cache_mb * 2**20:
            order = np.sort(indices)
            self.cache = {"index": order, "images": dataset.read_images(order)}  # (n, S, S, 3) uint8

    def get_uint8(self, indices: np.ndarray) -> np.ndarray:
        """Images at `indices` -> (n, S, S, 3) uint8, from the cache or read from the files in index order."""
        if self.cache is not None:
            return self.cache["images"][np.searchsorted(self.cache["index"], indices)]
        order = np.argsort(indices)
        u8 = np.empty((len(indices), self.dataset.size, self.dataset.size, 3), np.uint8)
        u8[order] = self.dataset.read_images(indices[order])
        return u8

    def get(self, indices: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(self.get_uint8(indices)).permute(0, 3, 1, 2).float()  # (n, 3, S, S)
        return x / 127.5 - 1.0


def split_or_none(dataset, split: str) -> np.ndarray | None:
    """The dataset's `split` indices, or None when the file carries no split information."""
    try:
        return dataset.split_indices(split)
    except RegazeError:
        return None


def pair_batch(source: ImageSource, dataset, pairs: np.ndarray, device) -> dict:
    """(B, 2) index pairs -> {"x_a", "x_b": (B, 3, S, S) in [-1, 1]; "gaze_a", "head_a", "gaze_b", "head_b": (B, 2) rad}."""
    a, b = pairs[:, 0], pairs[:, 1]
    t = lambda arr: torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(device)  # noqa: E731
    return {
        "x_a": source.get(a).to(device),
        "x_b": source.get(b).to(device),
        "gaze_a": t(dataset.gaze[a]),
        "head_a": t(dataset.head[a]),
        "gaze_b": t(dataset.gaze[b]),
        "head_b": t(dataset.head[b]),
    }
