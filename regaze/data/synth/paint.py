"""Materials painted on the head's surfaces: hair region, brows, lids and lashes, lips, the eyeball.

Every function takes points in head coordinates (tuples of (n, HW) tensors) and per-image parameters as
(n, 1) tensors, and returns soft masks in [0, 1] (edges about one pixel wide, `px_per_mm` sets the
scale) or colours. Same arithmetic rules as surfaces.py: no transcendental functions per pixel.
"""
from __future__ import annotations

import torch

__all__ = ["soft", "lerp3", "hair_region", "eye_aperture", "eye_surroundings", "brows", "lips", "eyeball_albedo"]


def soft(signed_mm: torch.Tensor, px_per_mm) -> torch.Tensor:
    """Signed distance (mm, > 0 inside) -> coverage in [0, 1] over about one pixel."""
    return (signed_mm * px_per_mm + 0.5).clamp(0.0, 1.0)


def lerp3(a, b, alpha):
    """Blend colour tuples: a + alpha (b - a)."""
    return tuple(a[i] + alpha * (b[i] - a[i]) for i in range(3))


def hair_region(p, *, P, px_per_mm, grow_mm: float = 0.0) -> torch.Tensor:
    """Where the skull is covered by hair: above the (temple-curved) hairline, over the temples above the
    brows, the sideburns in front of the ears, the back of the head. Soft mask (n, HW). grow_mm widens the
    region: the skin is painted with hair a little beyond the hair cap's edge, which hides that edge."""
    yy = p[1] - P["eye_y"] - grow_mm  # below the eye line, mm
    xa = p[0] * P["inv_hair_a"]
    k = px_per_mm * 0.5
    front = soft(16.0 * xa * xa - P["hairline_mm"] - yy, k)
    temple = soft(p[2] - P["hair_temple_z"] + grow_mm, k) * soft(-20.0 - yy, k)
    sideburn = soft(p[2] - P["hair_side_z"] + grow_mm, k) * soft(P["hair_side_y"] - yy, k)
    back = soft(p[2] - P["cranium_z"] + grow_mm, k) * soft(75.0 - yy, k)
    return torch.maximum(torch.maximum(front, temple), torch.maximum(sideburn, back))


def eye_aperture(x_l, y_l, *, lid_up, lid_lo, P):
    """Signed distances (mm) to the upper and lower lid margins of the eye opening, > 0 inside.

    x_l: lateral offset from the eyeball centre (mirrored: > 0 toward the outer corner), y_l: below the
    eyeball centre. Margins are parabolas through the corners: y = c(x) -/+ h (1 - (x / w)^2)."""
    t = x_l * P["inv_eye_w"]
    q = 1.0 - t * t
    y_c = -P["eye_tilt"] * x_l + 0.6 * q  # corners on a tilted line, the aperture a little low
    d_up = y_l - (y_c - lid_up * q * (1.0 + 0.18 * t))  # upper lid peaks slightly toward the nose
    d_lo = (y_c + lid_lo * q) - y_l
    return d_up, d_lo, t


def eye_surroundings(d_up, d_lo, t, x_l, y_l, *, lid_up, P, px_per_mm):
    """Skin around the eye: (darkening factor (n, HW), lash alpha, aperture alpha).
    Lashes: a dark band on the upper margin, thicker toward the outer corner, a faint one below; the lid
    crease; the socket shading that makes the eye region read darker than cheek and brow."""
    inside_t = soft(1.08 - t.abs(), px_per_mm * 12.0)
    lash_w = 1.1 + 0.5 * (t + 1.0).clamp(0.0, 2.0)  # mm
    upper = soft(-d_up, px_per_mm) * soft(lash_w + d_up, px_per_mm) * inside_t
    lower = soft(-d_lo, px_per_mm) * soft(0.45 + d_lo, px_per_mm) * inside_t * 0.55
    lash = torch.maximum(upper, lower)
    crease_y = -d_up - (lid_up * 0.35 + 3.2)  # distance above the crease line, mm
    crease = soft(0.5 - crease_y.abs(), px_per_mm) * inside_t * 0.35
    e2 = (x_l * P["inv_socket_w"]) ** 2 + ((y_l + 2.5) * (1.0 / 12.0)) ** 2
    socket = (1.3 - e2).clamp(0.0, 1.0)
    darken = (1.0 - 0.5 * socket) * (1.0 - crease)
    aperture = soft(torch.minimum(d_up, d_lo), px_per_mm)
    return darken, lash, aperture


def brows(x_l, y_l, *, P, px_per_mm) -> torch.Tensor:
    """Brow mask: an arch above each eye, thick at the inner end and thinning outward."""
    u = (x_l - 2.0) * (1.0 / 19.0)  # -1 inner end, +1 outer end
    centre = -P["brow_height_mm"] - 3.0 * (1.0 - u * u) + 2.0 * u.clamp_min(0.0) * u  # arch, drops at the tail
    half = P["brow_thickness_mm"] * (0.62 - 0.25 * u)
    along = soft(1.0 - u.abs(), px_per_mm * 19.0) * (1.0 - 0.35 * u.clamp_min(0.0))
    return soft(half - (y_l - centre).abs(), px_per_mm) * along


def lips(p, *, P, px_per_mm):
    """(lip alpha, mouth-line alpha): two lips meeting on a gently curved line, tapering to the corners."""
    xm = p[0] * P["inv_mouth_hw"]
    q = (1.0 - xm * xm).clamp_min(0.0)
    y = p[1] - P["mouth_y"]
    line = -0.8 * q + 0.8  # corners slightly lower than the centre of the line
    rel = y - line
    upper = soft(torch.minimum(-rel, P["lip_fullness_mm"] * (0.15 + 0.85 * q) + rel), px_per_mm)
    lower = soft(torch.minimum(rel, P["lip_fullness_mm"] * 1.25 * (0.1 + 0.9 * q) - rel), px_per_mm)
    inside = soft(1.0 - xm.abs(), px_per_mm * 20.0)
    mouth_line = soft(0.6 + 0.5 * q - rel.abs(), px_per_mm) * inside
    return torch.maximum(upper, lower) * inside, mouth_line


def eyeball_albedo(cos_axis, *, P, px_per_mm):
    """Sclera, iris (dark limbal ring, lighter collarette) and pupil from the cosine between the surface
    normal and the eye's optical axis. Returns a colour tuple of (n, HW)."""
    rho2 = (1.0 - cos_axis) * P["inv_iris_span"]  # (radius on the iris / iris radius)^2, approximately
    iris = soft((cos_axis - P["iris_cos"]) * P["iris_px_per_cos"], 1.0)
    pupil = soft((cos_axis - P["pupil_cos"]) * P["pupil_px_per_cos"], 1.0)
    limbus = 1.0 - 0.55 * ((rho2 - 0.55) * 2.2).clamp(0.0, 1.0)
    collar = 1.0 + 0.35 * (1.0 - ((rho2 - 0.22) * 8.0).abs()).clamp_min(0.0)
    shade = limbus * collar
    sclera = (P["sclera_r"], P["sclera_g"], P["sclera_b"])
    iris_col = (P["iris_r"] * shade, P["iris_g"] * shade, P["iris_b"] * shade)
    col = lerp3(sclera, iris_col, iris)
    return lerp3(col, (0.03, 0.025, 0.025), pupil)
