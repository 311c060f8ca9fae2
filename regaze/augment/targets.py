"""Target angles for dataset augmentation: which new (gaze, head) each augmented sample is rendered with.

    sampler = TargetSampler(kind="kde", change="both", labels=np.c_[gaze, head], seed=0,
                            gaze_range_rad=..., head_range_rad=..., per_image=4)
    targets, in_range = sampler.targets(source_index=i, source_labels=labels[i])  # (K, 4) rad, (K,) bool

Every target is a pose the data could contain: its changed angles lie inside the ranges (gaze in the camera
frame), and its gaze lies within the data's eye-in-head range of its face direction (`limit_deg`, by default
`eye_range_deg` of the target pool's labels; regaze/data/pose_range.py). Eyes turn only so far in the head:
a gaze-only change that keeps the head, or a head-only change that keeps the camera-frame gaze, can
otherwise ask for an eye no image of the data shows (60 % of the old camera-frame KDE's gaze-only targets
on the synthetic data were past its 35° limit).

Kinds:
- "kde": a Gaussian kernel density estimate of the pool's joint labels *in head coordinates*: rows
  (gaze-in-head pitch, yaw, head pitch, yaw) (gaze-in-head = M^T g, geometry.gaze_in_head), Scott's
  bandwidth (kernel covariance = row covariance · n^(-2/(d+4)), d = 4). A draw is a random row plus kernel
  noise; "both" takes the whole draw (the gaze composed with the drawn head); "gaze" takes its head-relative
  gaze and composes it with the source's kept head; "head" takes its head and keeps the source's gaze.
- "uniform": independent uniform draws of the changed angles in the ranges.
- "grid": a lattice over the ranges (`grid_steps` values per changed angle); item (i, k) takes lattice
  point (i·K + k) mod G, so the lattice is covered evenly and K = G gives every source every point.

Out of range: a kde or uniform draw outside the ranges or past the eye-in-head limit is redrawn, up to
_DRAW_ROUNDS rounds; a target still out of range, and a lattice point out of range for this source, comes back
with in_range False. The caller leaves those items out (never writes an impossible label) and counts them.

Every draw comes from a generator seeded by (seed, source index) alone, with the same number of draws per
round whatever was accepted, so a sample's targets do not depend on batches, chunks, process counts or restarts.
"""
from __future__ import annotations

import math

import numpy as np

from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.errors import RegazeError
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD, gaze_in_camera, gaze_in_head

__all__ = ["TargetSampler", "TARGET_KINDS", "CHANGE_MODES", "CHANGE_CODES", "parse_range_deg", "label_range_rad",
           "check_range"]

