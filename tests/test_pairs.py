"""Pair sampler: same person, different pose, sessions first, seeded, rank shards disjoint and covering."""
import numpy as np
import pytest

from regaze.data.pairs import PairSampler
from regaze.errors import RegazeError
from regaze.geometry import angular_error_deg


def _labels(n=300, subjects=6, sessions=5, seed=0):
    rng = np.random.default_rng(seed)
    subject = rng.integers(0, subjects, n)
    return {"gaze": rng.uniform(-0.5, 0.5, (n, 2)), "head": rng.uniform(-0.5, 0.5, (n, 2)),
            "subject": subject, "session": subject * 100 + rng.integers(0, sessions, n)}


def _pose_differs(lab, pairs, *, min_gaze_deg, min_head_deg):
    a, b = pairs[:, 0], pairs[:, 1]
    return (angular_error_deg(lab["gaze"][a], lab["gaze"][b]) >= min_gaze_deg) | \
        (angular_error_deg(lab["head"][a], lab["head"][b]) >= min_head_deg)


def test_reproducible_for_a_seed():
    lab = _labels()
    p1 = PairSampler(**lab, seed=3).sample(200)
    p2 = PairSampler(**lab, seed=3).sample(200)
    p3 = PairSampler(**lab, seed=4).sample(200)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)
    s = PairSampler(**lab, seed=3)
    np.testing.assert_array_equal(s.sample(50, rng=np.random.default_rng(9)), s.sample(50, rng=np.random.default_rng(9)))
    np.testing.assert_array_equal(s.epoch(2), PairSampler(**lab, seed=3).epoch(2))
    assert p1.dtype == np.int64 and p1.shape == (200, 2)


def test_same_session_and_pose_difference():
    lab = _labels()
    s = PairSampler(**lab, min_gaze_deg=10, min_head_deg=10, seed=0)
    pairs = s.sample(2000)
    assert s.rule == "session"
    assert (lab["session"][pairs[:, 0]] == lab["session"][pairs[:, 1]]).all()
    assert (lab["subject"][pairs[:, 0]] == lab["subject"][pairs[:, 1]]).all()
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert _pose_differs(lab, pairs, min_gaze_deg=10, min_head_deg=10).all()


def test_pose_threshold_is_gaze_or_head():
    # two images per subject: subject 0 differs only in gaze, subject 1 only in head, subject 2 in neither
    gaze = np.radians([[0, 0], [0, 20], [0, 0], [0, 0], [0, 0], [0, 1]])
    head = np.radians([[0, 0], [0, 0], [0, 0], [20, 0], [0, 0], [1, 0]])
    s = PairSampler(gaze, head, [0, 0, 1, 1, 2, 2], min_gaze_deg=5, min_head_deg=5)
    assert s.rule == "subject" and s.skipped_groups == 1 and s.skipped_images == 2
    assert sorted(map(tuple, np.unique(s.sample(100), axis=0))) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    head_only = PairSampler(None, head, [0, 0, 1, 1, 2, 2], min_gaze_deg=5, min_head_deg=5)
    assert set(head_only.sample(50).ravel()) == {2, 3}


def test_single_image_groups_skipped_and_counted():
    lab = _labels(n=40, subjects=4)
    lab["subject"] = np.append(lab["subject"], [10, 11])  # two subjects with one image each
    for k in ("gaze", "head"):
        lab[k] = np.concatenate([lab[k], np.zeros((2, 2))])
    del lab["session"]
    s = PairSampler(**lab)
    assert s.rule == "subject" and s.skipped_groups == 2 and s.skipped_images == 2
    assert not np.isin(s.sample(500), [40, 41]).any()


def test_falls_back_to_subjects_when_sessions_give_no_pairs():
    lab = _labels(n=50)
    lab["session"] = np.arange(50)  # every session a single image
    s = PairSampler(**lab)
    assert s.rule == "subject" and s.skipped_groups == 0
    with pytest.raises(RegazeError, match="no valid pairs"):
        PairSampler(**lab, rule="session")


def test_rank_shards_disjoint_and_covering():
    lab = _labels(n=301)
    world = 3
    samplers = [PairSampler(**lab, seed=5, rank=r, world_size=world) for r in range(world)]
    shards = [set(s.anchors.tolist()) for s in samplers]
    assert all(not (shards[i] & shards[j]) for i in range(world) for j in range(i + 1, world))
    single = PairSampler(**lab, seed=5)
    assert set().union(*shards) == set(single.anchors.tolist())
    for s, shard in zip(samplers, shards):
        assert set(s.sample(300)[:, 0].tolist()) <= shard
        epoch = s.epoch(0)
        assert sorted(epoch[:, 0].tolist()) == sorted(shard)  # every anchor once per epoch


def test_indices_restrict_anchors_and_partners():
    lab = _labels()
    subset = np.flatnonzero(lab["subject"] < 3)
    pairs = PairSampler(**lab, indices=subset).sample(500)
    assert np.isin(pairs, subset).all()


def test_no_pairs_is_a_clear_error():
    with pytest.raises(RegazeError, match="no valid pairs among 3 images"):
        PairSampler(np.zeros((3, 2)), np.zeros((3, 2)), [0, 1, 2])


def test_large_groups_use_probe_and_stay_valid():
    lab = _labels(n=3000, subjects=1)
    del lab["session"]
    s = PairSampler(**lab, exact_group_limit=256, min_gaze_deg=30, min_head_deg=30)
    pairs = s.sample(1000)
    assert _pose_differs(lab, pairs, min_gaze_deg=30, min_head_deg=30).all()
