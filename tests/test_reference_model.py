"""The shipped reference model: `regaze model export-reference` writes a slim checkpoint that loads with
weights_only=True and redirects like the run it came from, refuses a file over the size limit and a directory
that is no run; `resolve_run` picks --run, else the reference, else runs/demo/run, else a clear error; and
`regaze redirect` / `regaze augment` without --run use the reference, say so, and record it."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import pytest
import torch
from PIL import Image

from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError
from regaze.model import pretrained
from regaze.model.pretrained import (REFERENCE_NOTICE, check_reference_size, export_reference, find_checkpoint,
                                     load_redirector, resolve_run)

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 1,
        "val_pairs": 4, "threads": 1, "max_steps": 1}
SLIM_KEYS = {"ema", "config", "step", "framing", "split", "weights_dtype", "source_checkpoint_sha256"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny labelled file (with a synth-style seed attribute), a one-step run, its export, one face PNG."""
    from isolation import call_in_child

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("reference")
    data = write_tiny_dataset(root / "tiny.h5")
    with h5py.File(data, "a") as f:
        f.attrs["seed"] = 7
        f.attrs["generator"] = "regaze.data.synth"
    run = root / "run"
    call_in_child("train_fixtures", "train_tiny_run", kwargs={"config": TINY, "data": str(data), "out": str(run)})
    export = root / "synth32"
    assert cli_main(["model", "export-reference", str(run), "--out", str(export), "--data", str(data),
                     "--note", "test export"]) == 0
    Image.fromarray(open_dataset(data).read_images([0])[0]).save(root / "a.png")
    return {"root": root, "data": data, "run": run, "export": export}


@pytest.fixture
def no_shipped_model(tmp_path, monkeypatch):
    """No reference model in this install and an empty working directory."""
    monkeypatch.setattr(pretrained, "REFERENCE_DIR", tmp_path / "no_reference")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shipped(setup, tmp_path, monkeypatch):
    """The test export as this install's reference model."""
    monkeypatch.setattr(pretrained, "REFERENCE_DIR", setup["export"])
    monkeypatch.chdir(tmp_path)
    return setup["export"] / "reference.pt"


def _redirections(model, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 3, 32, 32, generator=gen) * 2 - 1  # (6, 3, S, S) in [-1, 1]
    gaze = (torch.rand(6, 2, generator=gen) - 0.5) * 0.8  # (6, 2) rad
    head = (torch.rand(6, 2, generator=gen) - 0.5) * 0.8
    return torch.cat([model.redirect(x, gaze=gaze, head=head)[0], model.redirect(x, gaze=gaze)[0], model(x)])


