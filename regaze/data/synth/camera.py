"""The normalized camera of the synthetic faces (ETH-XGaze framing) and the head pose / gaze geometry.

The virtual camera sits at the origin (x right, y down, z forward) at CAMERA_DISTANCE_MM from the face
centre, which lies on its optical axis, so the face centre projects to the image centre. The focal length
is 800 px for a 224-px patch (ETH-XGaze uses 960), scaled with the image size: a patch covers 168 mm
at the face, so the whole face with some hair fits and the eyes are ~19 px wide at 128 px.

Pixel (row i, column j) covers [j, j+1) x [i, i+1) in continuous image coordinates; its centre is
(j + 0.5, i + 0.5) and the principal point is (size / 2, size / 2). General pinhole cameras (camera_rays,
project_pinhole) use the same convention for their matrix K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]; OpenCV's
(pixel centre at (j, i)) has cx - 0.5, cy - 0.5.
"""
from __future__ import annotations

import numpy as np
import torch

from regaze.geometry import pitchyaw_to_vector

__all__ = [
    "CAMERA_DISTANCE_MM",
    "focal_px",
    "pixel_rays",
    "project",
    "head_rotation",
    "face_centre_cam",
    "normalized_camera_matrix",
    "camera_rays",
    "project_pinhole",
    "face_px_per_mm",
]

CAMERA_DISTANCE_MM = 600.0
_FOCAL_224_PX = 640.0


def focal_px(size: int) -> float:
    return _FOCAL_224_PX * size / 224.0


def face_centre_cam() -> np.ndarray:
    """(3,) the face centre in the normalized camera, mm."""
    return np.array([0.0, 0.0, CAMERA_DISTANCE_MM])


_RAY_CACHE: dict[int, torch.Tensor] = {}


def pixel_rays(size: int) -> torch.Tensor:
    """Unit ray directions through the pixel centres, camera coordinates: float32 (3, size * size)."""
    if size not in _RAY_CACHE:
        f = focal_px(size)
        c = (np.arange(size, dtype=np.float64) + 0.5 - size / 2.0) / f
        v, u = np.meshgrid(c, c, indexing="ij")  # (H, W) rows = y, columns = x
        d = np.stack([u.ravel(), v.ravel(), np.ones(size * size)])  # (3, HW)
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        _RAY_CACHE[size] = torch.from_numpy(d.astype(np.float32))
    return _RAY_CACHE[size]


def project(points_cam: np.ndarray, size: int) -> np.ndarray:
    """(..., 3) camera-coordinate points (mm) -> (..., 2) continuous pixel coordinates (x, y)."""
    p = np.asarray(points_cam, dtype=np.float64)
    f = focal_px(size)
    return np.stack([f * p[..., 0] / p[..., 2] + size / 2.0, f * p[..., 1] / p[..., 2] + size / 2.0], axis=-1)


def head_rotation(head_pitchyaw_rad: np.ndarray) -> np.ndarray:
    """(..., 2) head (pitch, yaw) -> (..., 3, 3) rotation M, head -> normalized camera, roll 0.

    Columns are the head axes in the camera: x (to the image right of a frontal face), y (down), z (out of
    the back of the head) with z = (cos p sin y, sin p, cos p cos y), so that head_matrix_to_pitchyaw(M)
    gives (p, y) back and the face points to -z = pitchyaw_to_vector(p, y). The x axis stays horizontal
    (no roll): M = R_y(yaw) R_x(-pitch).
    """
    hp = np.asarray(head_pitchyaw_rad, dtype=np.float64)
    z = -pitchyaw_to_vector(hp)  # (..., 3)
    yaw = hp[..., 1]
    x = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], axis=-1)  # (..., 3), horizontal
    y = np.cross(z, x)  # right-handed: x cross y = z
    return np.stack([x, y, z], axis=-1)  # (..., 3, 3) columns


def normalized_camera_matrix(size: int) -> np.ndarray:
    """(3, 3) K of the normalized camera above: focal_px(size), principal point (size / 2, size / 2)."""
    f = focal_px(size)
    return np.array([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]])


def camera_rays(camera_matrix: np.ndarray, *, width: int, height: int) -> torch.Tensor:
    """Unit ray directions through the pixel centres of a pinhole camera K (no skew): float32 (3, H * W),
    row-major. For normalized_camera_matrix(size) this equals pixel_rays(size) bit for bit."""
    k = np.asarray(camera_matrix, dtype=np.float64)
    cu = (np.arange(width, dtype=np.float64) + 0.5 - k[0, 2]) / k[0, 0]  # (W,)
    cv = (np.arange(height, dtype=np.float64) + 0.5 - k[1, 2]) / k[1, 1]  # (H,)
    v, u = np.meshgrid(cv, cu, indexing="ij")  # (H, W)
    d = np.stack([u.ravel(), v.ravel(), np.ones(width * height)])  # (3, HW)
    d /= np.linalg.norm(d, axis=0, keepdims=True)
    return torch.from_numpy(d.astype(np.float32))


def project_pinhole(points_cam: np.ndarray, camera_matrix: np.ndarray) -> np.ndarray:
    """(..., 3) camera-coordinate points (mm) -> (..., 2) continuous pixel coordinates (x, y) under K
    (no skew)."""
    p = np.asarray(points_cam, dtype=np.float64)
    k = np.asarray(camera_matrix, dtype=np.float64)
    x, y = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]
    return np.stack([k[0, 0] * x + k[0, 2], k[1, 1] * y + k[1, 2]], axis=-1)


def face_px_per_mm(*, camera_matrix: np.ndarray, face_centre_cam: np.ndarray) -> np.ndarray:
    """Image scale at the face: mean(fx, fy) / |face centre| in px per mm. camera_matrix (..., 3, 3),
    face_centre_cam (..., 3) -> (...). focal_px(size) / CAMERA_DISTANCE_MM for the normalized camera."""
    k = np.asarray(camera_matrix, dtype=np.float64)
    return 0.5 * (k[..., 0, 0] + k[..., 1, 1]) / np.linalg.norm(np.asarray(face_centre_cam, dtype=np.float64), axis=-1)
