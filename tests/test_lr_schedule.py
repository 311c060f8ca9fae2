"""The learning-rate schedule (config lr_schedule / lr_final, regaze/training/lr_schedule.py): the cosine
falls from lr_g to lr_final * lr_g over the budget, by steps or by minutes, whichever is spent first; the loop
applies it to the step it trains, continues it on resume, and stores the time trained in its
checkpoints; a bad value is a clear error."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from regaze.checkpoint import load_checkpoint
from regaze.config import TrainConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.pretrained import find_checkpoint
from regaze.training.loop import train
from regaze.training.lr_schedule import budget_progress, lr_factor

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 100,
        "val_pairs": 4, "threads": 1, "max_steps": 6, "lr_g": 1e-3, "lr_d": 2e-3}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5")


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]


def test_the_cosine_runs_from_one_to_lr_final_and_constant_stays_at_one():
    assert lr_factor(schedule="cosine", progress=0.0, final=0.05) == 1.0
    assert lr_factor(schedule="cosine", progress=1.0, final=0.05) == pytest.approx(0.05)
    assert lr_factor(schedule="cosine", progress=0.5, final=0.05) == pytest.approx(0.525)
    values = [lr_factor(schedule="cosine", progress=p / 20, final=0.1) for p in range(21)]
    assert all(a > b for a, b in zip(values, values[1:]))  # strictly falling
    assert lr_factor(schedule="cosine", progress=3.0, final=0.1) == pytest.approx(0.1)  # past the budget: the floor
    assert {lr_factor(schedule="constant", progress=p, final=0.1) for p in (0.0, 0.5, 1.0)} == {1.0}
    with pytest.raises(RegazeError, match="lr_schedule must be one of"):
        lr_factor(schedule="linear", progress=0.5, final=0.1)


def test_the_budget_is_the_larger_of_steps_and_minutes_spent():
    assert budget_progress(step=10, max_steps=100, trained_s=0.0, max_minutes=0.0) == pytest.approx(0.1)
    assert budget_progress(step=10, max_steps=100, trained_s=300.0, max_minutes=10.0) == pytest.approx(0.5)
    assert budget_progress(step=90, max_steps=100, trained_s=300.0, max_minutes=10.0) == pytest.approx(0.9)
    assert budget_progress(step=1, max_steps=100, trained_s=900.0, max_minutes=10.0) == 1.0  # clipped
    assert budget_progress(step=0, max_steps=100, trained_s=900.0, max_minutes=0.0) == 0.0  # no time budget


def test_bad_schedule_values_are_clear_errors():
    with pytest.raises(RegazeError, match="lr_schedule must be 'constant' or 'cosine'"):
        config_from_dict(TrainConfig, {**TINY, "lr_schedule": "step"})
    with pytest.raises(RegazeError, match="lr_final"):
        config_from_dict(TrainConfig, {**TINY, "lr_final": 1.5})


@pytest.mark.isolated(timeout=120)
def test_the_loop_trains_each_step_at_the_scheduled_rate_and_continues_it_on_resume(tiny_data, tmp_path):
    cosine = {**TINY, "lr_schedule": "cosine", "lr_final": 0.1}
    train(config_from_dict(TrainConfig, cosine), data=tiny_data, out=tmp_path / "cos", progress=False)
    rows = _rows(tmp_path / "cos")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    # the row of step s logs the rate its last update (step index s - 1) ran at
    expected = [1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 1) / 6))) for s in range(1, 7)]
    assert [r["lr_g"] for r in rows] == pytest.approx(expected)
    state = load_checkpoint(find_checkpoint(tmp_path / "cos", which="latest"))
    assert state["trained_s"] > 0 and state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(2 * expected[-1])

    train(config_from_dict(TrainConfig, TINY), data=tiny_data, out=tmp_path / "const", progress=False)
    assert {r["lr_g"] for r in _rows(tmp_path / "const")} == {1e-3}
    assert [r["total"] for r in _rows(tmp_path / "const")][1:] != [r["total"] for r in rows][1:]  # the rate matters

    # a resumed run continues the schedule from its step (here under the longer budget it is resumed with)
    train(config_from_dict(TrainConfig, {**cosine, "max_steps": 3}), data=tiny_data, out=tmp_path / "split", progress=False)
    train(config_from_dict(TrainConfig, cosine), data=tiny_data, out=tmp_path / "split", resume=True, progress=False)
    split = _rows(tmp_path / "split")
    assert [r["step"] for r in split] == [1, 2, 3, 4, 5, 6]
    assert [r["lr_g"] for r in split[3:]] == pytest.approx(expected[3:])