def test_export_is_slim_loads_with_weights_only_and_redirects_like_the_run(setup):
    ref, full = setup["export"] / "reference.pt", find_checkpoint(setup["run"])
    assert ref.stat().st_size < full.stat().st_size
    state = torch.load(ref, weights_only=True)
    assert set(state) == SLIM_KEYS
    assert state["step"] == 1 and state["config"] == torch.load(full, weights_only=True)["config"]
    model, info = load_redirector(ref)
    run_model, _ = load_redirector(setup["run"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.framing == run_model.framing and info["step"] == 1
    diff = (_redirections(model) - _redirections(run_model)).abs().max().item()
    assert diff < pretrained.HALF_MAX_ABS_DIFF

    card = json.loads((setup["export"] / "card.json").read_text())
    assert card["file_bytes"] == ref.stat().st_size and card["trained_on"] == "synthetic faces (regaze synth)"
    assert card["metrics"] == {} and card["data_seed"] == 7 and card["note"] == "test export"
    assert card["weights_dtype"] == state["weights_dtype"] and card["source_checkpoint"]["bytes"] == full.stat().st_size
    training = card["training"]
    assert training["steps"] == 1 and training["stop_reason"] == "max_steps" and training["data"] == str(setup["data"])
    assert training["config"]["model"]["k"] == 8 and training["elapsed_minutes"] is not None
    assert f"--data {setup['data']}" in training["command"] and "train_config.json" in training["command"]
    assert json.loads((setup["export"] / "train_config.json").read_text()) == training["config"]


def test_float32_export_is_exact_and_float16_is_half_the_weights(setup, tmp_path):
    card32 = export_reference(setup["run"], out_dir=tmp_path / "f32", dtype="float32")
    card16 = export_reference(find_checkpoint(setup["run"]), out_dir=tmp_path / "f16", dtype="float16")
    assert card32["weights_dtype"] == "float32" and card32["max_abs_output_diff_vs_source"] == 0.0
    state16 = torch.load(tmp_path / "f16" / "reference.pt", weights_only=True)
    assert {v.dtype for v in state16["ema"].values() if v.is_floating_point()} == {torch.float16}
    assert card16["file_bytes"] < 0.6 * card32["file_bytes"]
    run_model, _ = load_redirector(setup["run"])
    exact, _ = load_redirector(tmp_path / "f32" / "reference.pt")
    assert torch.equal(_redirections(exact), _redirections(run_model))
    assert card16["training"]["data"] is None and card16["data_seed"] is None  # not given, not in the run


def test_export_refuses_an_oversized_file_and_writes_nothing(setup, tmp_path):
    with pytest.raises(RegazeError, match="over the 0 MB limit"):
        export_reference(setup["run"], out_dir=tmp_path / "big", max_bytes=1000)
    assert not (tmp_path / "big").exists()
    check_reference_size(25 * 10**6)  # at the limit: fine
    with pytest.raises(RegazeError, match="25.0 MB, over the 25 MB limit"):
        check_reference_size(25 * 10**6 + 1)


def test_export_of_something_that_is_no_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(RegazeError, match=r"not a training run directory .*readme.txt"):
        export_reference(tmp_path / "notes", out_dir=tmp_path / "out")
    assert cli_main(["model", "export-reference", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
    assert "no run directory or checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_resolve_run_order(setup, no_shipped_model):
    with pytest.raises(RegazeError, match=r"no model to use.*make demo.*regaze train.*--run"):
        resolve_run(None)
    (no_shipped_model / "runs" / "demo" / "run").mkdir(parents=True)
    path, notice = resolve_run(None)
    assert path == Path("runs/demo/run") and "demo" in notice
    pretrained.REFERENCE_DIR.mkdir()  # a reference in the install wins over the demo run
    shutil.copy(setup["export"] / "reference.pt", pretrained.REFERENCE_DIR / "reference.pt")
    assert resolve_run(None) == (pretrained.REFERENCE_DIR / "reference.pt", REFERENCE_NOTICE)
    assert resolve_run("runs/r64") == (Path("runs/r64"), None)  # --run wins over both


def test_redirect_without_run_uses_the_reference_and_says_so(setup, shipped, tmp_path, capsys):
    assert cli_main(["redirect", str(setup["root"] / "a.png"), "--gaze", "0,10", "-o", str(tmp_path / "out")]) == 0
    assert REFERENCE_NOTICE in capsys.readouterr().err
    record = json.loads((tmp_path / "out" / "redirect.json").read_text())
    assert record["model"] == "reference" and Path(record["checkpoint"]) == shipped
    assert cli_main(["redirect", str(setup["root"] / "a.png"), "--gaze", "0,10", "--run", str(setup["run"]),
                     "-o", str(tmp_path / "given")]) == 0
    assert REFERENCE_NOTICE not in capsys.readouterr().err
    assert json.loads((tmp_path / "given" / "redirect.json").read_text())["model"] == "run"


def test_augment_without_run_uses_the_reference(setup, shipped, tmp_path, capsys):
    out = tmp_path / "aug.h5"
    assert cli_main(["augment", "--data", str(setup["data"]), "--out", str(out), "--per-image", "1", "--threads", "1",
                     "--quiet"]) == 0
    assert REFERENCE_NOTICE in capsys.readouterr().err
    with h5py.File(out, "r") as f:
        assert Path(f.attrs["checkpoint"]) == shipped.resolve()


def test_no_model_at_all_is_a_clear_error_and_writes_nothing(setup, no_shipped_model, capsys):
    out = no_shipped_model / "out"
    assert cli_main(["redirect", str(setup["root"] / "a.png"), "--gaze", "0,10", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no model to use" in err and "make demo" in err and "--run" in err
    assert cli_main(["augment", "--data", str(setup["data"]), "--out", str(no_shipped_model / "aug.h5")]) == 1
    assert "no model to use" in capsys.readouterr().err
    assert sorted(p.name for p in no_shipped_model.iterdir()) == []


# ------------------------------------------------------------------------------ the file that ships
def _shipped():
    ckpt = pretrained.reference_checkpoint()
    assert ckpt is not None, f"the reference model is a deliverable of the package: {pretrained.REFERENCE_DIR}/reference.pt"
    return ckpt


def test_the_shipped_reference_is_small_loads_with_weights_only_and_has_its_card():
    from regaze.checkpoint import load_checkpoint

    ckpt = _shipped()
    assert ckpt.stat().st_size <= pretrained.REFERENCE_MAX_BYTES
    state = load_checkpoint(ckpt, required_keys=("ema", "config", "step"))  # weights_only=True inside
    assert set(state) <= SLIM_KEYS
    card = json.loads((ckpt.parent / "card.json").read_text())
    assert card["trained_on"].startswith("synthetic")
    assert card["training"]["command"].startswith("regaze train") and card["data_seed"] is not None
    assert card["metrics"]["figures"]["head_only_psnr_db"] is not None  # measured, not left empty
    model, info = load_redirector(ckpt)
    assert info["step"] == state["step"] and model.config.image_size == 64


def test_the_shipped_reference_redirects_a_new_synthetic_person_towards_the_exact_target():
    """Head-only redirections of people it never saw (another renderer seed) land nearer the exact render than
    the source does: the model moves the head, it does not copy."""
    import numpy as np

    from regaze.data.synth import render
    from regaze.data.synth.params import sample_identities, sample_sessions
    from regaze.image_metrics import psnr_db

    model, _ = load_redirector(_shipped())
    rng = np.random.default_rng(123)
    n = 8
    identity, session = sample_identities(n, rng), sample_sessions(n, rng)
    head = np.radians(rng.uniform(-15, 15, (n, 2))).astype(np.float32)
    gaze = head + np.radians(rng.uniform(-10, 10, (n, 2))).astype(np.float32)
    new_head = head + np.radians(np.stack([np.zeros(n), np.where(head[:, 1] > 0, -20.0, 20.0)], 1)).astype(np.float32)
    source = render(identity=identity, session=session, head=head, gaze=gaze, size=64)  # (n, 64, 64, 3)
    target = render(identity=identity, session=session, head=new_head, gaze=gaze, size=64)
    out, _ = model.redirect(source, head=new_head, source_gaze=gaze, source_head=head)
    assert psnr_db(out, target).mean() > psnr_db(source, target).mean() + 2.0
