"""Augmentation targets (issue 12, item 5): every drawn target is a pose the data could contain: its changed
angles inside the ranges and its gaze within the data's eye-in-head range of the face direction; draws that
are not are flagged, never handed out as labels; the draws are deterministic per (seed, source)."""
from __future__ import annotations

import numpy as np
import pytest

from regaze.augment.targets import TargetSampler, label_range_rad, parse_range_deg
from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.data.synth import PoseRanges, sample_poses
from regaze.errors import RegazeError
from regaze.geometry import gaze_in_head

KINDS = ("kde", "uniform", "grid")
CHANGES = ("gaze", "head", "both")


@pytest.fixture(scope="module")
def synth_labels() -> np.ndarray:
    """(2000, 4) gaze, head of the synthetic renderer (eye within 35° of the face direction)."""
    head, gaze = sample_poses(2000, rng=np.random.default_rng(0), ranges=PoseRanges())
    return np.concatenate([gaze, head], axis=1).astype(np.float64)


def _sampler(labels, *, kind, change, per_image=6, **kw) -> TargetSampler:
    kw = {"gaze_range_rad": label_range_rad(labels[:, :2]), "head_range_rad": label_range_rad(labels[:, 2:]), **kw}
    return TargetSampler(kind=kind, change=change, labels=labels, seed=3, per_image=per_image, **kw)


def _draw(sampler, labels, n=300):
    """Targets of the first n sources -> (targets (n·K, 4), in_range (n·K,), source rows (n·K, 4))."""
    out = [sampler.targets(source_index=i, source_labels=labels[i]) for i in range(n)]
    src = np.repeat(labels[:n], sampler.per_image, axis=0)
    return np.concatenate([t for t, _ in out]), np.concatenate([ok for _, ok in out]), src


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("change", CHANGES)
def test_all_drawn_targets_are_in_range_and_keep_the_kept_angles(synth_labels, kind, change):
    sampler = _sampler(synth_labels, kind=kind, change=change)
    limit = eye_range_deg(gaze=synth_labels[:, :2], head=synth_labels[:, 2:])  # the data's own range
    assert sampler.limit_deg == pytest.approx(limit) and 30.0 < limit <= 35.0 + 1e-6
    targets, ok, src = _draw(sampler, synth_labels)
    assert targets.dtype == np.float32 and targets.shape == (len(src), 4)
    good = targets[ok].astype(np.float64)
    assert (eye_in_head_deg(gaze=good[:, :2], head=good[:, 2:]) <= limit + 1e-4).all()
    dims = {"gaze": [0, 1], "head": [2, 3], "both": [0, 1, 2, 3]}[change]
    kept = [j for j in range(4) if j not in dims]
    np.testing.assert_allclose(targets[:, kept], src[:, kept], atol=1e-6)  # kept angles are the source's
    box = np.concatenate([label_range_rad(synth_labels[:, :2]), label_range_rad(synth_labels[:, 2:])])  # (4, 2)
    assert ((good[:, dims] >= box[dims, 0] - 1e-6) & (good[:, dims] <= box[dims, 1] + 1e-6)).all()
    # flagged rows are really out of range (independently measured), and hold no new label
    bad = targets[~ok].astype(np.float64)
    outside = (eye_in_head_deg(gaze=bad[:, :2], head=bad[:, 2:]) > limit) | \
              ((bad[:, dims] < box[dims, 0]) | (bad[:, dims] > box[dims, 1])).any(axis=1)
    assert outside.all() if kind == "grid" else np.allclose(bad, src[~ok], atol=1e-6)
    if kind != "grid":  # redrawn until in range: few left out (head-only: some gazes have no head in the data)
        assert ok.mean() > (0.9 if change == "head" else 0.97), ok.mean()
    assert sampler.describe()["eye_range_deg"] == pytest.approx(limit)


def test_without_the_eye_range_gaze_only_targets_leave_the_range(synth_labels):
    """The control: the same draws with the eye limit off put many eyes past the data's range."""
    limit = eye_range_deg(gaze=synth_labels[:, :2], head=synth_labels[:, 2:])
    for kind in ("uniform", "grid"):
        free = _sampler(synth_labels, kind=kind, change="gaze", limit_deg=180.0)
        targets, ok, _ = _draw(free, synth_labels)
        assert ok.all()
        assert (eye_in_head_deg(gaze=targets[:, :2], head=targets[:, 2:]) > limit).mean() > 0.3
        _, ok_ranged, _ = _draw(_sampler(synth_labels, kind=kind, change="gaze"), synth_labels)
        assert ok_ranged.mean() < 0.7 if kind == "grid" else ok_ranged.mean() > 0.95


