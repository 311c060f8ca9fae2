"""Targets drawn in head coordinates stay inside the data's own eye-in-head range (issue 12, item 5)."""
from __future__ import annotations

import numpy as np

from regaze.data.pose_range import eye_in_head_deg, eye_range_deg, sample_gaze_for_head, sample_head_for_gaze
from regaze.data.synth import PoseRanges, sample_poses


def _synthetic_labels(n=2000, seed=0):
    return sample_poses(n, rng=np.random.default_rng(seed), ranges=PoseRanges())  # (head, gaze) of the renderer


def test_synthetic_labels_have_the_renderers_35_degree_range():
    head, gaze = _synthetic_labels()
    assert 30.0 < eye_range_deg(gaze=gaze, head=head) <= 35.0 + 1e-6


def test_gaze_only_targets_keep_the_head_and_stay_in_range():
    head, gaze = _synthetic_labels()
    limit = eye_range_deg(gaze=gaze, head=head)
    new_gaze, ok = sample_gaze_for_head(head=head[:500], gaze=gaze[:500], pool_gaze=gaze, pool_head=head,
                                        limit_deg=limit, min_change_deg=10.0, rng=np.random.default_rng(1))
    assert ok.mean() > 0.99
    assert (eye_in_head_deg(gaze=new_gaze, head=head[:500]) <= limit + 1e-3).all()
    moved = eye_in_head_deg(gaze=new_gaze[ok], head=gaze[:500][ok])  # angle between old and new gaze
    assert (moved >= 10.0 - 1e-3).all()


def test_head_only_targets_keep_the_gaze_in_range_of_the_new_head_or_say_infeasible():
    head, gaze = _synthetic_labels()
    limit = eye_range_deg(gaze=gaze, head=head)
    new_head, ok = sample_head_for_gaze(gaze=gaze[:500], head=head[:500], pool_head=head, limit_deg=limit,
                                        min_change_deg=15.0, rng=np.random.default_rng(2))
    assert ok.mean() > 0.8
    assert (eye_in_head_deg(gaze=gaze[:500][ok], head=new_head[ok]) <= limit + 1e-3).all()
    assert (np.degrees(np.abs(new_head[~ok] - head[:500][~ok])) < 1e-4).all()  # infeasible rows keep the head


def test_naive_targets_would_leave_the_range():
    """The control: other images' gaze with the source's head (what evaluation did) is often out of range."""
    head, gaze = _synthetic_labels()
    limit = eye_range_deg(gaze=gaze, head=head)
    rng = np.random.default_rng(3)
    naive = gaze[rng.permutation(len(gaze))]
    assert (eye_in_head_deg(gaze=naive, head=head) > limit).mean() > 0.2
