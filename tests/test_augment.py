"""`regaze augment`: labels and provenance of the output, determinism, kill-and-resume (SIGKILL), a 2-process
sharded run equal to the single-process one, and the promised errors on bad input."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from regaze.augment.augmentation import augment
from regaze.augment.targets import parse_range_deg
from regaze.checkpoint import file_sha256
from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.data.writer import write_regaze
from regaze.errors import RegazeError

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, blob_images, write_tiny_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 1,
        "val_pairs": 4, "threads": 1, "max_steps": 1}
# kill-resume and 2-process runs use these; the in-process reference uses the same values
CLI_ARGS = ["--per-image", "2", "--chunk-size", "16", "--threads", "1", "--include-source", "--split", "all", "--quiet"]
KW = dict(per_image=2, chunk_size=16, threads=1, include_source=True, split="all", progress=False)
CHUNKS = 15  # 72 sources, 3 images each (a copy + 2), 16 // 3 = 5 sources per chunk


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny labelled dataset with synthetic-render rows, a one-step run, and a reference augmentation."""
    from isolation import call_in_child

    root = tmp_path_factory.mktemp("augment")
    plain = write_tiny_dataset(root / "plain.h5")
    ds = open_dataset(plain)
    n = len(ds)
    rng = np.random.default_rng(1)
    data = write_regaze(root / "synth.h5", images=ds.read_images(np.arange(n)), gaze=ds.gaze, head=ds.head,
                        subject=ds.subject, session=ds.session, attrs={k: v for k, v in ds.attrs.items() if k.startswith("subjects_")},
                        synth_identity=rng.normal(size=(n, 5)).astype(np.float32),
                        synth_session=rng.normal(size=(n, 3)).astype(np.float32))
    run = root / "run"
    call_in_child("train_fixtures", "train_tiny_run", kwargs={"config": TINY, "data": str(plain), "out": str(run)})
    reference = root / "reference.h5"
    augment(run=run, data=data, out=reference, **KW)
    return {"root": root, "data": data, "run": run, "reference": reference}


