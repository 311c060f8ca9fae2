"""The ablation studies' recipes: the demo_levers study's winner (half the width) is the demo's recipe, and
each of its variants changes only what its row says against the study's baseline."""
from __future__ import annotations

from benchmarks.ablation import DEMO_LEVERS, STUDIES, variant_recipe
from regaze.config import TrainConfig, config_from_dict
from regaze.demo.job import DEMO_TRAIN


def _config(recipe: dict) -> TrainConfig:
    return config_from_dict(TrainConfig, {**recipe, "max_steps": 1})


def test_demo_levers_winner_is_the_demo_recipe():
    ours = _config(variant_recipe(study="demo_levers", name="demo_narrow"))
    demo = _config({k: v for k, v in DEMO_TRAIN.items() if k != "max_steps"})
    assert ours == demo


def test_demo_levers_variants_change_only_width_or_batch():
    base = _config(variant_recipe(study="demo_levers", name="demo"))
    for name in DEMO_LEVERS:
        cfg = _config(variant_recipe(study="demo_levers", name=name))
        changed = {f for f in ("batch_size",) if getattr(cfg, f) != getattr(base, f)}
        changed |= {f"model.{f}" for f in ("channel_base", "channel_max", "gaze_frame")
                    if getattr(cfg.model, f) != getattr(base.model, f)}
        assert cfg.loss == base.loss and cfg.model.decoder_mode == base.model.decoder_mode
        if name == "demo":
            assert not changed
        elif "batch" in name:
            assert changed == {"batch_size"}, name
        elif name == "demo_head_gaze":
            assert changed == {"model.gaze_frame"} and cfg.model.gaze_frame == "head"
        else:
            assert changed == {"model.channel_base", "model.channel_max"}, name


def test_every_study_variant_builds_a_config(tmp_path):
    for study, (variants, _, _) in STUDIES.items():
        for name in variants:
            recipe = variant_recipe(study=study, name=name)
            if recipe["loss"].get("guide") or recipe["loss"].get("guide_random"):
                recipe["guide_estimator"] = str(tmp_path)  # run_variant sets --guide DIR here
            assert isinstance(_config(recipe), TrainConfig)
