"""configs/: every preset that README.md and `regaze train --help` name exists, loads into a TrainConfig whose
image size is the one in its name, builds its model, and the CPU synthetic preset trains; config files
reject unknown fields and drop "_" comment keys."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from regaze.commands.train import EPILOG
from regaze.config import build_config, read_config_file
from regaze.errors import RegazeError
from regaze.model.discriminator import Discriminator
from regaze.model.redirector import Redirector

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import write_tiny_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "configs").glob("*.json"))
SIZE_IN_NAME = re.compile(r"(\d+)")


def _paths_in(text: str) -> set[str]:
    """Preset file names a text mentions as configs/NAME.json."""
    return set(re.findall(r"configs/([\w.-]+\.json)", text))


def _presets_in_help() -> set[str]:
    """The presets `regaze train --help` names: configs/NAME.json paths and its "presets (configs/): ..." list."""
    listed = re.search(r"presets \(configs/\):(.*?)\n\n", EPILOG, flags=re.S)
    return _paths_in(EPILOG) | (set(re.findall(r"[\w-]+\.json", listed.group(1))) if listed else set())


def test_the_four_presets_exist():
    names = {p.name for p in PRESETS}
    assert {"synth64_cpu.json", "xgaze128.json", "xgaze224.json", "sted128.json"} <= names


def test_every_preset_named_in_readme_or_help_exists_and_help_names_every_preset():
    named = _presets_in_help() | _paths_in((ROOT / "README.md").read_text())
    missing = sorted(n for n in named if not (ROOT / "configs" / n).is_file())
    assert not missing, f"named but not in configs/: {missing}"
    unnamed = sorted(p.name for p in PRESETS if p.name not in _presets_in_help())
    assert not unnamed, f"configs/ presets that `regaze train --help` does not name: {unnamed}"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_preset_loads_with_the_size_in_its_name_and_builds_its_model(preset):
    raw = json.loads(preset.read_text())
    assert isinstance(raw.get("_about"), str) and len(raw["_about"]) > 40  # says what data and machine it is for
    cfg = build_config(config_file=str(preset), overrides=[])
    assert cfg.model.image_size == int(SIZE_IN_NAME.search(preset.stem).group(1))
    g = Redirector(cfg.model)
    with torch.no_grad():
        out = g(torch.zeros(1, 3, cfg.model.image_size, cfg.model.image_size))
    assert out.shape == (1, 3, cfg.model.image_size, cfg.model.image_size)
    Discriminator(**cfg.model.discriminator_kwargs())


def test_the_cpu_preset_is_the_demos_recipe():
    from regaze.demo.job import DEMO_TRAIN

    preset = read_config_file(ROOT / "configs" / "synth64_cpu.json")
    for key, value in DEMO_TRAIN.items():
        assert preset[key] == value, key


def test_config_files_drop_comments_and_reject_unknown_fields(tmp_path):
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"_about": "x", "loss": {"_why": "y", "ort": 0.0}, "batch_size": 2}))
    cfg = build_config(config_file=str(ok), overrides=["batch_size=3"])
    assert cfg.loss.ort == 0.0 and cfg.batch_size == 3  # the command line goes over the file
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"loss": {"orth": 0.0}}))
    with pytest.raises(RegazeError, match=r"LossWeights: unknown field\(s\) \['orth'\]"):
        build_config(config_file=str(bad), overrides=[])
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(RegazeError, match="expected a JSON object"):
        build_config(config_file=str(listed), overrides=[])


@pytest.mark.isolated(timeout=180)
def test_the_cpu_preset_trains(tmp_path):
    from regaze.training.loop import train

    data = write_tiny_dataset(tmp_path / "tiny64.h5", size=64)
    cfg = build_config(config_file=str(ROOT / "configs" / "synth64_cpu.json"),
                       overrides=["max_steps=2", "max_minutes=0", "val_pairs=2", "val_redirect_pairs=2", "threads=1"])
    summary = train(cfg, data=data, out=tmp_path / "run", progress=False)
    assert summary["step"] == 2 and torch.isfinite(torch.tensor(summary["total"]))
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