TARGET_KINDS = ("kde", "uniform", "grid")
CHANGE_MODES = ("gaze", "head", "both")
CHANGE_CODES = {"source": 0, "gaze": 1, "head": 2, "both": 3}  # per-image `change_mode`; 0 = copy of the source
_DRAW_ROUNDS = 16  # kde / uniform: rounds of K fresh draws; items still out of range after them are left out
_EDGE_RAD = 1e-6  # a lattice point on a range's edge stays inside after the float32 cast of the stored label


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
    """Deterministic per-source target angles inside the data's range; see the module docstring.

    labels: (n, 4) the target pool (gaze pitch, yaw, head pitch, yaw) radians, camera frame.
    limit_deg: the eye-in-head range in degrees; None = eye_range_deg of the pool (the data's own range).
    """

    def __init__(self, *, kind: str, change: str, labels: np.ndarray, seed: int, per_image: int,
                 gaze_range_rad: np.ndarray, head_range_rad: np.ndarray, grid_steps: int = 0,
                 limit_deg: float | None = None):
        if kind not in TARGET_KINDS:
            raise RegazeError(f"unknown targets '{kind}'; expected one of {TARGET_KINDS}")
        if change not in CHANGE_MODES:
            raise RegazeError(f"unknown change '{change}'; expected one of {CHANGE_MODES}")
        if per_image < 1:
            raise RegazeError(f"per-image must be >= 1; got {per_image}")
        if grid_steps < 0:
            raise RegazeError(f"grid-steps must be >= 1 (0 = automatic); got {grid_steps}")
        check_range(gaze_range_rad, name="gaze range")
        check_range(head_range_rad, name="head range")
        labels = np.asarray(labels, dtype=np.float64)  # (n, 4)
        if labels.ndim != 2 or labels.shape[1] != 4 or not len(labels):
            raise RegazeError(f"target pool: expected (n >= 1, 4) labels (gaze pitch, yaw, head pitch, yaw); "
                              f"found shape {labels.shape}")
        self.limit_from_data = limit_deg is None
        if limit_deg is None:
            limit_deg = eye_range_deg(gaze=labels[:, :2], head=labels[:, 2:])
        if not (math.isfinite(limit_deg) and 0.0 < limit_deg <= 180.0):
            raise RegazeError(f"eye range: expected degrees in (0, 180]; got {limit_deg}")
        self.kind, self.change, self.seed, self.per_image = kind, change, int(seed), int(per_image)
        self.limit_deg = float(limit_deg)
        self.low = np.concatenate([gaze_range_rad[:, 0], head_range_rad[:, 0]])  # (4,)
        self.high = np.concatenate([gaze_range_rad[:, 1], head_range_rad[:, 1]])  # (4,)
        self.dims = {"gaze": [0, 1], "head": [2, 3], "both": [0, 1, 2, 3]}[change]  # the changed columns
        if kind == "kde":
            # rows in head coordinates: (gaze-in-head pitch, yaw, head pitch, yaw)
            self.rows = np.concatenate([gaze_in_head(labels[:, :2], labels[:, 2:]), labels[:, 2:]], axis=1)  # (n, 4)
            self.kernel = _scott_kernel(self.rows)  # (4, 4): noise = z @ kernel.T
        if kind == "grid":
            d = len(self.dims)
            steps = int(grid_steps) or max(2, math.ceil(per_image ** (1.0 / d) - 1e-9))
            axes = [np.linspace(self.low[j], self.high[j], steps) for j in self.dims]
            self.lattice = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)  # (G, d)

    def describe(self) -> dict:
        """Plain-data summary for provenance attributes (degrees)."""
        out = {"targets": self.kind, "change": self.change, "seed": self.seed, "per_image": self.per_image,
               "gaze_range_deg": np.degrees(np.stack([self.low[:2], self.high[:2]], 1)).round(6).tolist(),
               "head_range_deg": np.degrees(np.stack([self.low[2:], self.high[2:]], 1)).round(6).tolist(),
               "eye_range_deg": round(self.limit_deg, 6),
               "eye_range_from": "data" if self.limit_from_data else "given",
               "out_of_range": ("lattice points out of range for a source are left out" if self.kind == "grid" else
                                f"redrawn up to {_DRAW_ROUNDS} rounds, then left out")}
        if self.kind == "grid":
            out["grid_points"] = len(self.lattice)
        if self.kind == "kde":
            out["kde_space"] = "gaze in head coordinates, head"
            out["kde_bandwidth_deg"] = np.degrees(np.sqrt(np.diag(self.kernel @ self.kernel.T))).round(4).tolist()
        return out

    def in_range(self, targets: np.ndarray) -> np.ndarray:
        """(m, 4) targets rad -> (m,) bool: changed angles inside the ranges and the gaze within limit_deg of
        the face direction."""
        t = np.asarray(targets, dtype=np.float64)
        low, high = self.low[self.dims] - _EDGE_RAD, self.high[self.dims] + _EDGE_RAD
        inside = ((t[:, self.dims] >= low) & (t[:, self.dims] <= high)).all(axis=1)
        return inside & (eye_in_head_deg(gaze=t[:, :2], head=t[:, 2:]) <= self.limit_deg)

    def targets(self, *, source_index: int, source_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One source -> ((K, 4) float32 target (gaze pitch, yaw, head pitch, yaw) rad, (K,) bool in range).
        Kept angles = `source_labels` (4,); rows out of range hold the source's labels and must not be written."""
        k = self.per_image
        src = np.asarray(source_labels, dtype=np.float64)  # (4,)
        out = np.tile(src, (k, 1))  # (K, 4)
        if self.kind == "grid":
            items = (int(source_index) * k + np.arange(k)) % len(self.lattice)
            out[:, self.dims] = self.lattice[items]
            out = out.astype(np.float32)
            return out, self.in_range(out)
        rng = np.random.default_rng([self.seed, int(source_index)])
        ok = np.zeros(k, dtype=bool)
        for _ in range(_DRAW_ROUNDS):  # K fresh draws every round: the stream does not depend on acceptances
            cand = self._draw(rng, src=src, k=k).astype(np.float32)  # checked as it will be stored
            fresh = ~ok & self.in_range(cand)
            out[fresh] = cand[fresh]
            ok |= fresh
            if ok.all():
                break
        return out.astype(np.float32), ok

    def _draw(self, rng: np.random.Generator, *, src: np.ndarray, k: int) -> np.ndarray:
        """K candidate targets (K, 4) rad, kept angles from `src` (4,)."""
        out = np.tile(src, (k, 1))  # (K, 4)
        if self.kind == "uniform":
            low, high = self.low[self.dims], self.high[self.dims]
            out[:, self.dims] = low + (high - low) * rng.random((k, len(self.dims)))
            return out
        rows = self.rows[rng.integers(0, len(self.rows), size=k)]  # (K, 4) head coordinates
        draw = rows + rng.standard_normal((k, 4)) @ self.kernel.T  # (K, 4)
        if self.change in ("head", "both"):
            out[:, 2:] = draw[:, 2:]
        if self.change in ("gaze", "both"):
            out[:, :2] = gaze_in_camera(draw[:, :2], out[:, 2:])  # the kept head ("gaze") or the drawn one ("both")
        return out


def _scott_kernel(rows: np.ndarray) -> np.ndarray:
    """Square root of Scott's kernel covariance, cov(rows) · n^(-2/(d+4)), robust to singular rows -> (d, d)."""
    n, d = rows.shape
    if n < 2:
        return np.zeros((d, d))
    cov = np.cov(rows, rowvar=False) * n ** (-2.0 / (d + 4))  # (d, d)
    vals, vecs = np.linalg.eigh(cov)
    return vecs @ np.diag(np.sqrt(np.clip(vals, 0.0, None)))  # K with K K^T = cov
