"""The demo's guards: a synthetic file from another renderer version is noticed, and the thread count
follows the cores that other processes leave free."""
import os

import h5py
import numpy as np
import pytest

from regaze.data.synth import write_synthetic_dataset
from regaze.demo.job import free_cores, renders_match


def test_renders_match_notices_a_file_from_another_renderer(tmp_path):
    path = write_synthetic_dataset(tmp_path / "s.h5", subjects=2, per_subject=6, size=64, seed=3, workers=1, progress=False)
    assert renders_match(path)
    with h5py.File(path, "r+") as f:  # what an older renderer would have drawn: a slightly different image
        key = next(k for k in ("face_patch", "images") if k in f)
        f[key][0, 10, 10] = (f[key][0, 10, 10].astype(np.int16) + 40).clip(0, 255).astype(np.uint8)
    assert not renders_match(path)


def test_free_cores_is_between_one_and_the_core_count():
    n = free_cores(window_s=0.2)
    assert 1 <= n <= (os.cpu_count() or 1)


@pytest.mark.parametrize("args,message", [(["--minutes", "0"], "--minutes"), (["--minutes", "nan"], "--minutes"),
                                          (["--subjects", "2"], "--subjects"), (["--per-subject", "1"], "--per-subject"),
                                          (["--eval-pairs", "0"], "--eval-pairs")])
def test_demo_refuses_bad_numbers_before_writing(tmp_path, capsys, args, message):
    from regaze.cli import main as cli_main

    out = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(out), *args]) == 1
    assert message in capsys.readouterr().err and not out.exists()


def test_a_demo_run_of_an_older_recipe_is_trained_again(tmp_path):
    import json

    from regaze.config import TrainConfig, config_from_dict
    from regaze.demo.job import DEMO_TRAIN, recipe_changes

    today = config_from_dict(TrainConfig, {**DEMO_TRAIN, "max_minutes": 10.0, "threads": 2}).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(today))
    assert recipe_changes(tmp_path / "config.json") == []  # the budget and threads are not the recipe
    older = json.loads(json.dumps(today))
    older["model"].pop("decoder_mode")  # a config written before the field existed: the patent's decoder
    older["loss"]["latent"] = 0.0
    (tmp_path / "config.json").write_text(json.dumps(older))
    changes = recipe_changes(tmp_path / "config.json")
    assert "model.decoder_mode: 'pure' -> 'warp'" in changes and "loss.latent: 0.0 -> 0.1" in changes
    assert recipe_changes(tmp_path / "missing.json")  # unreadable counts as changed
