"""What happens around and after the face: background, optical blur, sensor noise, quantisation.

All of it is a deterministic function of the session vector (seeds included), computed per image so that
an image is the same whether it is rendered alone or in a batch.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["background", "background_rect", "blur", "add_noise", "to_uint8"]


def background(session_cols: dict[str, np.ndarray], *, size: int) -> torch.Tensor:
    """Colour gradient plus a blotchy value-noise texture: float32 (n, 3, size * size) in [0, 1]."""
    n = len(session_cols["bg_r"])
    c = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    v, u = np.meshgrid(c, c, indexing="ij")
    out = np.empty((n, 3, size * size), dtype=np.float32)
    for i in range(n):
        ang = float(session_cols["bg_gradient_rad"][i])
        ramp = np.clip(0.5 + math.cos(ang) * u + math.sin(ang) * v, 0.0, 1.0).astype(np.float32)  # (H, W)
        c1 = np.array([session_cols[f"bg_{k}"][i] for k in "rgb"], dtype=np.float32)[:, None, None]
        c2 = np.array([session_cols[f"bg2_{k}"][i] for k in "rgb"], dtype=np.float32)[:, None, None]
        img = c1 + (c2 - c1) * ramp  # (3, H, W)
        cells = int(round(float(session_cols["bg_texture_cells"][i])))
        rng = np.random.Generator(np.random.PCG64(int(session_cols["bg_seed"][i])))
        grid = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(1, 1, cells + 1, cells + 1)).astype(np.float32))
        tex = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True)[0, 0].numpy()
        img = img * (1.0 + float(session_cols["bg_texture"][i]) * tex)
        out[i] = np.clip(img, 0.0, 1.0).reshape(3, -1)
    return torch.from_numpy(out)


def background_rect(session_cols: dict[str, np.ndarray], *, height: int, width: int) -> torch.Tensor:
    """background() for a height x width image: the centre of the square one of side max(height, width), so
    that gradient and texture cells keep their aspect. float32 (n, 3, height * width); equal to
    background(size=height) when the image is square."""
    side = max(height, width)
    full = background(session_cols, size=side)
    if height == width:
        return full
    top, left = (side - height) // 2, (side - width) // 2
    crop = full.view(-1, 3, side, side)[:, :, top:top + height, left:left + width]  # (n, 3, H, W)
    return crop.reshape(-1, 3, height * width)


def blur(images: torch.Tensor, *, sigma_px: np.ndarray, radius_px: int) -> torch.Tensor:
    """Separable Gaussian blur with a per-image sigma, as explicit shifted sums (no conv kernels whose
    summation order could depend on the batch). (n, 3, H, W) -> (n, 3, H, W), edges replicated.
    The kernel is truncated at radius_px, which must not depend on the batch either."""
    n, _, h, w = images.shape
    radius = int(radius_px)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    s = np.maximum(np.asarray(sigma_px, dtype=np.float64), 1e-3)[:, None]
    k = np.exp(-0.5 * (offsets[None] / s) ** 2)
    k = torch.from_numpy((k / k.sum(1, keepdims=True)).astype(np.float32))  # (n, K)
    x = images
    for dim, length in ((3, w), (2, h)):
        pad = F.pad(x, (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius), mode="replicate")
        acc = None
        for j in range(2 * radius + 1):
            term = pad.narrow(dim, j, length) * k[:, j].view(n, 1, 1, 1)
            acc = term if acc is None else acc + term
        x = acc
    return x


def add_noise(images: torch.Tensor, *, noise_std: np.ndarray, noise_seed: np.ndarray) -> torch.Tensor:
    """Gaussian sensor noise, one PCG64 stream per image seeded by its noise seed. (n, 3, H, W)."""
    noise = np.empty(tuple(images.shape), dtype=np.float32)
    for i in range(images.shape[0]):
        rng = np.random.Generator(np.random.PCG64(int(noise_seed[i])))
        noise[i] = rng.standard_normal(size=tuple(images.shape[1:]), dtype=np.float32) * np.float32(noise_std[i])
    return images + torch.from_numpy(noise)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) float in [0, 1] -> (n, H, W, 3) uint8."""
    return (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
