"""Full-reference image metrics (PSNR, SSIM, L1), whole image or inside a box, as pure functions.

Inputs are uint8 (B, H, W, 3) NumPy arrays or float (B, 3, H, W) tensors in [-1, 1]; every function returns
one value per image (B,) as a float64 NumPy array. Values are computed on [0, 1] intensities.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["psnr_db", "ssim", "l1", "crop_box"]


def _to_unit_bchw(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected uint8 (B, H, W, 3) images, got {x.dtype} {x.shape}")
        return torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255.0
    return (x.detach().double().clamp(-1, 1) + 1.0) / 2.0


def crop_box(x, box: tuple[int, int, int, int] | np.ndarray):
    """Crop (top, left, height, width): one box for all images, or (B, 4) per image (same height/width)."""
    box = np.asarray(box)
    if box.ndim == 1:
        t, l, h, w = (int(v) for v in box)
        return x[:, t : t + h, l : l + w] if isinstance(x, np.ndarray) else x[..., t : t + h, l : l + w]
    crops = [crop_box(x[i : i + 1], b) for i, b in enumerate(box)]
    return np.concatenate(crops) if isinstance(x, np.ndarray) else torch.cat(crops)


def psnr_db(a, b) -> np.ndarray:
    """10 log10(1 / MSE) per image, MSE over [0, 1] intensities (capped at 100 dB for identical images)."""
    mse = (_to_unit_bchw(a) - _to_unit_bchw(b)).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (-10.0 * torch.log10(mse)).numpy()


def l1(a, b) -> np.ndarray:
    """Mean absolute difference per image on [0, 1] intensities."""
    return (_to_unit_bchw(a) - _to_unit_bchw(b)).abs().flatten(1).mean(1).numpy()


def ssim(a, b, *, window: int = 7, sigma: float = 1.5) -> np.ndarray:
    """Structural similarity (Wang et al. 2004) per image, Gaussian window, averaged over channels.

    The window shrinks to the image side for crops smaller than `window`.
    """
    x, y = _to_unit_bchw(a), _to_unit_bchw(b)
    window = min(window, x.shape[-1], x.shape[-2])
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()  # (w,): the 2-D Gaussian window is g g^T, applied as two 1-D passes
    c = x.shape[1]
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W): one pass blurs all five moments
    rows = g.view(1, 1, 1, window).expand(5 * c, 1, 1, window).contiguous()  # (5C, 1, 1, w)
    cols = g.view(1, 1, window, 1).expand(5 * c, 1, window, 1).contiguous()  # (5C, 1, w, 1)
    moments = F.conv2d(F.conv2d(maps, rows, groups=5 * c), cols, groups=5 * c)  # valid convolution
    mu_x, mu_y, xx, yy, xy = moments.split(c, dim=1)  # (B, C, H', W') each
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).numpy()
