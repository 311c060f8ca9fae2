"""What an independent estimator reads in each augmented image, and whether the image shows its label.

`regaze augment --estimator DIR` passes `read_angles(images_u8 (n, S, S, 3)) -> {"gaze": (n, 2), "head":
(n, 2)}` radians (the evaluation estimator, loaded by the CLI: augment/ never imports evaluation/). Per
sample the output then holds:

    estimated_gaze, estimated_head      (N, 2) float32 rad   the estimator's reading of the written image
    residual_gaze_deg, residual_head_deg (N,) float32 deg    angle between that reading and the label

On source copies the residual is the estimator's own error on real images: the floor to compare with.
`--max-residual-deg X` leaves out redirected samples whose gaze or head residual exceeds X (copies are
real images and always kept); the number left out is in the output's provenance.
"""
from __future__ import annotations

import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import angular_error_deg

__all__ = ["ESTIMATE_KEYS", "read_residuals", "residual_keep"]

ESTIMATE_KEYS = ("estimated_gaze", "estimated_head", "residual_gaze_deg", "residual_head_deg")


def read_residuals(read_angles, images: np.ndarray, *, gaze: np.ndarray, head: np.ndarray) -> dict:
    """images (n, S, S, 3) uint8, labels gaze / head (n, 2) rad -> the four ESTIMATE_KEYS arrays (n, ...)."""
    n = len(images)
    found = read_angles(images)
    out = {}
    for name in ("gaze", "head"):
        value = None if not isinstance(found, dict) else found.get(name)
        value = None if value is None else np.asarray(value, dtype=np.float32)
        if value is None or value.shape != (n, 2) or not np.isfinite(value).all():
            raise RegazeError(f"the estimator's read_angles should return {{'gaze', 'head'}}: finite ({n}, 2) radians "
                              f"for {n} images; found {name} {None if value is None else value.shape}")
        out[f"estimated_{name}"] = value
    out["residual_gaze_deg"] = angular_error_deg(out["estimated_gaze"].astype(np.float64),
                                                 np.asarray(gaze, np.float64)).astype(np.float32)  # (n,)
    out["residual_head_deg"] = angular_error_deg(out["estimated_head"].astype(np.float64),
                                                 np.asarray(head, np.float64)).astype(np.float32)  # (n,)
    return out


def residual_keep(rows: dict, *, copy: np.ndarray, max_residual_deg: float) -> np.ndarray:
    """(n,) bool: source copies, and redirected samples whose gaze and head residuals are <= max_residual_deg."""
    worst = np.maximum(rows["residual_gaze_deg"], rows["residual_head_deg"])  # (n,) deg
    return copy | (worst <= max_residual_deg)
