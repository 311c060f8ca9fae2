"""Images as files and grids: uint8 conversion, tiling, atomic PNG writing, resizing. A leaf: imports nothing
of regaze but errors.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from regaze.errors import RegazeError

__all__ = ["to_u8", "tile", "save_png", "resize_images", "RESAMPLE"]

RESAMPLE = ("auto", "bicubic", "area")


def save_png(path: str | os.PathLike, image_u8: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(image_u8).save(tmp, format="PNG")
    os.replace(tmp, path)


def to_u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def tile(rows: list[list[np.ndarray]], *, pad: int = 2) -> np.ndarray:
    """Grid of equally sized (H, W, 3) uint8 tiles, white padding."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            out[pad + i * (h + pad) : pad + i * (h + pad) + h, pad + j * (w + pad) : pad + j * (w + pad) + w] = img
    return out


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
