"""Synthetic faces: determinism, batch invariance, identity stability, the dataset writer and the CLI."""
import numpy as np
import pytest

from regaze.data.synth import (IDENTITY_PARAMS, SESSION_PARAMS, render, sample_identities, sample_sessions,
                               write_synthetic_dataset)
from regaze.data.synth.generate import PoseRanges, sample_dataset, sample_poses, split_subjects
from regaze.errors import RegazeError


def _batch(n, seed, ranges=PoseRanges()):
    rng = np.random.default_rng(seed)
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng, ranges)
    return ids, ses, head, gaze


def test_parameter_vectors_are_float32_named_and_seeds_exact():
    rng = np.random.default_rng(0)
    ids, ses = sample_identities(5, rng), sample_sessions(5, rng)
    assert ids.dtype == np.float32 and ids.shape == (5, len(IDENTITY_PARAMS)) and len(IDENTITY_PARAMS) >= 12
    assert ses.dtype == np.float32 and ses.shape == (5, len(SESSION_PARAMS))
    seeds = ses[:, SESSION_PARAMS.index("noise_seed")]
    assert np.array_equal(seeds, np.round(seeds)) and seeds.max() < 2**24  # exact in float32


@pytest.mark.parametrize("size", [64, 128, 224])
def test_same_parameters_give_identical_bytes_alone_or_in_any_batch(size):
    n = 20 if size < 224 else 10
    ids, ses, head, gaze = _batch(n, seed=size)
    full = render(identity=ids, session=ses, head=head, gaze=gaze, size=size)
    assert full.shape == (n, size, size, 3) and full.dtype == np.uint8
    again = render(identity=ids, session=ses, head=head, gaze=gaze, size=size)
    assert np.array_equal(full, again)
    for i in (0, 7, n - 1):  # a single vector gives the same image as its row in the batch
        one = render(identity=ids[i], session=ses[i], head=head[i], gaze=gaze[i], size=size)
        assert one.shape == (size, size, 3) and np.array_equal(one, full[i])
    assert np.array_equal(render(identity=ids[3:9], session=ses[3:9], head=head[3:9], gaze=gaze[3:9],
                                 size=size), full[3:9])


def test_noise_seed_changes_only_the_noise():
    ids, ses, head, gaze = _batch(2, seed=1)
    ses[:, SESSION_PARAMS.index("noise_std")] = 0.02
    other = ses.copy()
    other[:, SESSION_PARAMS.index("noise_seed")] += 1
    a = render(identity=ids, session=ses, head=head, gaze=gaze, size=64).astype(int)
    b = render(identity=ids, session=other, head=head, gaze=gaze, size=64).astype(int)
    assert not np.array_equal(a, b) and np.abs(a - b).mean() < 8


def test_bad_shapes_and_sizes_are_rejected():
    ids, ses, head, gaze = _batch(2, seed=2)
    with pytest.raises(ValueError, match="session"):
        render(identity=ids, session=ses[:, :5], head=head, gaze=gaze)
    with pytest.raises(ValueError, match="size"):
        render(identity=ids, session=ses, head=head, gaze=gaze, size=100)


