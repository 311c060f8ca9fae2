"""The training loop: runs, resumes exactly, stops loudly on NaN, refuses mismatched checkpoints, and
trains identically across 2 gloo processes (DDP)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from regaze.checkpoint import load_checkpoint
from regaze.config import TrainConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.pretrained import find_checkpoint, load_redirector
from regaze.config import build_config, parse_overrides
from regaze.training.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import write_tiny_dataset  # noqa: E402

TINY = {"model": {"image_size": 32, "k": 8, "channel_max": 32, "disc_channel_max": 32, "flat_channels": 8,
                  "estimator_hidden": 16}, "batch_size": 4, "log_every": 2, "val_every": 100, "ckpt_every": 3,
        "val_pairs": 4, "threads": 1}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5")


def _cfg(**kw) -> TrainConfig:
    return config_from_dict(TrainConfig, {**TINY, **kw})


def _stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]


@pytest.mark.isolated(timeout=120)
def test_resume_replays_the_same_loss_sequence(tiny_data, tmp_path):
    straight = tmp_path / "straight"
    train(_cfg(max_steps=8), data=tiny_data, out=straight, progress=False)
    split = tmp_path / "split"
    train(_cfg(max_steps=4), data=tiny_data, out=split, progress=False)
    train(_cfg(max_steps=8), data=tiny_data, out=split, resume=True, progress=False)
    a, b = _stats(straight), _stats(split)
    assert [r["step"] for r in a] == [2, 4, 6, 8] and [r["step"] for r in b] == [2, 4, 6, 8]
    for ra, rb in zip(a, b):
        for key in ("rec", "label", "ort", "gen", "disc", "total"):
            assert ra[key] == rb[key], (ra["step"], key)
    wa = load_checkpoint(find_checkpoint(straight, which="latest"))["generator"]
    wb = load_checkpoint(find_checkpoint(split, which="latest"))["generator"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.isolated(timeout=120)
def test_new_run_refuses_to_overwrite_and_resume_refuses_other_config(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(_cfg(max_steps=3), data=tiny_data, out=run, progress=False)
    with pytest.raises(RegazeError, match="pass --resume"):
        train(_cfg(max_steps=3), data=tiny_data, out=run, progress=False)
    other = _cfg(max_steps=6, model={**TINY["model"], "k": 16})
    with pytest.raises(RegazeError, match="another configuration"):
        train(other, data=tiny_data, out=run, resume=True, progress=False)
    with pytest.raises(RegazeError, match="no checkpoints"):
        train(_cfg(max_steps=3), data=tiny_data, out=tmp_path / "empty", resume=True, progress=False)


@pytest.mark.isolated(timeout=120)
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    import regaze.training.loop as train_module

    calls = {"n": 0}
    real = train_module.losses.reconstruction_loss

    def poisoned(*, output, target, weight=None):
        calls["n"] += 1
        value = real(output=output, target=target, weight=weight)
        return value * float("nan") if calls["n"] > 8 else value  # two calls per step: NaN from step 5

    monkeypatch.setattr(train_module.losses, "reconstruction_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(RegazeError, match="NaN/inf"):
        train(_cfg(max_steps=20), data=tiny_data, out=run, progress=False)
    ckpt = find_checkpoint(run, which="latest")
    state = load_checkpoint(ckpt)
    assert state["step"] == 3  # saved before the NaN; nothing after it
    assert all(torch.isfinite(v).all() for v in state["generator"].values())
    model, info = load_redirector(run, which="latest")
    assert info["step"] == 3


def test_image_size_mismatch_is_a_clear_error(tiny_data, tmp_path):
    with pytest.raises(RegazeError, match=r"images are 32² but model.image_size=64"):
        train(_cfg(model={**TINY["model"], "image_size": 64}), data=tiny_data, out=tmp_path / "r", progress=False)


def test_overrides_parse_nested_values_and_reject_unknown_keys(tmp_path):
    assert parse_overrides(["loss.ort=0", "identity_swap=false", "target=gaze", "model.k=64"]) == {
        "loss": {"ort": 0}, "identity_swap": False, "target": "gaze", "model": {"k": 64}}
    cfg = build_config(config_file=None, overrides=["loss.ort=0", "cross_swap=false"])
    assert cfg.loss.ort == 0.0 and cfg.cross_swap is False
    with pytest.raises(RegazeError, match="unknown field"):
        build_config(config_file=None, overrides=["loss.nope=1"])
    with pytest.raises(RegazeError, match="expected key=value"):
        build_config(config_file=None, overrides=["batch_size"])
    with pytest.raises(RegazeError, match="target must be"):
        build_config(config_file=None, overrides=["target=eyes"])
    with pytest.raises(RegazeError, match="config file not found"):
        build_config(config_file=str(tmp_path / "none.json"), overrides=[])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.isolated(timeout=600)
def test_two_process_gloo_ddp_disjoint_data_and_identical_weights(tiny_data, tmp_path):
    run = tmp_path / "ddp"
    overrides = [f"{k}={json.dumps(v)}" for k, v in TINY.items() if k != "model"]
    overrides += [f"model.{k}={v}" for k, v in TINY["model"].items()] + ["max_steps=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "regaze.cli", "train", "--data", str(tiny_data), "--out", str(run), "--no-progress", *overrides]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 4
    assert len(summary["rank_anchor_counts"]) == 2 and min(summary["rank_anchor_counts"]) > 0
    assert summary["rank_anchor_overlap"] == 0
    a, b = summary["rank_param_checksums"]
    assert a == b


@pytest.mark.isolated(timeout=120)
def test_eye_weighted_training_records_the_data_framing_for_the_model(tiny_data, tmp_path):
    from regaze.model.framing import framing_from_attrs

    run = tmp_path / "eyes"
    stats = train(_cfg(max_steps=3, loss={"rec_eye": 10.0}), data=tiny_data, out=run, progress=False)
    assert stats["step"] == 3 and torch.isfinite(torch.tensor(stats["total"]))
    model, _ = load_redirector(run, which="latest")
    assert model.framing == framing_from_attrs({}, size=32)  # the tiny file names no camera: ETH-XGaze's
    state = load_checkpoint(find_checkpoint(run, which="latest"))
    assert state["framing"] == {"focal_px": model.framing.focal_px, "distance_mm": model.framing.distance_mm}
