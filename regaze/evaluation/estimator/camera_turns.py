"""Label-exact geometric augmentation of normalized images: the normalized camera turned and zoomed, the images
resampled and the gaze and head labels turned with it (the trainer's roll_deg / tilt_deg / zoom).

    rotation = small_turns(b, roll_deg=15, tilt_deg=4, generator=gen)          # (B, 3, 3)
    x, gaze, head = turn_images(x, gaze, head, rotation=rotation, zoom=zoom, focal_px=182.9)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from regaze.geometry import pitchyaw_to_vector, vector_to_pitchyaw

__all__ = ["turn_images", "small_turns"]


def turn_images(x: torch.Tensor, gaze: torch.Tensor, head: torch.Tensor, *, rotation: torch.Tensor,
                zoom: torch.Tensor | None = None, focal_px: float = 0.0):
    """Normalized images x (B, C, S, S) as their camera sees them turned by rotation (B, 3, 3) and zoomed by
    zoom (B,) (None = 1), and their labels (B, 2) rad turned with it.

    A camera point X appears at X' = R X, so every direction v (gaze, the head's forward axis) becomes R v; the
    zoom scales the image about its centre (the normalization's distance, which changes no direction). An output
    pixel p' (principal point at the centre, focal f) looks along r' = [(p' - c) / (zoom f), 1]; it samples the
    input where r = R^T r' meets it: c + f r_xy / r_z. A rotation about the optical axis alone needs no f (the
    image rotates about its centre); a tilt (the face moved off the centre) needs focal_px > 0."""
    b, _, size, _ = x.shape
    f = focal_px if focal_px > 0 else float(size)  # cancels out for rotations about the optical axis
    scale = torch.ones(b, dtype=torch.float32) if zoom is None else zoom.float()
    half = size / 2.0  # affine_grid's normalized coordinates: pixel offset from the centre / half
    base = F.affine_grid(torch.eye(2, 3).expand(b, 2, 3), [b, 1, size, size], align_corners=False)  # (B, S, S, 2)
    rays = torch.cat([base * half / (scale[:, None, None, None] * f), torch.ones(b, size, size, 1)], dim=-1)  # (B, S, S, 3)
    src = torch.einsum("bji,bhwj->bhwi", rotation.float(), rays)  # R^T r'
    grid = src[..., :2] / src[..., 2:3] * (f / half)  # (B, S, S, 2)
    x = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    turn = lambda a: vector_to_pitchyaw(torch.einsum("bij,bj->bi", rotation.float(), pitchyaw_to_vector(a.float())))  # noqa: E731
    return x, turn(gaze).to(gaze.dtype), turn(head).to(head.dtype)


def small_turns(b: int, *, roll_deg: float, tilt_deg: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, 3) R_z(roll) R_y(b) R_x(a): roll in U(-roll_deg, roll_deg), a and b in U(-tilt_deg, tilt_deg)."""
    u = lambda: (2 * torch.rand(b, generator=generator) - 1)  # noqa: E731
    r, a, t = math.radians(roll_deg) * u(), math.radians(tilt_deg) * u(), math.radians(tilt_deg) * u()
    one, zero = torch.ones(b), torch.zeros(b)
    rot = lambda rows: torch.stack([torch.stack(row, -1) for row in rows], 1)  # noqa: E731
    rz = rot([[r.cos(), -r.sin(), zero], [r.sin(), r.cos(), zero], [zero, zero, one]])
    ry = rot([[t.cos(), zero, t.sin()], [zero, one, zero], [-t.sin(), zero, t.cos()]])
    rx = rot([[one, zero, zero], [zero, a.cos(), -a.sin()], [zero, a.sin(), a.cos()]])
    return rz @ ry @ rx
