"""Target angles for dataset augmentation: which new (gaze, head) each augmented sample is rendered with.

    sampler = TargetSampler(kind="kde", change="both", labels=np.c_[gaze, head], seed=0,
                            gaze_range_rad=..., head_range_rad=..., per_image=4)
    gaze_t, head_t = sampler.targets(source_index=i)      # (K, 2), (K, 2) radians, pitch/yaw

Kinds:
- "kde": the input's own joint label distribution: a 4-D Gaussian kernel density estimate on
  (gaze pitch, gaze yaw, head pitch, head yaw) with Scott's bandwidth (kernel covariance = label covariance
  · n^(-2/(d+4)), d = 4): pick a random label row, add kernel noise; a draw outside the range is redrawn
  (up to 8 times) and then clipped, so mass does not pile up on the range's edges.
- "uniform": independent uniform draws in the ranges.
- "grid": a lattice over the ranges (`grid_steps` values per changed angle); item (i, k) takes lattice
  point (i·K + k) mod G, so the lattice is covered evenly and K = G gives every source every point.

Every draw comes from a generator seeded by (seed, source index) alone, so a sample's targets do not
depend on batches, chunks, process counts or restarts. The angles that `change` keeps are the source's
labels (filled in by the caller); only the changed ones are drawn.
"""
from __future__ import annotations

import math

import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD

__all__ = ["TargetSampler", "TARGET_KINDS", "CHANGE_MODES", "CHANGE_CODES", "parse_range_deg", "label_range_rad"]

TARGET_KINDS = ("kde", "uniform", "grid")
CHANGE_MODES = ("gaze", "head", "both")
CHANGE_CODES = {"source": 0, "gaze": 1, "head": 2, "both": 3}  # per-image `change_mode`; 0 = copy of the source
_REDRAWS = 8