def _arrays(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def _assert_same_file(a: Path, b: Path) -> None:
    fa, fb = _arrays(a), _arrays(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    with h5py.File(a, "r") as x, h5py.File(b, "r") as y:
        assert sorted(x.attrs) == sorted(y.attrs)
        for k in x.attrs:
            assert np.array_equal(x.attrs[k], y.attrs[k]), k


def test_output_has_labels_and_provenance_and_passes_inspect(setup):
    src, out = open_dataset(setup["data"]), open_dataset(setup["reference"])
    n, per = len(src), 3  # a source copy + 2 redirections each
    assert len(out) == n * per and out.size == src.size
    index = out.read_array("source_index")
    np.testing.assert_array_equal(index, np.repeat(np.arange(n), per))  # no duplicates, no gaps, in order
    np.testing.assert_array_equal(out.read_array("sample_k"), np.tile([-1, 0, 1], n))
    mode = out.read_array("change_mode")
    np.testing.assert_array_equal(mode, np.tile([0, 3, 3], n))
    np.testing.assert_array_equal(out.subject, src.subject[index])
    np.testing.assert_array_equal(out.session, src.session[index])
    for key in ("synth_identity", "synth_session"):  # exact targets stay renderable
        np.testing.assert_array_equal(out.read_array(key), src.read_array(key)[index])
    np.testing.assert_array_equal(out.read_array("source_gaze"), src.gaze[index])
    np.testing.assert_array_equal(out.read_array("source_head"), src.head[index])
    copy = mode == 0
    np.testing.assert_array_equal(out.read_images(np.flatnonzero(copy)), src.read_images(np.arange(n)))
    np.testing.assert_array_equal(out.gaze[copy], src.gaze)
    new = ~copy  # kde targets inside the sources' label range (the default range), and actually new
    assert (out.gaze[new] >= src.gaze.min(0) - 1e-6).all() and (out.gaze[new] <= src.gaze.max(0) + 1e-6).all()
    assert (out.head[new] >= src.head.min(0) - 1e-6).all() and (out.head[new] <= src.head.max(0) + 1e-6).all()
    assert np.abs(out.gaze[new] - src.gaze[index[new]]).max() > 0.05
    for key in ("subjects_train", "subjects_val", "subjects_test"):
        np.testing.assert_array_equal(out.attrs[key], src.attrs[key])
    assert out.attrs["checkpoint_sha256"] == file_sha256(out.attrs["checkpoint"])
    assert out.attrs["source_file"] == str(Path(setup["data"]).resolve())
    assert out.attrs["change_mode_legend"] == ["source", "gaze", "head", "both"]
    assert len(out.split_indices("train")) == per * len(src.split_indices("train"))
    assert cli_main(["data", "inspect", str(setup["reference"])]) == 0
    assert not Path(str(setup["reference"]) + ".parts").exists()


@pytest.mark.isolated(timeout=180)
def test_estimator_trains_on_augmented_file(setup):
    from regaze.evaluation.estimator.network import EstimatorConfig
    from regaze.evaluation.estimator.trainer import EstimatorTrainConfig, LabelledImages, train_estimator

    ds = open_dataset(setup["reference"])
    data = LabelledImages.from_dataset(ds, ds.split_indices("train"))
    model, record = train_estimator(
        train=data, val=None, config=EstimatorConfig(image_size=ds.size, width=8, hidden=16, embed_dim=8),
        train_config=EstimatorTrainConfig(steps=2, batch_size=8, threads=1), progress=False, log=lambda m: None)
    assert record["steps"] == 2


def test_change_gaze_keeps_head_and_targets_do_not_depend_on_chunks(setup, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    common = dict(run=setup["run"], data=setup["data"], per_image=3, change="gaze", targets="uniform",
                  gaze_range_rad=parse_range_deg("20,30", name="gaze"), threads=1, progress=False)
    augment(out=a, chunk_size=7, batch_size=5, **common)
    augment(out=b, chunk_size=1000, batch_size=64, **common)
    da, db, src = open_dataset(a), open_dataset(b), open_dataset(setup["data"])
    np.testing.assert_array_equal(da.gaze, db.gaze)  # per-source seeded draws: chunking and batching play no part
    np.testing.assert_array_equal(da.head, src.head[da.read_array("source_index")])  # head label kept
    assert np.abs(da.gaze).max(0)[0] <= np.radians(20) + 1e-6 and np.abs(da.gaze).max(0)[1] <= np.radians(30) + 1e-6
    assert (da.read_array("change_mode") == 1).all()
    diff = np.abs(da.read_images(np.arange(len(da))).astype(int) - db.read_images(np.arange(len(db))).astype(int))
    assert diff.max() <= 2  # batch composition may move float rounding by a level or two


def _augment_cmd(setup, out: Path) -> list[str]:
    return [sys.executable, "-m", "regaze.cli", "augment", "--run-dir", str(setup["run"]), "--data", str(setup["data"]),
            "--out", str(out), *CLI_ARGS]


@pytest.mark.isolated(timeout=300)
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_file(setup, tmp_path):
    out = tmp_path / "aug.h5"
    parts = Path(str(out) + ".parts")
    env = {**os.environ, "REGAZE_AUGMENT_CHUNK_DELAY_S": "0.4", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_augment_cmd(setup, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(parts.glob("part_*.h5")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in parts.glob("part_*.h5"))
    assert 1 <= len(done) < CHUNKS and not out.exists()
    (parts / ".part_00008.h5.tmpdead").write_bytes(b"half-written")  # as a write killed mid-way leaves it
    result = augment(run=setup["run"], data=setup["data"], out=out, **KW)
    assert result["computed_chunks"] == CHUNKS - len(done)  # finished chunks were not recomputed
    assert not parts.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "aug.h5"]  # no temp files left
    _assert_same_file(out, setup["reference"])
    again = augment(run=setup["run"], data=setup["data"], out=out, **KW)  # complete: nothing to do
    assert again["computed_chunks"] == 0


@pytest.mark.isolated(timeout=300)
def test_killed_between_rename_and_cleanup_or_during_merge(setup, tmp_path):
    out = tmp_path / "aug.h5"
    parts = Path(str(out) + ".parts")
    augment(run=setup["run"], data=setup["data"], out=out, **KW)
    parts.mkdir()
    (parts / "part_00000.h5").write_bytes(b"left over")
    assert augment(run=setup["run"], data=setup["data"], out=out, **KW)["computed_chunks"] == 0
    assert not parts.exists()
    # a merge killed mid-way: every part present, a temp of OUT beside it, no OUT yet
    keep = tmp_path / "keep"
    out.rename(keep)
    (tmp_path / ".aug.h5.tmpdead").write_bytes(b"x")
    result = augment(run=setup["run"], data=setup["data"], out=out, **KW)
    assert result["computed_chunks"] == CHUNKS and not (tmp_path / ".aug.h5.tmpdead").exists()
    _assert_same_file(out, setup["reference"])


@pytest.mark.isolated(timeout=300)
def test_two_processes_give_the_single_process_file(setup, tmp_path):
    out = tmp_path / "aug2.h5"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *_augment_cmd(setup, out)[1:]]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 process(es)" in proc.stderr
    _assert_same_file(out, setup["reference"])


def test_bad_input_is_a_clear_error_and_writes_nothing(setup, tmp_path, capsys):
    out = tmp_path / "x.h5"
    base = dict(run=setup["run"], data=setup["data"], out=out, progress=False, threads=1)
    with pytest.raises(RegazeError, match="no run directory or checkpoint"):
        augment(**{**base, "run": tmp_path / "missing"})
    big = open_dataset(setup["data"])
    wrong = write_regaze(tmp_path / "big.h5", images=blob_images(big.gaze[:4], big.head[:4], big.subject[:4], size=48),
                         gaze=big.gaze[:4], head=big.head[:4], subject=big.subject[:4])
    with pytest.raises(RegazeError, match="regaze data convert"):
        augment(**{**base, "data": wrong})
    with pytest.warns(UserWarning, match="no 'face_gaze'"):
        unlabelled = write_regaze(tmp_path / "nogaze.h5", images=big.read_images(np.arange(4)), head=big.head[:4],
                                  subject=big.subject[:4])
        with pytest.raises(RegazeError, match="no gaze labels"):
            augment(**{**base, "data": unlabelled})
    with pytest.raises(RegazeError, match="valid range"):
        augment(**{**base, "head_range_rad": np.radians([[-100, 10], [0, 5]])})
    with pytest.raises(RegazeError, match="output is the input"):
        augment(**{**base, "out": setup["data"]})
    with pytest.raises(RegazeError, match="not a device name"):
        augment(**{**base, "device": "gpu0"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5", "nogaze.h5"]
    # an existing OUT from other arguments is kept unless --force
    augment(**{**base, "per_image": 1})
    with pytest.raises(RegazeError, match="pass --force"):
        augment(**{**base, "per_image": 2})
    augment(**{**base, "per_image": 2, "force": True})
    train = big.split_indices("train")  # the default sources: the train split
    assert len(open_dataset(out)) + open_dataset(out).attrs["augment_left_out_of_range"] == 2 * len(train)
    # parts of another augmentation are never mixed in; --force discards them
    other = tmp_path / "y.h5"
    parts = Path(str(other) + ".parts")
    parts.mkdir()
    shutil.copy(out, parts / "part_00000.h5")  # carries the fingerprint of the per_image=2 run
    with pytest.raises(RegazeError, match="another augmentation"):
        augment(**{**base, "out": other, "per_image": 1})
    augment(**{**base, "out": other, "per_image": 1, "force": True})
    assert len(open_dataset(other)) + open_dataset(other).attrs["augment_left_out_of_range"] == len(train)
    assert not parts.exists()
    # the CLI turns RegazeError into exit status 1 with the message
    assert cli_main(["augment", "--run", str(tmp_path / "missing"), "--data", str(setup["data"]), "--out",
                     str(tmp_path / "z.h5"), "--quiet"]) == 1
    assert "no run directory" in capsys.readouterr().err
    assert cli_main(["augment", "--run", str(setup["run"]), "--data", str(setup["data"]), "--out",
                     str(tmp_path / "z.h5"), "--gaze-range", "abc"]) == 1
    assert not (tmp_path / "z.h5").exists()



def test_cli_grid_head_only_on_the_training_split(setup, tmp_path):
    out = tmp_path / "grid.h5"
    assert cli_main(["augment", "--run", str(setup["run"]), "--data", str(setup["data"]), "--out", str(out),
                     "--targets", "grid", "--change", "head", "--per-image", "4", "--head-range", "10,20",
                     "--source-angles", "estimated", "--split", "train", "--threads", "1", "--quiet"]) == 0
    src, ds = open_dataset(setup["data"]), open_dataset(out)
    train_idx = src.split_indices("train")
    index = ds.read_array("source_index")
    assert set(np.unique(index)) <= set(train_idx)
    assert (ds.read_array("change_mode") == 2).all()
    np.testing.assert_array_equal(ds.gaze, src.gaze[index])  # gaze label kept
    # the lattice: 2 x 2 over |pitch| <= 10, |yaw| <= 20; a corner is written for a source exactly when it keeps
    # that source's gaze within the train labels' eye range of the new face direction
    corners = np.radians([[-10, -20], [-10, 20], [10, -20], [10, 20]])
    limit = eye_range_deg(gaze=src.gaze[train_idx], head=src.head[train_idx])
    expected = {(int(i), c) for i in train_idx for c in range(4)
                if eye_in_head_deg(gaze=src.gaze[i:i + 1], head=corners[c:c + 1])[0] <= limit}
    written = {(int(i), int(np.argmin(np.abs(corners - h).sum(1)))) for i, h in zip(index, ds.head)}
    np.testing.assert_allclose(np.degrees(np.unique(ds.head, axis=0)), np.degrees(corners), atol=1e-4)
    assert written == expected and len(written) == len(ds)  # each (source, corner) once
    assert 0 < len(ds) < 4 * len(train_idx)  # some corners are past the eye range: left out, and counted
    assert ds.attrs["augment_planned_images"] == 4 * len(train_idx)
    assert ds.attrs["augment_left_out_of_range"] == 4 * len(train_idx) - len(ds)
    assert (eye_in_head_deg(gaze=ds.gaze, head=ds.head) <= limit + 1e-3).all()


def test_targets_from_another_file_widen_a_narrow_input(setup, tmp_path):
    import json

    src = open_dataset(setup["data"])
    spread = np.abs(np.concatenate([src.gaze, src.head], 1)).max(1)  # (n,) largest angle of each image
    narrow = np.sort(np.argsort(spread)[:20])  # the 20 most frontal images
    narrow_max = spread[narrow].max()
    narrow_file = write_regaze(tmp_path / "narrow.h5", images=src.read_images(narrow), gaze=src.gaze[narrow],
                               head=src.head[narrow], subject=src.subject[narrow], session=src.session[narrow])
    out = tmp_path / "wide.h5"
    augment(run=setup["run"], data=narrow_file, out=out, per_image=8, targets_from=setup["data"], split="all",
            threads=1, progress=False)
    wide = open_dataset(out)
    pool = np.concatenate([src.gaze, src.head], 1)[src.split_indices("train")]  # the reference's train split
    drawn = np.concatenate([wide.gaze, wide.head], 1)
    assert (np.abs(drawn).max(0) > narrow_max + np.radians(5)).all()  # well outside the input's range
    assert (drawn >= pool.min(0) - 1e-6).all() and (drawn <= pool.max(0) + 1e-6).all()  # inside the pool's range
    params = json.loads(wide.attrs["augment_params"])
    assert params["targets_from_split"] == "train" and params["targets_from_images"] == len(pool)
    with pytest.raises(RegazeError, match="labelled"):
        unlabelled = write_regaze(tmp_path / "unlabelled.h5", images=src.read_images(narrow), gaze=None,
                                  head=src.head[narrow], subject=src.subject[narrow])
        augment(run=setup["run"], data=narrow_file, out=tmp_path / "x.h5", targets_from=unlabelled, split="all",
                threads=1, progress=False)
    assert not (tmp_path / "x.h5").exists()


# ------------------------------------------------------------------- issue 12: targets in range, labels checked
def test_default_split_is_train_and_all_is_an_explicit_choice(setup, tmp_path):
    import json

    src = open_dataset(setup["data"])
    out = tmp_path / "train.h5"
    augment(run=setup["run"], data=setup["data"], out=out, per_image=1, threads=1, progress=False)
    ds = open_dataset(out)
    assert set(ds.read_array("source_index")) <= set(src.split_indices("train"))
    assert json.loads(ds.attrs["augment_params"])["split"] == "train" and ds.attrs["split"] == "train"
    unsplit = write_regaze(tmp_path / "unsplit.h5", images=src.read_images(np.arange(8)), gaze=src.gaze[:8],
                           head=src.head[:8], subject=src.subject[:8])
    with pytest.raises(RegazeError, match="--split all"):
        augment(run=setup["run"], data=unsplit, out=tmp_path / "x.h5", per_image=1, threads=1, progress=False)
    assert not (tmp_path / "x.h5").exists()
    augment(run=setup["run"], data=unsplit, out=tmp_path / "all.h5", per_image=1, split="all", threads=1, progress=False)
    assert set(open_dataset(tmp_path / "all.h5").read_array("source_index")) <= set(range(8))


def test_written_targets_are_in_the_datas_range_and_the_rest_is_counted(setup, tmp_path):
    import json

    src = open_dataset(setup["data"])
    for path in (setup["reference"], None):
        if path is None:  # gaze-only, uniform over a box far wider than the eyes turn
            path = tmp_path / "wide.h5"
            augment(run=setup["run"], data=setup["data"], out=path, per_image=6, change="gaze", targets="uniform",
                    gaze_range_rad=parse_range_deg("45,60", name="gaze"), split="all", threads=1, progress=False)
        ds = open_dataset(path)
        params = json.loads(ds.attrs["augment_params"])
        limit = eye_range_deg(gaze=src.gaze, head=src.head)  # the sources' own range (split all)
        assert params["eye_range_deg"] == pytest.approx(limit) and params["eye_range_from"] == "data"
        new = ds.read_array("change_mode") != 0
        assert (eye_in_head_deg(gaze=ds.gaze[new], head=ds.head[new]) <= limit + 1e-3).all()
        assert ds.attrs["augment_planned_images"] == len(ds) + ds.attrs["augment_left_out_of_range"]
        key = np.stack([ds.read_array("source_index"), ds.read_array("sample_k")], 1)
        assert len(np.unique(key, axis=0)) == len(ds)  # each (source, k) at most once, left-out ones absent
    # the control: plain uniform draws in that box with the sources' heads leave the range often; redrawing
    # keeps almost all items, and the few without an in-range draw are left out and counted
    naive = np.radians(np.random.default_rng(0).uniform([-45, -60], [45, 60], (len(src), 2)))
    assert (eye_in_head_deg(gaze=naive, head=src.head) > limit).mean() > 0.3
    assert ds.attrs["augment_left_out_of_range"] < 0.1 * ds.attrs["augment_planned_images"]
    # the sources' own range (split all) is the one recorded; the framing of the input travels along
    assert ds.attrs["camera_focal_px"] == pytest.approx(src.attrs["camera_focal_px"])
    assert "assumed" in ds.attrs["camera_framing"]


def test_nothing_in_range_is_a_clear_error_and_writes_nothing(setup, tmp_path):
    out = tmp_path / "none.h5"
    with pytest.raises(RegazeError, match="every one of the .* planned images was left out"):
        augment(run=setup["run"], data=setup["data"], out=out, per_image=4, targets="grid", change="gaze",
                gaze_range_rad=np.radians([[80, 85], [170, 175]]), split="all", threads=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _fake_reader(images_u8):
    """A stand-in estimator: angles from the mean colour of each image (deterministic, varied)."""
    m = images_u8.reshape(len(images_u8), -1, 3).mean(1) / 255.0 - 0.5  # (n, 3)
    return {"gaze": m[:, :2].astype(np.float32), "head": np.stack([m[:, 2] * 0.5, -m[:, 0]], 1).astype(np.float32)}


def test_estimator_readings_residuals_and_the_residual_filter(setup, tmp_path):
    from regaze.geometry import angular_error_deg

    common = dict(run=setup["run"], data=setup["data"], per_image=2, include_source=True, chunk_size=16,
                  read_angles=_fake_reader, estimator_info={"name": "fake"}, split="all", threads=1, progress=False)
    full = tmp_path / "full.h5"
    augment(out=full, **common)
    a = _arrays(full)
    est = _fake_reader(a["face_patch"])
    np.testing.assert_allclose(a["estimated_gaze"], est["gaze"], atol=1e-6)  # the reading of the written image
    np.testing.assert_allclose(a["estimated_head"], est["head"], atol=1e-6)
    np.testing.assert_allclose(a["residual_gaze_deg"], angular_error_deg(est["gaze"], a["face_gaze"]), atol=1e-3)
    np.testing.assert_allclose(a["residual_head_deg"], angular_error_deg(est["head"], a["face_head_pose"]), atol=1e-3)
    copy = a["change_mode"] == 0
    worst = np.maximum(a["residual_gaze_deg"], a["residual_head_deg"])
    x = float(np.median(worst[~copy]))
    kept = tmp_path / "kept.h5"
    result = augment(out=kept, max_residual_deg=x, **common)
    b = _arrays(kept)
    keep = copy | (worst <= x)
    assert 0 < (~keep).sum() < (~copy).sum()
    assert sorted(a) == sorted(b)
    for k in a:  # the filtered file is the full one less the samples whose image does not show the label
        np.testing.assert_array_equal(b[k], a[k][keep], err_msg=k)
    assert open_dataset(kept).attrs["augment_left_out_residual"] == (~keep).sum() == result["left_out_residual"]
    with pytest.raises(RegazeError, match="needs an estimator"):
        augment(out=tmp_path / "y.h5", **{**common, "read_angles": None}, max_residual_deg=5.0)
    with pytest.raises(RegazeError, match="trained on 64"):
        augment(out=tmp_path / "y.h5", **{**common, "estimator_info": {"image_size": 64}})
    assert not (tmp_path / "y.h5").exists()


def test_cli_estimator_readings_and_inspect_residuals(setup, tmp_path, capsys):
    import torch

    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator, estimate
    from regaze.evaluation.estimator.store import save_estimator

    torch.manual_seed(0)
    model = GazeHeadEstimator(EstimatorConfig(image_size=32, width=4, hidden=8, embed_dim=4)).eval()
    save_estimator(tmp_path / "est", model=model, record={"val": {"gaze_err_deg": 1.0, "head_err_deg": 1.0}})
    save_estimator(tmp_path / "raw", model=model, record=None)  # no validation record: refused
    out = tmp_path / "checked.h5"
    args = ["augment", "--run", str(setup["run"]), "--data", str(setup["data"]), "--per-image", "1",
            "--include-source", "--threads", "1", "--quiet"]
    assert cli_main([*args, "--out", str(out), "--estimator", str(tmp_path / "est")]) == 0
    ds = open_dataset(out)
    reading = estimate(model, ds.read_images(np.arange(len(ds))))
    np.testing.assert_allclose(ds.read_array("estimated_gaze"), reading["gaze"], atol=1e-4)
    np.testing.assert_allclose(ds.read_array("estimated_head"), reading["head"], atol=1e-4)
    assert cli_main(["data", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "residuals" in text and "redirected gaze" in text and "source copies head" in text
    assert cli_main(["data", "inspect", str(out), "--json"]) == 0
    summary = __import__("json").loads(capsys.readouterr().out)
    r = ds.read_array("residual_gaze_deg")[ds.read_array("change_mode") != 0]
    assert summary["residuals_deg"]["redirected"]["gaze"]["median"] == pytest.approx(float(np.median(r)), rel=1e-5)
    assert cli_main([*args, "--out", str(tmp_path / "a.h5"), "--max-residual-deg", "5"]) == 1
    assert "needs --estimator" in capsys.readouterr().err
    assert cli_main([*args, "--out", str(tmp_path / "b.h5"), "--estimator", str(tmp_path / "raw")]) == 1
    assert "refusing this estimator" in capsys.readouterr().err
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
