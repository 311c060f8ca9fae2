"""`regaze redirect`: image files in, redirected PNGs and sweep grids out; resizing with a warning; bad input
(non-images, non-square images, angles out of range, missing checkpoint) is a clear error that writes nothing."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError
from regaze.augment.images import parse_angles_deg, redirect_files

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 1,
        "val_pairs": 4, "threads": 1, "max_steps": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from regaze.config import TrainConfig, config_from_dict
    from regaze.training.loop import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("redirect")
    data = write_tiny_dataset(root / "tiny.h5")
    run = root / "run"
    train(config_from_dict(TrainConfig, TINY), data=data, out=run, progress=False)
    faces = open_dataset(data).read_images([0, 1])  # (2, 32, 32, 3)
    Image.fromarray(faces[0]).save(root / "a.png")
    Image.fromarray(faces[1]).resize((64, 64)).save(root / "b.jpg", quality=95)
    return {"root": root, "run": run, "faces": faces}


def test_redirect_writes_outputs_sweeps_and_record(setup, tmp_path):
    root, out = setup["root"], tmp_path / "out"
    messages = []
    records = redirect_files([root / "a.png", root / "b.jpg"], run=setup["run"], out_dir=out,
                             gaze_rad=parse_angles_deg("10,-20", name="--gaze"), sweep=True, log=messages.append)
    assert len(messages) == 1 and "64x64 resized to 32x32" in messages[0]
    assert sorted(p.name for p in out.iterdir()) == ["a_redirected.png", "a_sweep.png", "b_redirected.png",
                                                     "b_sweep.png", "redirect.json"]
    assert np.asarray(Image.open(out / "a_redirected.png")).shape == (32, 32, 3)
    grid = np.asarray(Image.open(out / "a_sweep.png"))
    assert grid.shape == (4 * 34 + 2, 6 * 34 + 2, 3)  # 4 sweep rows; the input, then 5 values; 2 px padding
    np.testing.assert_array_equal(grid[2:34, 2:34], setup["faces"][0])  # first column: the input itself
    record = json.loads((out / "redirect.json").read_text())
    assert record["images"][0]["target_gaze_deg"] == [10.0, -20.0] and record["images"][0]["target_head_deg"] is None
    assert record["images"][0]["source_angles"] == {"gaze": "estimated", "head": "estimated"}
    assert records[1]["output"].endswith("b_redirected.png") and len(record["checkpoint_sha256"]) == 16


def test_given_source_angles_are_used(setup, tmp_path):
    records = redirect_files([setup["root"] / "a.png"], run=setup["run"], out_dir=tmp_path, gaze_rad=None,
                             head_rad=np.radians([0.0, 15.0]), source_gaze_rad=np.radians([5.0, -5.0]),
                             source_head_rad=np.radians([1.0, 2.0]))
    assert records[0]["source_gaze_deg"] == [5.0, -5.0] and records[0]["source_head_deg"] == [1.0, 2.0]
    assert records[0]["source_angles"] == {"gaze": "given", "head": "given"}


def test_bad_input_is_a_clear_error_and_writes_nothing(setup, tmp_path, capsys):
    root, out = setup["root"], tmp_path / "out"
    (tmp_path / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(tmp_path / "wide.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(setup["faces"][0]).save(tmp_path / "sub" / "a.png")
    gaze = np.radians([0.0, 10.0])
    cases = [
        (dict(paths=[root / "a.png", tmp_path / "notes.png"]), "not an image file"),
        (dict(paths=[tmp_path / "wide.png"]), "expected a square"),
        (dict(paths=[tmp_path / "missing.png"]), "no such image file"),
        (dict(paths=[root / "a.png", tmp_path / "sub" / "a.png"]), "same output name"),
        (dict(paths=[root / "a.png"], run=tmp_path / "norun"), "no run directory or checkpoint"),
        (dict(paths=[root / "a.png"], gaze_rad=None), "nothing to do"),
        (dict(paths=[root / "a.png"], head_rad=np.radians([0.0, 200.0])), "out of range"),
        (dict(paths=[root / "a.png"], device="tpu:x"), "not a device name"),
    ]
    for kwargs, message in cases:
        kw = {"run": setup["run"], "out_dir": out, "gaze_rad": gaze, **kwargs}
        with pytest.raises(RegazeError, match=message):
            redirect_files(kw.pop("paths"), **kw)
        assert not out.exists(), message
    for text in ("95,0", "0,181", "10", "a,b"):
        with pytest.raises(RegazeError, match="--gaze"):
            parse_angles_deg(text, name="--gaze")
    # the CLI: exit status 1, the message on stderr, nothing written
    assert cli_main(["redirect", str(tmp_path / "notes.png"), "--gaze", "0,10", "--run", str(setup["run"]),
                     "-o", str(out)]) == 1
    assert "not an image file" in capsys.readouterr().err
    assert cli_main(["redirect", str(root / "a.png"), "--gaze", "100,0", "--run", str(setup["run"]), "-o", str(out)]) == 1
    assert "out of range" in capsys.readouterr().err
    assert not out.exists()


def test_cli_redirect_and_help(setup, tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli_main(["redirect", str(setup["root"] / "a.png"), "--gaze", "0,0", "--head", "5,-10", "--run",
                     str(setup["run"]), "-o", str(out)]) == 0
    assert "gaze (+0.0, +0.0) head (+5.0, -10.0)" in capsys.readouterr().out
    assert (out / "a_redirected.png").is_file()
    with pytest.raises(SystemExit):
        cli_main(["redirect", "--help"])
    assert "resized" in capsys.readouterr().out