def _descriptor(images):
    """Colour percentiles (10/50/90 per channel) of three crops: the face (centre), its middle (nose and
    cheeks: skin) and the top band (hair, forehead). Pose moves features by a few pixels but hardly changes
    these distributions; identities differ in skin, hair, brow and iris colour, glasses, and in how much of
    each crop skin and hair cover (hairline, face shape). (n, 27)."""
    f = images.astype(np.float64) / 255.0
    n, s = images.shape[:2]
    crops = (f[:, s // 4: 7 * s // 8, s // 4: 3 * s // 4], f[:, 3 * s // 8: 5 * s // 8, 3 * s // 8: 5 * s // 8],
             f[:, : s // 6, s // 4: 3 * s // 4])
    parts = [np.moveaxis(np.percentile(c.reshape(n, -1, 3), [10, 50, 90], axis=1), 0, 1).reshape(n, -1)
             for c in crops]  # (n, 9) each
    return np.concatenate(parts, 1)


def test_identity_is_stable_across_poses():
    """Measure: L2 distance between the colour-percentile descriptors above; 10 random subjects x 5 poses
    (head within +/-15 deg, gaze within 25 deg of it), all under one session (same light and background,
    so only identity and pose differ). Images of one subject are much closer to each other than to other
    subjects' (mean distance ratio < 0.5), and the nearest other image of >= 90 % of images is the same
    subject (random subjects can resemble each other, as people do)."""
    subjects, poses = 10, 5
    rng = np.random.default_rng(7)
    ids = np.repeat(sample_identities(subjects, rng), poses, 0)
    ses = np.repeat(sample_sessions(1, rng), subjects * poses, 0)
    head, gaze = sample_poses(subjects * poses, rng, PoseRanges(head_pitch_deg=15, head_yaw_deg=15,
                                                                 gaze_cone_deg=25))
    d = _descriptor(render(identity=ids, session=ses, head=head, gaze=gaze, size=64))
    dist = np.linalg.norm(d[:, None] - d[None], axis=-1)
    label = np.repeat(np.arange(subjects), poses)
    same, other = label[:, None] == label[None], ~np.eye(len(label), dtype=bool)
    ratio = dist[same & other].mean() / dist[~same].mean()
    np.fill_diagonal(dist, np.inf)
    nearest_same = np.mean(label[np.argmin(dist, 1)] == label)
    assert ratio < 0.5 and nearest_same >= 0.9, (ratio, nearest_same)


def test_split_subjects_is_disjoint_and_complete():
    tr, va, te = split_subjects(20, fractions=(0.7, 0.15, 0.15), rng=np.random.default_rng(0))
    assert len(tr) == 14 and len(va) == 3 and len(te) == 3
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(20))
    assert [len(p) for p in split_subjects(3, fractions=(0.8, 0.1, 0.1), rng=np.random.default_rng(0))] == [1, 1, 1]
    with pytest.raises(RegazeError):
        split_subjects(2, fractions=(0.4, 0.3, 0.3), rng=np.random.default_rng(0))  # train would be empty
    with pytest.raises(RegazeError):
        split_subjects(5, fractions=(0.7, -0.1, 0.4), rng=np.random.default_rng(0))


def test_sessions_share_everything_but_pose_and_noise_seed():
    s = sample_dataset(subjects=3, per_subject=10, per_session=4, seed=0)
    assert len(s) == 30 and np.array_equal(np.bincount(s.session), [4, 4, 2] * 3)
    varying = [SESSION_PARAMS.index("noise_seed")]
    fixed = np.delete(s.session_params, varying, axis=1)
    for sess in np.unique(s.session):
        rows = s.session == sess
        assert (fixed[rows] == fixed[rows][0]).all() and (s.identity[rows] == s.identity[rows][0]).all()
        assert len(np.unique(s.session_params[rows, varying[0]])) == rows.sum()
    assert len(np.unique(fixed, axis=0)) == 9


def test_written_dataset_round_trips_and_re_renders_exactly(tmp_path):
    from regaze.data.dataset import open_dataset

    path = write_synthetic_dataset(tmp_path / "s.h5", subjects=4, per_subject=6, per_session=3, size=64, seed=5,
                                   workers=1, progress=False)
    ds = open_dataset(path)
    assert len(ds) == 24 and ds.size == 64
    assert list(ds.attrs["synth_identity_params"]) == list(IDENTITY_PARAMS)
    parts = [set(ds.attrs[f"subjects_{k}"].tolist()) for k in ("train", "val", "test")]
    assert set.union(*parts) == set(range(4)) and sum(len(p) for p in parts) == 4
    i = [5, 17]
    ident, sess = ds.read_array("synth_identity", i), ds.read_array("synth_session", i)
    again = render(identity=ident, session=sess, head=ds.head[i], gaze=ds.gaze[i], size=64)
    assert np.array_equal(again, ds.read_images(i))
    moved = render(identity=ident, session=sess, head=ds.head[i] * 0, gaze=ds.gaze[i] * 0, size=64)
    assert not np.array_equal(moved, again)
    ds.close()
    with pytest.raises(RegazeError, match="exists"):
        write_synthetic_dataset(path, subjects=2, per_subject=2, size=64, progress=False)


def test_cli_writes_dataset_and_preview(tmp_path):
    from regaze.cli import main

    out, sheet = tmp_path / "c.h5", tmp_path / "sheet.png"
    assert main(["synth", "--subjects", "3", "--per-subject", "2", "--size", "64", "--out", str(out),
                 "--preview", str(sheet), "--workers", "1", "--quiet"]) == 0
    assert out.exists() and sheet.exists()
    assert main(["synth", "--subjects", "3", "--per-subject", "2", "--size", "64", "--out", str(out)]) == 1
    assert main(["synth", "--subjects", "3"]) == 1  # neither --out nor --preview
