"""The loop's precision and speed switches: bf16 autocast and channels-last train with finite losses close
to float32's and save checkpoints that load into a plain model; torch.compile trains to float32's losses
(slow: compiling takes about a minute on the CPU); a bad amp value is a clear error."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from regaze.config import TrainConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.pretrained import load_redirector
from regaze.training.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 100,
        "val_pairs": 4, "threads": 1, "max_steps": 4}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5")


def _losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]
    return [r["total"] for r in rows]


@pytest.mark.isolated(timeout=120)
def test_bf16_autocast_and_channels_last_train_close_to_float32_and_save_loadable_weights(tiny_data, tmp_path):
    train(config_from_dict(TrainConfig, TINY), data=tiny_data, out=tmp_path / "fp32", progress=False)
    fast = config_from_dict(TrainConfig, {**TINY, "amp": "bf16", "channels_last": True})
    train(fast, data=tiny_data, out=tmp_path / "bf16", progress=False)
    ref, got = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert len(got) == 4 and all(torch.isfinite(torch.tensor(got)))
    assert got != ref  # autocast really ran in bf16 ...
    assert max(abs(a - b) / a for a, b in zip(ref, got)) < 0.05  # ... and trains the same model
    model, info = load_redirector(tmp_path / "bf16", which="latest")
    assert info["step"] == 4
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.isolated(timeout=600)
def test_compiled_training_gives_float32_eager_losses(tiny_data, tmp_path):
    train(config_from_dict(TrainConfig, TINY), data=tiny_data, out=tmp_path / "eager", progress=False)
    train(config_from_dict(TrainConfig, {**TINY, "compile": True}), data=tiny_data, out=tmp_path / "compiled", progress=False)
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(compiled) == 4
    assert max(abs(a - b) / a for a, b in zip(eager, compiled)) < 1e-4


def test_an_unknown_amp_value_is_a_clear_error():
    with pytest.raises(RegazeError, match="amp must be 'auto'"):
        config_from_dict(TrainConfig, {"amp": "fp16"})