def parse_range_deg(text: str, *, name: str) -> np.ndarray:
    """'P,Y' (|pitch| <= P, |yaw| <= Y) or 'PMIN,PMAX,YMIN,YMAX' in degrees -> (2, 2) radians [[pmin, pmax], [ymin, ymax]]."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as e:
        raise RegazeError(f"{name}: expected 'P,Y' or 'PMIN,PMAX,YMIN,YMAX' in degrees; found {text!r}") from e
    if len(values) == 2:
        if min(values) < 0:
            raise RegazeError(f"{name}: 'P,Y' gives half-widths |pitch| <= P, |yaw| <= Y and must be >= 0; found {text!r}")
        values = [-values[0], values[0], -values[1], values[1]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise RegazeError(f"{name}: expected 'P,Y' or 'PMIN,PMAX,YMIN,YMAX' in degrees; found {text!r}")
    rng = np.radians(np.array(values, dtype=np.float64).reshape(2, 2))  # (2, 2): rows pitch, yaw
    check_range(rng, name=name)
    return rng


def check_range(range_rad: np.ndarray, *, name: str) -> None:
    """(2, 2) [[pmin, pmax], [ymin, ymax]] radians: ordered and within |pitch| <= 90°, |yaw| <= 180°."""
    r = np.asarray(range_rad, dtype=np.float64)
    if r.shape != (2, 2) or not np.isfinite(r).all():
        raise RegazeError(f"{name}: expected [[pitch min, max], [yaw min, max]]; found {r.tolist()}")
    deg = np.degrees(r)
    if (r[:, 0] > r[:, 1]).any():
        raise RegazeError(f"{name}: min must not exceed max; found pitch {deg[0].tolist()}, yaw {deg[1].tolist()} degrees")
    if np.abs(r[0]).max() > MAX_PITCH_RAD + 1e-9 or np.abs(r[1]).max() > MAX_YAW_RAD + 1e-9:
        raise RegazeError(f"{name}: out of the valid range |pitch| <= 90°, |yaw| <= 180°; found pitch "
                          f"{deg[0].round(2).tolist()}, yaw {deg[1].round(2).tolist()} degrees")


def label_range_rad(labels: np.ndarray) -> np.ndarray:
    """(n, 2) pitch/yaw labels -> their observed range (2, 2) [[pmin, pmax], [ymin, ymax]]."""
    return np.stack([labels.min(axis=0), labels.max(axis=0)], axis=1).astype(np.float64)


class TargetSampler:
    """Deterministic per-source target angles; see the module docstring."""

    def __init__(self, *, kind: str, change: str, labels: np.ndarray, seed: int, per_image: int,
                 gaze_range_rad: np.ndarray, head_range_rad: np.ndarray, grid_steps: int = 0):
        if kind not in TARGET_KINDS:
            raise RegazeError(f"unknown targets '{kind}'; expected one of {TARGET_KINDS}")
        if change not in CHANGE_MODES:
            raise RegazeError(f"unknown change '{change}'; expected one of {CHANGE_MODES}")
        if per_image < 1:
            raise RegazeError(f"per-image must be >= 1; got {per_image}")
        check_range(gaze_range_rad, name="gaze range")
        check_range(head_range_rad, name="head range")
        self.kind, self.change, self.seed, self.per_image = kind, change, int(seed), int(per_image)
        self.labels = np.asarray(labels, dtype=np.float64)  # (n, 4): gaze pitch, yaw, head pitch, yaw
        self.low = np.concatenate([gaze_range_rad[:, 0], head_range_rad[:, 0]])  # (4,)
        self.high = np.concatenate([gaze_range_rad[:, 1], head_range_rad[:, 1]])  # (4,)
        self.dims = {"gaze": [0, 1], "head": [2, 3], "both": [0, 1, 2, 3]}[change]  # the drawn columns
        if kind == "kde":
            self.kernel = _scott_kernel(self.labels)  # (4, 4): noise = z @ kernel.T
        if kind == "grid":
            d = len(self.dims)
            steps = int(grid_steps) or max(2, math.ceil(per_image ** (1.0 / d) - 1e-9))
            if steps < 1:
                raise RegazeError(f"grid-steps must be >= 1; got {grid_steps}")
            axes = [np.linspace(self.low[j], self.high[j], steps) for j in self.dims]
            self.lattice = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)  # (G, d)

    def describe(self) -> dict:
        """Plain-data summary for provenance attributes (degrees)."""
        out = {"targets": self.kind, "change": self.change, "seed": self.seed, "per_image": self.per_image,
               "gaze_range_deg": np.degrees(np.stack([self.low[:2], self.high[:2]], 1)).round(6).tolist(),
               "head_range_deg": np.degrees(np.stack([self.low[2:], self.high[2:]], 1)).round(6).tolist()}
        if self.kind == "grid":
            out["grid_points"] = len(self.lattice)
        if self.kind == "kde":
            out["kde_bandwidth_deg"] = np.degrees(np.sqrt(np.diag(self.kernel @ self.kernel.T))).round(4).tolist()
        return out

    def targets(self, *, source_index: int, source_labels: np.ndarray) -> np.ndarray:
        """(K, 4) target (gaze pitch, yaw, head pitch, yaw) radians for one source; kept angles = `source_labels` (4,)."""
        k = self.per_image
        out = np.tile(np.asarray(source_labels, dtype=np.float64), (k, 1))  # (K, 4)
        if self.kind == "grid":
            items = (int(source_index) * k + np.arange(k)) % len(self.lattice)
            out[:, self.dims] = self.lattice[items]
            return out.astype(np.float32)
        rng = np.random.default_rng([self.seed, int(source_index)])
        low, high = self.low[self.dims], self.high[self.dims]
        if self.kind == "uniform":
            out[:, self.dims] = low + (high - low) * rng.random((k, len(self.dims)))
            return out.astype(np.float32)
        rows = self.labels[rng.integers(0, len(self.labels), size=k)]  # (K, 4)
        draw = rows + rng.standard_normal((k, 4)) @ self.kernel.T  # (K, 4)
        for _ in range(_REDRAWS):  # the same number of draws every time: results stay deterministic
            outside = ((draw[:, self.dims] < low) | (draw[:, self.dims] > high)).any(axis=1)  # (K,)
            fresh = rows + rng.standard_normal((k, 4)) @ self.kernel.T
            draw[outside] = fresh[outside]
        out[:, self.dims] = np.clip(draw[:, self.dims], low, high)
        return out.astype(np.float32)


def _scott_kernel(labels: np.ndarray) -> np.ndarray:
    """Square root of Scott's kernel covariance, cov(labels) · n^(-2/(d+4)), robust to singular labels -> (d, d)."""
    n, d = labels.shape
    if n < 2:
        return np.zeros((d, d))
    cov = np.cov(labels, rowvar=False) * n ** (-2.0 / (d + 4))  # (d, d)
    vals, vecs = np.linalg.eigh(cov)
    return vecs @ np.diag(np.sqrt(np.clip(vals, 0.0, None)))  # K with K K^T = cov
