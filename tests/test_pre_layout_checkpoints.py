"""Checkpoints written before the move to the layout by role still load and give the same outputs.

tests/fixtures/pre_layout/ was written by the flat layout (commit b3a9ba5: regaze/train.py, regaze/run_dir.py,
regaze/estimator.py): a 2-step run of a tiny redirector at 32², an untrained tiny estimator, and expected.npz
with their outputs on fixed inputs at that commit.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from regaze.config import TrainConfig, config_from_dict
from regaze.evaluation.estimator.network import estimate
from regaze.evaluation.estimator.store import load_estimator
from regaze.model.pretrained import find_checkpoint, load_redirector
from regaze.training.run_dir import RunDir

FIXTURE = Path(__file__).parent / "fixtures" / "pre_layout"


def test_redirector_of_the_flat_layout_loads_and_redirects_the_same():
    expected = np.load(FIXTURE / "expected.npz")
    model, info = load_redirector(FIXTURE / "run")
    assert info["step"] == 2
    with torch.no_grad():
        src, tgt = torch.from_numpy(expected["source"]), torch.from_numpy(expected["target"])
        out, _ = model.redirect(torch.from_numpy(expected["x"]), source_gaze=src, source_head=src, gaze=tgt, head=tgt)
    np.testing.assert_allclose(out.numpy(), expected["redirected"], atol=1e-5)


def test_run_of_the_flat_layout_can_be_resumed(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE / "run", run)
    cfg = config_from_dict(TrainConfig, json.loads((run / "config.json").read_text()))
    state = RunDir(run, create=False).load_latest(config=cfg)  # every training state is there and matches
    assert state["step"] == 2 and find_checkpoint(run, which="latest").name == "step_0000002.pt"


def test_estimator_of_the_flat_layout_loads_and_estimates_the_same():
    expected = np.load(FIXTURE / "expected.npz")
    model, info = load_estimator(FIXTURE / "estimator", allow_untrained=True)
    assert info["untrained"]
    images = ((torch.from_numpy(expected["x"]) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    out = estimate(model, images)
    np.testing.assert_allclose(out["gaze"], expected["est_gaze"], atol=1e-5)
    np.testing.assert_allclose(out["head"], expected["est_head"], atol=1e-5)
