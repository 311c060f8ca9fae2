"""On a CUDA device (marked `gpu`, skipped by default and wherever no GPU is present; run with
`pytest -m gpu`): a short training run with the GPU recipe's switches (bf16 autocast, channels-last,
DataLoader workers reading the file), and a save / resume that continues the run where it stopped."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from regaze.checkpoint import load_checkpoint
from regaze.config import TrainConfig, config_from_dict
from regaze.model.pretrained import find_checkpoint, load_redirector
from regaze.training.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import write_tiny_dataset  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SMALL = {"model": {"image_size": 64, "k": 16, "channel_max": 64, "disc_channel_max": 64, "flat_channels": 8,
                   "estimator_hidden": 32}, "batch_size": 8, "log_every": 2, "val_every": 4, "ckpt_every": 4,
         "val_pairs": 8, "val_redirect_pairs": 4, "device": "cuda", "amp": "auto", "channels_last": True,
         "data": {"loader_workers": 2, "cache_mb": 0}}


@pytest.fixture(scope="module")
def data64(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny64.h5", size=64)


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]


def test_a_short_training_run_on_cuda(data64, tmp_path):
    summary = train(config_from_dict(TrainConfig, {**SMALL, "max_steps": 8}), data=data64, out=tmp_path / "run", progress=False)
    assert summary["step"] == 8 and summary["stop_reason"] == "max_steps"
    rows = _rows(tmp_path / "run")
    assert all(torch.isfinite(torch.tensor(r["total"])) for r in rows)
    assert rows[-1]["rec"] < rows[0]["rec"]  # it learns
    model, _ = load_redirector(tmp_path / "run", which="latest", device="cuda")
    out = model.redirect(torch.zeros(2, 3, 64, 64, device="cuda"), gaze=torch.zeros(2, 2, device="cuda"))
    assert out.shape[0] == 2


def test_save_and_resume_on_cuda_continue_the_run(data64, tmp_path):
    run = tmp_path / "run"
    train(config_from_dict(TrainConfig, {**SMALL, "max_steps": 4}), data=data64, out=run, progress=False)
    first = load_checkpoint(find_checkpoint(run, which="latest"))
    assert first["step"] == 4 and first["generator"][next(iter(first["generator"]))].device.type == "cpu"
    summary = train(config_from_dict(TrainConfig, {**SMALL, "max_steps": 8}), data=data64, out=run, resume=True, progress=False)
    assert summary["step"] == 8
    assert [r["step"] for r in _rows(run)] == [2, 4, 6, 8]  # continued, not restarted
    last = load_checkpoint(find_checkpoint(run, which="latest"))
    assert last["step"] == 8
    assert any(not torch.equal(first["generator"][k], last["generator"][k]) for k in first["generator"])



def test_bench_gpu_writes_the_device_and_every_figure(tmp_path):
    from benchmarks.gpu import main

    result = main(out=tmp_path / "gpu.json", compile_row=False)
    assert json.loads((tmp_path / "gpu.json").read_text())["device"] == torch.cuda.get_device_name(0)
    for size in (128, 224):
        row = result["presets"][size]
        assert row["train"]["pairs_per_s"] > 0 and row["train"]["peak_memory_GiB"] > 0 and row["loader_pairs_per_s"] > 0
    assert result["presets"][128]["inference"]["images_per_s"] > 0
