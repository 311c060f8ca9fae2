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
from regaze.augment.targets import TargetSampler, parse_range_deg
from regaze.checkpoint import file_sha256
from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.data.writer import write_regaze
from regaze.errors import RegazeError

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import blob_images, write_tiny_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model": {"image_size": 32, "k": 8, "channel_max": 32, "disc_channel_max": 32, "flat_channels": 8,
                  "estimator_hidden": 16}, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 1,
        "val_pairs": 4, "threads": 1, "max_steps": 1}
# kill-resume and 2-process runs use these; the in-process reference uses the same values
CLI_ARGS = ["--per-image", "2", "--chunk-size", "16", "--threads", "1", "--include-source", "--quiet"]
KW = dict(per_image=2, chunk_size=16, threads=1, include_source=True, progress=False)
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


def test_target_kinds():
    rng = np.random.default_rng(0)
    labels = np.concatenate([rng.normal(0, 0.2, (400, 2)), rng.normal(0, 0.1, (400, 2))], 1)
    full = np.array([[-1.5, 1.5], [-3.0, 3.0]])
    kde = TargetSampler(kind="kde", change="both", labels=labels, seed=3, per_image=50, gaze_range_rad=full,
                        head_range_rad=full)
    draws = np.concatenate([kde.targets(source_index=i, source_labels=labels[i]) for i in range(200)])  # (10000, 4)
    np.testing.assert_allclose(draws.std(0), np.sqrt(labels.var(0) * (1 + 400 ** (-2 / 8))), rtol=0.1)
    np.testing.assert_array_equal(kde.targets(source_index=7, source_labels=labels[7]),
                                  kde.targets(source_index=7, source_labels=labels[7]))
    narrow = np.array([[-0.1, 0.1], [-0.1, 0.1]])
    clipped = TargetSampler(kind="kde", change="head", labels=labels, seed=0, per_image=40, gaze_range_rad=full,
                            head_range_rad=narrow).targets(source_index=0, source_labels=np.ones(4))
    assert (np.abs(clipped[:, 2:]) <= 0.1 + 1e-6).all() and (clipped[:, :2] == 1).all()
    grid = TargetSampler(kind="grid", change="gaze", labels=labels, seed=0, per_image=9, gaze_range_rad=narrow,
                         head_range_rad=full)
    points = grid.targets(source_index=5, source_labels=np.zeros(4))[:, :2]
    assert len(np.unique(points, axis=0)) == 9 and np.allclose(np.unique(points[:, 0]), [-0.1, 0.0, 0.1])
    with pytest.raises(RegazeError, match="valid range"):
        parse_range_deg("95,10", name="--gaze-range")
    with pytest.raises(RegazeError, match="min must not exceed max"):
        parse_range_deg("10,-10,0,5", name="--head-range")


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
    assert len(open_dataset(out)) == 2 * len(big)
    # parts of another augmentation are never mixed in; --force discards them
    other = tmp_path / "y.h5"
    parts = Path(str(other) + ".parts")
    parts.mkdir()
    shutil.copy(out, parts / "part_00000.h5")  # carries the fingerprint of the per_image=2 run
    with pytest.raises(RegazeError, match="another augmentation"):
        augment(**{**base, "out": other, "per_image": 1})
    augment(**{**base, "out": other, "per_image": 1, "force": True})
    assert len(open_dataset(other)) == len(big) and not parts.exists()
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
    assert len(ds) == 4 * len(train_idx)
    np.testing.assert_array_equal(np.unique(ds.read_array("source_index")), train_idx)
    assert (ds.read_array("change_mode") == 2).all()
    np.testing.assert_array_equal(ds.gaze, src.gaze[ds.read_array("source_index")])  # gaze label kept
    corners = np.degrees(np.unique(ds.head, axis=0))  # a 2 x 2 lattice over |pitch| <= 10, |yaw| <= 20
    np.testing.assert_allclose(corners, [[-10, -20], [-10, 20], [10, -20], [10, 20]], atol=1e-4)


def test_targets_from_another_file_widen_a_narrow_input(setup, tmp_path):
    import json

    src = open_dataset(setup["data"])
    spread = np.abs(np.concatenate([src.gaze, src.head], 1)).max(1)  # (n,) largest angle of each image
    narrow = np.sort(np.argsort(spread)[:20])  # the 20 most frontal images
    narrow_max = spread[narrow].max()
    narrow_file = write_regaze(tmp_path / "narrow.h5", images=src.read_images(narrow), gaze=src.gaze[narrow],
                               head=src.head[narrow], subject=src.subject[narrow], session=src.session[narrow])
    out = tmp_path / "wide.h5"
    augment(run=setup["run"], data=narrow_file, out=out, per_image=8, targets_from=setup["data"], threads=1, progress=False)
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
        augment(run=setup["run"], data=narrow_file, out=tmp_path / "x.h5", targets_from=unlabelled, threads=1, progress=False)
    assert not (tmp_path / "x.h5").exists()
