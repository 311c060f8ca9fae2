"""Targets in range (issue 12, item 5): the gaze-only and head-only evaluation targets are drawn in head
coordinates within the data's own eye-in-head range, conditioned on the kept or the new head; every drawn
target is in range, where the former draw (the other image's gaze with the source's head) is not."""
from __future__ import annotations

import numpy as np
import pytest

from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.data.synth import PoseRanges, sample_poses
from regaze.evaluation.baselines import CopySource
from regaze.evaluation.eval_pairs import (GAZE_ONLY_MIN_CHANGE_DEG, HEAD_ONLY_MIN_CHANGE_DEG, held_out_indices,
                                          in_range_targets, sample_pairs)
from regaze.evaluation.readings import err_deg
from regaze.evaluation.redirection import evaluate_pairs
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import toy_context, toy_evaluate, toy_render


@pytest.fixture(scope="module")
def toy():
    return toy_context()


def _assert_in_range(*, gaze, head, source, t):
    limit = t["eye_range_deg"]
    g_ok, h_ok = t["gaze_only_feasible"], t["head_only_feasible"]
    gs, hs = gaze[source], head[source]
    assert (eye_in_head_deg(gaze=t["gaze_only_gaze"][g_ok], head=hs[g_ok]) <= limit + 1e-3).all()
    assert (eye_in_head_deg(gaze=gs[h_ok], head=t["head_only_head"][h_ok]) <= limit + 1e-3).all()
    assert (err_deg(t["gaze_only_gaze"][g_ok], gs[g_ok]) >= GAZE_ONLY_MIN_CHANGE_DEG - 1e-3).all()
    assert (err_deg(t["head_only_head"][h_ok], hs[h_ok]) >= HEAD_ONLY_MIN_CHANGE_DEG - 1e-3).all()


def test_every_drawn_target_is_in_the_synthetic_data_range_and_the_former_draw_was_not():
    head, gaze = sample_poses(3000, rng=np.random.default_rng(0), ranges=PoseRanges())  # the renderer's labels
    rng = np.random.default_rng(1)
    source, other = rng.choice(len(gaze), 600, replace=False), rng.choice(len(gaze), 600, replace=False)
    t = in_range_targets(gaze=gaze, head=head, source=source, seed=0)
    assert 30.0 < t["eye_range_deg"] <= 35.0 + 1e-6 and t["eye_range_deg"] == eye_range_deg(gaze=gaze, head=head)
    assert t["gaze_only_feasible"].mean() > 0.99 and t["head_only_feasible"].mean() > 0.8
    _assert_in_range(gaze=gaze, head=head, source=source, t=t)
    # the control: another image's gaze with the source's head, or its head with the source's gaze
    assert (eye_in_head_deg(gaze=gaze[other], head=head[source]) > t["eye_range_deg"]).mean() > 0.2
    assert (eye_in_head_deg(gaze=gaze[source], head=head[other]) > t["eye_range_deg"]).mean() > 0.2
    again = in_range_targets(gaze=gaze, head=head, source=source, seed=0)
    assert np.array_equal(again["gaze_only_gaze"], t["gaze_only_gaze"])  # seeded


def test_the_evaluation_stores_and_uses_in_range_targets(toy):
    ds = toy["ds"]
    result = toy_evaluate(toy, CopySource())
    p = result["pairs"]
    t = {"eye_range_deg": p["eye_range_deg"], **{k: np.asarray(p[k]) for k in
         ("gaze_only_gaze", "gaze_only_feasible", "head_only_head", "head_only_feasible")}}
    _assert_in_range(gaze=ds.gaze, head=ds.head, source=np.asarray(p["source"]), t=t)
    # copying the source misses the gaze-only target by at least the drawn change
    assert np.nanmin(result["per_pair"]["disentanglement"]["model"]["gaze_only_gaze_err_deg"]) > 0.0
    assert any("within the data's eye-in-head range" in n for n in result["notices"])


def test_infeasible_rows_are_left_out_of_the_single_factor_rows(toy):
    ds = toy["ds"]
    pairs = sample_pairs(subject=ds.subject, session=ds.session, indices=held_out_indices(ds)[0], n_pairs=8, seed=2)
    t = in_range_targets(gaze=ds.gaze, head=ds.head, source=pairs["source"], seed=2)
    t["head_only_feasible"][:3] = False
    t["gaze_only_feasible"][5] = False
    raw = evaluate_pairs(CopySource(), dataset=ds, estimator=toy["est"], pairs={**pairs, **t}, renderer=toy_render,
                         progress=False)
    pp = raw["per_pair"]
    assert np.isnan(pp["disentanglement"]["model"]["head_only_head_err_deg"][:3]).all()
    assert np.isfinite(pp["disentanglement"]["model"]["head_only_head_err_deg"][3:]).all()
    assert np.isnan(pp["image_quality"]["head_only"]["blur_sigma_1px"]["psnr_db"][:3]).all()
    assert np.isnan(pp["disentanglement"]["eye_composite"]["gaze_only_head_change_deg"][5])
    assert np.isfinite(pp["image_quality"]["full"]["model"]["psnr_db"]).all()  # full rows keep every pair
