"""`make bench-gpu` (python -m benchmarks.gpu) is ready for a GPU: without one it says so and exits 2 having
measured nothing; its --dry-run runs the whole measurement path on the CPU with tiny models and writes
every figure the GPU run records."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # the CPU, even on a GPU machine
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_without_a_gpu_it_measures_nothing_and_says_so(tmp_path):
    proc = _bench("--out", str(tmp_path / "gpu.json"), timeout=120)
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and "--dry-run" in proc.stderr
    assert not (tmp_path / "gpu.json").exists()


@pytest.mark.isolated(timeout=400)
def test_the_dry_run_records_every_figure(tmp_path):
    proc = _bench("--dry-run", "--no-compile", "--out", str(tmp_path / "gpu.json"), timeout=360)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["dry_run"] is True and result["device"] == "cpu (dry run)"
    for size in ("128", "224"):
        row = result["presets"][size]
        assert row["preset"] == f"configs/xgaze{size}.json"
        assert row["train"]["pairs_per_s"] > 0 and row["train"]["steps"] > 1 and row["train"]["channels_last"] is True
        assert row["loader_pairs_per_s"] > 0 and row["step_GFLOPs_per_pair"] > 0
    assert result["presets"]["128"]["inference"]["images_per_s"] > 0
    assert torch.__version__ in json.dumps(result["machine"])
