"""Ray / primitive intersections over a pixel grid, batched over images (torch, float32).

Per-image quantities are (n, 1) tensors, per-pixel ones (n, HW); a 3-vector is a tuple of three. Only
+, -, *, /, sqrt, min/max and comparisons are used per pixel: these are exactly rounded in every SIMD and
scalar code path, so an image renders to identical bytes whatever batch it is rendered in.
"""
from __future__ import annotations

import torch

__all__ = [
    "MISS", "Vec", "dot", "normalize", "ellipsoid", "sphere", "cylinder_y", "point_on_ray", "rotate_x",
    "relief_gradient",
]

MISS = 1.0e5  # ray parameter (mm) of a miss: farther than anything in the scene
Vec = tuple  # (x, y, z) of tensors


def dot(a: Vec, b: Vec) -> torch.Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def normalize(a: Vec) -> Vec:
    inv = 1.0 / torch.sqrt(dot(a, a).clamp_min(1e-20))
    return a[0] * inv, a[1] * inv, a[2] * inv


def point_on_ray(o: Vec, d: Vec, t: torch.Tensor) -> Vec:
    return o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]


def rotate_x(v: Vec, cos_a, sin_a) -> Vec:
    """Rotation about the x axis: (x, c y - s z, s y + c z)."""
    return v[0], cos_a * v[1] - sin_a * v[2], sin_a * v[1] + cos_a * v[2]


def ellipsoid(o: Vec, d: Vec, *, centre: Vec, inv_radii: Vec):
    """Axis-aligned ellipsoid. Returns (t (n, HW) ray parameter of the front hit, or of the closest
    approach where the ray misses; cover (n, HW) = 1 - (closest distance of the ray to the centre in radius
    units)^2, > 0 where it hits; normal: unnormalised outward normal at that point)."""
    ox, oy, oz = [(o[i] - centre[i]) * inv_radii[i] for i in range(3)]  # (n, 1) scaled origin
    dx, dy, dz = [d[i] * inv_radii[i] for i in range(3)]  # (n, HW) scaled direction
    a = dx * dx + dy * dy + dz * dz
    inv_a = 1.0 / a
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - 1.0
    cover = (b * b - a * c) * inv_a  # = 1 - dist^2
    t_raw = (-b - torch.sqrt(cover.clamp_min(0.0) * a)) * inv_a
    px, py, pz = ox + t_raw * dx, oy + t_raw * dy, oz + t_raw * dz  # scaled hit point
    normal = (px * inv_radii[0], py * inv_radii[1], pz * inv_radii[2])
    return t_raw, cover, normal


def sphere(o: Vec, d: Vec, *, centre: Vec, radius: float):
    """Sphere hit for unit directions d. Returns (t, MISS where none; unit normal at the hit)."""
    ox, oy, oz = o[0] - centre[0], o[1] - centre[1], o[2] - centre[2]
    b = ox * d[0] + oy * d[1] + oz * d[2]
    c = ox * ox + oy * oy + oz * oz - radius * radius
    disc = b * b - c
    t_raw = -b - torch.sqrt(disc.clamp_min(0.0))
    inv_r = 1.0 / radius
    normal = ((ox + t_raw * d[0]) * inv_r, (oy + t_raw * d[1]) * inv_r, (oz + t_raw * d[2]) * inv_r)
    return torch.where(disc > 0.0, t_raw, MISS), normal


def cylinder_y(o: Vec, d: Vec, *, centre: Vec, inv_radii: Vec):
    """Elliptic cylinder along y through `centre` (radii x, z). Returns (t, cover, normal) as ellipsoid."""
    ox, oz = (o[0] - centre[0]) * inv_radii[0], (o[2] - centre[2]) * inv_radii[2]
    dx, dz = d[0] * inv_radii[0], d[2] * inv_radii[2]
    a = (dx * dx + dz * dz).clamp_min(1e-12)
    inv_a = 1.0 / a
    b = ox * dx + oz * dz
    cover = (b * b - a * (ox * ox + oz * oz - 1.0)) * inv_a
    t_raw = (-b - torch.sqrt(cover.clamp_min(0.0) * a)) * inv_a
    normal = ((ox + t_raw * dx) * inv_radii[0], torch.zeros_like(t_raw), (oz + t_raw * dz) * inv_radii[2])
    return t_raw, cover, normal


def relief_gradient(x: torch.Tensor, y: torch.Tensor, *, bumps) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient (dh/dx, dh/dy) of a relief h(x, y) = sum of height * max(0, 1 - u)^2 bumps, u the squared
    elliptic distance to each bump centre, mirrored in x (h depends on |x|). A surface with normal n moved
    by h toward the viewer (-z) has normal n + n_z (dh/dx, dh/dy, 0).
    bumps: sequence of (centre_x, centre_y, inv_radius_x, inv_radius_y, height_mm), each (n, 1)."""
    ax = x.abs()
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    for cx, cy, irx, iry, height in bumps:
        dx, dy = (ax - cx) * irx, (y - cy) * iry
        k = (1.0 - dx * dx - dy * dy).clamp_min(0.0) * (-4.0 * height)
        gx = gx + k * dx * irx
        gy = gy + k * dy * iry
    return gx * torch.sign(x), gy
