"""Angle conventions of the field (DESIGN §2) and the rotation of patent claim 3, as pure functions.

Every function takes torch tensors or NumPy arrays (batched over leading dimensions) and returns the
same kind. Angles are radians, ordered (pitch, yaw). Camera axes: x right, y down, z forward.

Gaze (ETH-XGaze normalization):  g = -[cos p sin y, sin p, cos p cos y],
                                 pitch = asin(-g_y), yaw = atan2(-g_x, -g_z).
Head pose: with z = M[:, 2] the head's z axis (out of the back of the head),
           pitch = asin(z_y), yaw = atan2(z_x, z_z); the face points to -z, which has the gaze form.

Beware (tested): rotation_matrix(p, y) @ e_z = (cos p sin y, -sin p, cos p cos y), i.e. the pitch sign is
opposite to the vector convention. That is harmless for latent features (the model only needs a
consistent group action) but wrong if real direction vectors are rotated with it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "pitchyaw_to_vector",
    "vector_to_pitchyaw",
    "canonical_pitchyaw",
    "head_matrix_to_pitchyaw",
    "rotation_matrix",
    "relative_rotation",
    "angular_error_deg",
    "head_to_camera",
    "gaze_in_head",
    "gaze_in_camera",
    "MAX_PITCH_RAD",
    "MAX_YAW_RAD",
]

# Valid label range: pitch in [-pi/2, pi/2] (asin), yaw in [-pi, pi] (atan2).
MAX_PITCH_RAD = math.pi / 2
MAX_YAW_RAD = math.pi


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


def _stack(xs, lib, axis=-1):
    return torch.stack(xs, dim=axis) if lib is torch else np.stack(xs, axis=axis)


def pitchyaw_to_vector(pitchyaw_rad):
    """(..., 2) pitch/yaw in radians -> (..., 3) unit vector, g = -[cos p sin y, sin p, cos p cos y]."""
    lib = _lib(pitchyaw_rad)
    p, y = pitchyaw_rad[..., 0], pitchyaw_rad[..., 1]
    cp = lib.cos(p)
    return _stack([-cp * lib.sin(y), -lib.sin(p), -cp * lib.cos(y)], lib)  # (..., 3)


def _wrap_pi(angle, lib):
    """Angles -> the same angles in [-pi, pi); those already there keep their bits."""
    return angle - (2 * math.pi) * lib.floor((angle + math.pi) / (2 * math.pi))


def canonical_pitchyaw(pitchyaw_rad):
    """(..., 2) any (pitch, yaw) -> the same direction with pitch in [-pi/2, pi/2] and yaw in [-pi, pi).

    (pi - p, y + pi) points where (p, y) does, so an angular-error loss cannot tell them apart, but a rotation
    matrix R_y(yaw) R_x(pitch) and the head's axes can: an auxiliary estimator trained on angular errors may
    settle on the other branch (seen: pitch near -pi for every face), and rotating a feature from those angles
    is wrong. Angles already canonical are returned bit for bit; elsewhere the slope is +-1 (no asin)."""
    lib = _lib(pitchyaw_rad)
    pitch, yaw = _wrap_pi(pitchyaw_rad[..., 0], lib), pitchyaw_rad[..., 1]
    flip = lib.abs(pitch) > math.pi / 2
    pitch = lib.where(flip, lib.sign(pitch) * math.pi - pitch, pitch)
    yaw = _wrap_pi(lib.where(flip, yaw + math.pi, yaw), lib)
    return _stack([pitch, yaw], lib)


def vector_to_pitchyaw(vector):
    """(..., 3) direction (any length > 0) -> (..., 2) pitch = asin(-g_y), yaw = atan2(-g_x, -g_z)."""
    lib = _lib(vector)
    if lib is torch:
        n = torch.linalg.vector_norm(vector, dim=-1, keepdim=True).clamp_min(1e-12)
        g = vector / n
        pitch = torch.asin((-g[..., 1]).clamp(-1.0, 1.0))
        yaw = torch.atan2(-g[..., 0], -g[..., 2])
        return torch.stack([pitch, yaw], dim=-1)
    g = vector / np.maximum(np.linalg.norm(vector, axis=-1, keepdims=True), 1e-12)
    pitch = np.arcsin(np.clip(-g[..., 1], -1.0, 1.0))
    yaw = np.arctan2(-g[..., 0], -g[..., 2])
    return np.stack([pitch, yaw], axis=-1)


def head_matrix_to_pitchyaw(rotation):
    """(..., 3, 3) head rotation M in the normalized camera -> (..., 2); z = M[:, 2]:
    pitch = asin(z_y), yaw = atan2(z_x, z_z)."""
    lib = _lib(rotation)
    z = rotation[..., :, 2]  # (..., 3)
    if lib is torch:
        return torch.stack([torch.asin(z[..., 1].clamp(-1.0, 1.0)), torch.atan2(z[..., 0], z[..., 2])], dim=-1)
    return np.stack([np.arcsin(np.clip(z[..., 1], -1.0, 1.0)), np.arctan2(z[..., 0], z[..., 2])], axis=-1)


def rotation_matrix(pitchyaw_rad):
    """(..., 2) pitch/yaw -> (..., 3, 3) R = R_y(yaw) . R_x(pitch), exactly as patent claim 3:

    R_y(phi) = [[cos phi, 0, sin phi], [0, 1, 0], [-sin phi, 0, cos phi]]
    R_x(theta) = [[1, 0, 0], [0, cos theta, -sin theta], [0, sin theta, cos theta]]
    """
    lib = _lib(pitchyaw_rad)
    p, y = pitchyaw_rad[..., 0], pitchyaw_rad[..., 1]
    cp, sp, cy, sy = lib.cos(p), lib.sin(p), lib.cos(y), lib.sin(y)
    zero = cp * 0
    # Product written out: rows of R_y . R_x.
    row0 = _stack([cy, sy * sp, sy * cp], lib)
    row1 = _stack([zero, cp, -sp], lib)
    row2 = _stack([-sy, cy * sp, cy * cp], lib)
    return _stack([row0, row1, row2], lib, axis=-2)  # (..., 3, 3)


def relative_rotation(source_pitchyaw_rad, target_pitchyaw_rad):
    """(..., 2), (..., 2) -> (..., 3, 3) R(target) . R(source)^T: rotates a feature from source to target."""
    r_s = rotation_matrix(source_pitchyaw_rad)
    r_t = rotation_matrix(target_pitchyaw_rad)
    if _lib(r_s) is torch:
        return r_t @ r_s.transpose(-1, -2)
    return r_t @ np.swapaxes(r_s, -1, -2)


def angular_error_deg(a, b, *, is_vector: bool = False):
    """Angle in degrees between two directions, (..., 2) pitch/yaw (default) or (..., 3) vectors -> (...).

    acos(clamp(cos_sim, -1, 1)) * 180/pi. For torch inputs the gradient stays finite at zero error:
    the clamp is pulled inside by 1e-7, where acos has a large but finite slope, instead of +/-1 where
    it is infinite.
    """
    lib = _lib(a)
    va = a if is_vector else pitchyaw_to_vector(a)
    vb = b if is_vector else pitchyaw_to_vector(b)
    if lib is torch:
        na = torch.linalg.vector_norm(va, dim=-1).clamp_min(1e-12)
        nb = torch.linalg.vector_norm(vb, dim=-1).clamp_min(1e-12)
        cos = (va * vb).sum(-1) / (na * nb)
        eps = 1e-7 if va.requires_grad or vb.requires_grad else 0.0
        return torch.rad2deg(torch.acos(cos.clamp(-1.0 + eps, 1.0 - eps)))
    cos = (va * vb).sum(-1) / (np.linalg.norm(va, axis=-1) * np.linalg.norm(vb, axis=-1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# ------------------------------------------------------------------------------------ head-relative gaze
def head_to_camera(head_pitchyaw_rad):
    """(..., 2) head (pitch, yaw) -> (..., 3, 3) rotation M, head -> normalized camera, roll 0 (DESIGN §2).

    Columns are the head axes: x horizontal (cos y, 0, -sin y), z = -pitchyaw_to_vector(head) (out of the back
    of the head), y = z x x; the same matrix as the synthetic renderer's camera.head_rotation.
    """
    lib = _lib(head_pitchyaw_rad)
    z = -pitchyaw_to_vector(head_pitchyaw_rad)  # (..., 3)
    yaw = head_pitchyaw_rad[..., 1]
    x = _stack([lib.cos(yaw), yaw * 0, -lib.sin(yaw)], lib)  # (..., 3)
    y = torch.linalg.cross(z, x, dim=-1) if lib is torch else np.cross(z, x)  # (..., 3)
    return _stack([x, y, z], lib)  # (..., 3, 3) columns


def _transpose(m):
    return m.transpose(-1, -2) if _lib(m) is torch else np.swapaxes(m, -1, -2)


def gaze_in_head(gaze_pitchyaw_rad, head_pitchyaw_rad):
    """(..., 2) camera-frame gaze, (..., 2) head -> (..., 2) gaze (pitch, yaw) in head coordinates, M^T g.
    (0, 0) = looking where the face points."""
    g = pitchyaw_to_vector(gaze_pitchyaw_rad)[..., None]  # (..., 3, 1)
    return vector_to_pitchyaw((_transpose(head_to_camera(head_pitchyaw_rad)) @ g)[..., 0])  # (..., 2)


def gaze_in_camera(gaze_head_pitchyaw_rad, head_pitchyaw_rad):
    """Inverse of `gaze_in_head`: (..., 2) head-relative gaze, (..., 2) head -> (..., 2) camera-frame gaze, M g."""
    g = pitchyaw_to_vector(gaze_head_pitchyaw_rad)[..., None]  # (..., 3, 1)
    return vector_to_pitchyaw((head_to_camera(head_pitchyaw_rad) @ g)[..., 0])  # (..., 2)
