"""The poses a dataset could contain, for drawing redirection targets (evaluation and augmentation).

Eyes turn only so far in the head: the synthetic faces keep the gaze within 35° of the face direction
(regaze/data/synth/generate.py, gaze_cone_deg), and real data have their own range. A gaze-only change that
keeps the head, or a head-only change that keeps the camera-frame gaze, can ask for an eye past that range,
which no image of the data shows and no redirector can be judged on. So targets are drawn in head
coordinates, conditioned on the kept or the new head:

    limit = eye_range_deg(gaze=ds.gaze, head=ds.head)                     # the data's own range, degrees
    gaze_new, ok = sample_gaze_for_head(head=h, gaze=g, pool_gaze=ds.gaze, pool_head=ds.head, limit_deg=limit,
                                        min_change_deg=10, rng=rng)       # gaze-only: head kept
    head_new, ok = sample_head_for_gaze(gaze=g, head=h, pool_head=ds.head, limit_deg=limit,
                                        min_change_deg=15, rng=rng)       # head-only: camera gaze kept

All angles are radians (n, 2) (pitch, yaw) unless a name says _deg. The angle between gaze and face
direction is `eye_in_head_deg` (the face points along pitchyaw_to_vector(head), DESIGN §2).
"""
from __future__ import annotations

import numpy as np

from regaze.geometry import angular_error_deg, gaze_in_camera, gaze_in_head

__all__ = ["eye_in_head_deg", "eye_range_deg", "sample_gaze_for_head", "sample_head_for_gaze", "EYE_RANGE_QUANTILE"]

EYE_RANGE_QUANTILE = 0.995  # the data's range: this quantile of its eye-in-head angles (robust to label outliers)
_TRIES = 200  # rejection rounds; sources still without a target are reported infeasible


def eye_in_head_deg(*, gaze: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(n, 2), (n, 2) rad -> (n,) degrees between the gaze and the direction the face points to."""
    return angular_error_deg(np.asarray(gaze, np.float64), np.asarray(head, np.float64))


def eye_range_deg(*, gaze: np.ndarray, head: np.ndarray, quantile: float = EYE_RANGE_QUANTILE) -> float:
    """The data's eye-in-head range in degrees: the `quantile` of its labels' eye_in_head_deg."""
    return float(np.quantile(eye_in_head_deg(gaze=gaze, head=head), quantile))


def sample_gaze_for_head(*, head: np.ndarray, gaze: np.ndarray, pool_gaze: np.ndarray, pool_head: np.ndarray,
                         limit_deg: float, min_change_deg: float, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Gaze-only targets: for each source (head (n, 2) kept, gaze (n, 2) current) a head-relative gaze drawn
    from the data's own (pool_gaze, pool_head (m, 2)) within limit_deg, composed with the source's head, at
    least min_change_deg from the current gaze -> (new gaze (n, 2) float32 rad, feasible (n,) bool).
    Infeasible rows keep the current gaze."""
    head = np.asarray(head, np.float64)
    new_gaze = np.asarray(gaze, np.float64).copy()
    pool = gaze_in_head(np.asarray(pool_gaze, np.float64), np.asarray(pool_head, np.float64))  # (m, 2) in head frame
    pool = pool[angular_error_deg(pool, np.zeros_like(pool)) <= limit_deg]
    todo = np.arange(len(head))
    for _ in range(_TRIES):
        if not len(todo) or not len(pool):
            break
        cand = gaze_in_camera(pool[rng.integers(0, len(pool), len(todo))], head[todo])  # (t, 2) camera frame
        ok = angular_error_deg(cand, new_gaze[todo]) >= min_change_deg
        new_gaze[todo[ok]] = cand[ok]
        todo = todo[~ok]
    feasible = np.ones(len(head), bool)
    feasible[todo] = False
    return new_gaze.astype(np.float32), feasible


def sample_head_for_gaze(*, gaze: np.ndarray, head: np.ndarray, pool_head: np.ndarray, limit_deg: float,
                         min_change_deg: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Head-only targets: for each source (gaze (n, 2) kept in the camera frame, head (n, 2) current) a head
    pose drawn from the data's heads (pool_head (m, 2)) that keeps the gaze within limit_deg of the new face
    direction and moves the head by at least min_change_deg -> (new head (n, 2) float32 rad, feasible (n,)
    bool). A gaze far to one side may have no such head in the data: that row is infeasible (head kept)."""
    gaze = np.asarray(gaze, np.float64)
    new_head = np.asarray(head, np.float64).copy()
    pool = np.asarray(pool_head, np.float64)
    todo = np.arange(len(gaze))
    for _ in range(_TRIES):
        if not len(todo) or not len(pool):
            break
        cand = pool[rng.integers(0, len(pool), len(todo))]  # (t, 2)
        ok = (angular_error_deg(cand, new_head[todo]) >= min_change_deg) & \
             (eye_in_head_deg(gaze=gaze[todo], head=cand) <= limit_deg)
        new_head[todo[ok]] = cand[ok]
        todo = todo[~ok]
    feasible = np.ones(len(gaze), bool)
    feasible[todo] = False
    return new_head.astype(np.float32), feasible
