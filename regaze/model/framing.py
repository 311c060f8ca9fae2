"""Where the eyes are in a normalized face patch, from the head pose alone, as a per-pixel weight map for the
reconstruction loss (`loss.rec_eye` > 1).

Why: gaze lives in a few pixels. At 64 px the two eyes cover ~3 % of the patch and a 3° gaze change moves the
iris by ~0.2 px, so a plain L1 over the image barely sees gaze; a model trained on it redraws the head well
and leaves the eyes blurred (measured: docs/RESULTS.md, issue 5). Up-weighting the eye regions puts a useful
share of L_R where gaze is, without landmarks: in a normalized patch the face centre is on the optical axis
at a fixed distance, so a mean face's eye centres, rotated by the head pose label and projected, land on
the eyes of every subject to within a few millimetres (tests/test_eye_regions.py measures it on the
synthetic faces).

Mean face (head coordinates, mm; x to the image right of a frontal face, y down, z out of the back of the
head, origin at the face centre of DESIGN §2): eye centres at (±32, −35, −4), the average of the synthetic
identities' eye corners and eyeball fronts; adult inter-pupillary distances are 54–74 mm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from regaze.errors import RegazeError

__all__ = ["MEAN_EYES_HEAD_MM", "Framing", "framing_from_attrs", "eye_centres_px", "eye_mask", "eye_weight_map"]

MEAN_EYES_HEAD_MM = ((32.0, -35.0, -4.0), (-32.0, -35.0, -4.0))  # the two eyes; x > 0 is the image right of a frontal face
EYE_SIGMA_MM = 8.0  # blob radius: an eye opening is ~25 x 10 mm
# ETH-XGaze's face normalization (focal 960 px at 224 px, 600 mm): the framing assumed when a file says none.
ETH_XGAZE_FOCAL_224_PX = 960.0
ETH_XGAZE_DISTANCE_MM = 600.0


@dataclass(frozen=True)
class Framing:
    """The normalized camera of a patch of a given size: focal length (px) and face distance (mm)."""

    focal_px: float
    distance_mm: float


def framing_from_attrs(attrs: dict, *, size: int) -> Framing:
    """The file's normalized camera (attrs camera_focal_px, camera_distance_mm, for images of `size` px), else
    ETH-XGaze's face normalization scaled to `size`. Every reader records the camera of its format there
    (regaze/data/readers/cameras.py: ST-ED files f 500 px at 128 px, ETH-XGaze f 960 px at 224 px; synthetic
    and converted files their own), so the fallback serves only attributes from elsewhere."""
    if "camera_focal_px" in attrs and "camera_distance_mm" in attrs:
        focal, distance = float(attrs["camera_focal_px"]), float(attrs["camera_distance_mm"])
        if not (math.isfinite(focal) and math.isfinite(distance) and focal > 0 and distance > 0):
            raise RegazeError(f"camera attributes should be positive: camera_focal_px={attrs['camera_focal_px']!r}, "
                              f"camera_distance_mm={attrs['camera_distance_mm']!r}")
        return Framing(focal, distance)
    return Framing(ETH_XGAZE_FOCAL_224_PX * size / 224.0, ETH_XGAZE_DISTANCE_MM)


def _head_rotation(head: torch.Tensor) -> torch.Tensor:
    """(B, 2) head (pitch, yaw) rad -> (B, 3, 3) head -> camera rotation, roll 0 (DESIGN §2: the third column is
    the head's z axis (cos p sin y, sin p, cos p cos y); the x axis stays horizontal)."""
    p, y = head[:, 0], head[:, 1]
    z = torch.stack([torch.cos(p) * torch.sin(y), torch.sin(p), torch.cos(p) * torch.cos(y)], dim=-1)  # (B, 3)
    x = torch.stack([torch.cos(y), torch.zeros_like(y), -torch.sin(y)], dim=-1)  # (B, 3)
    return torch.stack([x, torch.cross(z, x, dim=-1), z], dim=-1)  # (B, 3, 3) columns x, y, z


def eye_centres_px(head: torch.Tensor, *, size: int, framing: Framing) -> torch.Tensor:
    """(B, 2) head pose rad -> (B, 2 eyes, 2) continuous pixel coordinates (x, y) of the mean face's eyes."""
    eyes = torch.tensor(MEAN_EYES_HEAD_MM, dtype=torch.float32, device=head.device)  # (2, 3)
    cam = torch.einsum("bij,ej->bei", _head_rotation(head.float()), eyes)  # (B, 2, 3)
    cam = cam + torch.tensor([0.0, 0.0, framing.distance_mm], device=head.device)
    return framing.focal_px * cam[..., :2] / cam[..., 2:] + size / 2.0


def eye_mask(head: torch.Tensor, *, size: int, framing: Framing, sigma_mm: float = EYE_SIGMA_MM) -> torch.Tensor:
    """(B, 2) head pose rad -> (B, 1, size, size) float32 in [0, 1]: 1 at the mean eye centres, a Gaussian of
    `sigma_mm` around each (the larger of the two where they meet), ~0 elsewhere."""
    centres = eye_centres_px(head, size=size, framing=framing)  # (B, 2, 2)
    sigma_px = sigma_mm * framing.focal_px / framing.distance_mm
    grid = torch.arange(size, dtype=torch.float32, device=head.device) + 0.5  # pixel centres
    dx = grid.view(1, 1, 1, size) - centres[..., 0].view(-1, 2, 1, 1)  # (B, 2, 1, S)
    dy = grid.view(1, 1, size, 1) - centres[..., 1].view(-1, 2, 1, 1)  # (B, 2, S, 1)
    return torch.exp(-(dx.square() + dy.square()) / (2.0 * sigma_px**2)).amax(dim=1, keepdim=True)


def eye_weight_map(head: torch.Tensor, *, size: int, framing: Framing, weight: float,
                   sigma_mm: float = EYE_SIGMA_MM) -> torch.Tensor:
    """(B, 2) head pose rad -> (B, 1, size, size) float32 loss weights: 1 away from the eyes, rising to
    `weight` at the mean eye centres (1 + (weight - 1) * eye_mask)."""
    return 1.0 + (weight - 1.0) * eye_mask(head, size=size, framing=framing, sigma_mm=sigma_mm)