def test_kde_is_the_datas_density_in_head_coordinates():
    rng = np.random.default_rng(0)
    head = rng.normal(0, 0.2, (400, 2))
    gaze_h = rng.normal(0, 0.1, (400, 2))  # gaze relative to the head
    from regaze.geometry import gaze_in_camera

    labels = np.concatenate([gaze_in_camera(gaze_h, head), head], axis=1)
    full = np.array([[-1.5, 1.5], [-3.0, 3.0]])
    kde = TargetSampler(kind="kde", change="both", labels=labels, seed=3, per_image=50, gaze_range_rad=full,
                        head_range_rad=full, limit_deg=180.0)
    draws = np.concatenate([kde.targets(source_index=i, source_labels=labels[i])[0] for i in range(200)])  # (10000, 4)
    rows = np.concatenate([gaze_in_head(draws[:, :2].astype(np.float64), draws[:, 2:].astype(np.float64)), draws[:, 2:]], 1)
    truth = np.concatenate([gaze_h, head], 1)
    np.testing.assert_allclose(rows.std(0), np.sqrt(truth.var(0) * (1 + 400 ** (-2 / 8))), rtol=0.1)
    assert kde.describe()["kde_space"] == "gaze in head coordinates, head"
    # gaze-only: the head is kept, the head-relative gaze follows the data's
    gaze_only = TargetSampler(kind="kde", change="gaze", labels=labels, seed=3, per_image=50, gaze_range_rad=full,
                              head_range_rad=full, limit_deg=180.0)
    src = np.array([0.1, -0.2, 0.3, 0.4])
    t, ok = gaze_only.targets(source_index=0, source_labels=src)
    assert ok.all() and np.allclose(t[:, 2:], src[2:])
    rel = gaze_in_head(t[:, :2].astype(np.float64), t[:, 2:].astype(np.float64))
    assert np.abs(rel.mean(0)).max() < 0.06 and 0.07 < rel.std(0).mean() < 0.15


def test_draws_are_deterministic_per_seed_and_source(synth_labels):
    a = _sampler(synth_labels, kind="kde", change="gaze")
    b = _sampler(synth_labels, kind="kde", change="gaze")
    first = [a.targets(source_index=i, source_labels=synth_labels[i]) for i in (5, 9)]
    later = [b.targets(source_index=i, source_labels=synth_labels[i]) for i in (9, 5)][::-1]  # other order
    for (t1, ok1), (t2, ok2) in zip(first, later):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(ok1, ok2)
    assert not np.array_equal(first[0][0], first[1][0])
    other_seed = TargetSampler(kind="kde", change="gaze", labels=synth_labels, seed=4, per_image=6,
                               gaze_range_rad=label_range_rad(synth_labels[:, :2]),
                               head_range_rad=label_range_rad(synth_labels[:, 2:]))
    assert not np.array_equal(other_seed.targets(source_index=5, source_labels=synth_labels[5])[0], first[0][0])


def test_grid_covers_the_lattice_and_flags_points_out_of_range():
    rng = np.random.default_rng(0)
    labels = np.concatenate([rng.normal(0, 0.2, (400, 2)), rng.normal(0, 0.1, (400, 2))], 1)
    full = np.array([[-1.5, 1.5], [-3.0, 3.0]])
    narrow = np.array([[-0.1, 0.1], [-0.1, 0.1]])
    grid = TargetSampler(kind="grid", change="gaze", labels=labels, seed=0, per_image=9, gaze_range_rad=narrow,
                         head_range_rad=full)
    points, ok = grid.targets(source_index=5, source_labels=np.zeros(4))
    assert ok.all() and len(np.unique(points[:, :2], axis=0)) == 9 and np.allclose(np.unique(points[:, 0]), [-0.1, 0, 0.1])
    # a head turned 40° right: the lattice points on its far side are past a 30° eye range
    turned = np.radians([0.0, 0.0, 0.0, 40.0])
    wide = TargetSampler(kind="grid", change="gaze", labels=labels, seed=0, per_image=25, gaze_range_rad=np.radians([[-30, 30], [-30, 30]]),
                         head_range_rad=full, limit_deg=30.0)
    points, ok = wide.targets(source_index=0, source_labels=turned)
    eye = eye_in_head_deg(gaze=points[:, :2], head=points[:, 2:])
    np.testing.assert_array_equal(ok, eye <= 30.0)
    assert 0 < ok.sum() < 25
    assert "left out" in wide.describe()["out_of_range"] and wide.describe()["eye_range_from"] == "given"


def test_bad_ranges_are_clear_errors():
    labels = np.zeros((10, 4))
    full = np.array([[-1.5, 1.5], [-3.0, 3.0]])
    with pytest.raises(RegazeError, match="valid range"):
        parse_range_deg("95,10", name="--gaze-range")
    with pytest.raises(RegazeError, match="min must not exceed max"):
        parse_range_deg("10,-10,0,5", name="--head-range")
    with pytest.raises(RegazeError, match="eye range"):
        TargetSampler(kind="kde", change="gaze", labels=labels, seed=0, per_image=2, gaze_range_rad=full,
                      head_range_rad=full, limit_deg=0.0)
    with pytest.raises(RegazeError, match="target pool"):
        TargetSampler(kind="kde", change="gaze", labels=np.zeros((0, 4)), seed=0, per_image=2, gaze_range_rad=full,
                      head_range_rad=full)
