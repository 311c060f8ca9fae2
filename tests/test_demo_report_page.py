"""The demo report's issue-13 parts: "both" changes stay in the data's range, every kind has a grid with the
sigma = 1 px control, the angle sweeps put the exact render under the model's output (an exact model matches
it pixel for pixel), and a reference checkpoint gets its own section described by its card."""
import json

import numpy as np
import pytest
from PIL import Image

from regaze.data.dataset import open_dataset
from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.data.synth import PoseRanges, sample_poses
from regaze.demo.report_grids import GRID_COLUMNS, GRID_IMAGES
from regaze.demo.report_page import read_reference_card, reference_title, sample_changes, write_demo_report
from regaze.demo.sweeps import SWEEPS, clip_eye_in_head, sweep_image, sweep_outputs, sweep_targets
from regaze.errors import RegazeError
from regaze.evaluation.baselines import CopySource, SyntheticOracle
from regaze.geometry import angular_error_deg

TILE, PAD = 64, 2  # image_io.tile's layout for 64² images


def grid_size(*, rows: int, cols: int) -> tuple[int, int]:
    """(width, height) in pixels of a tile() grid of 64² images."""
    return cols * (TILE + PAD) + PAD, rows * (TILE + PAD) + PAD


@pytest.fixture(scope="module")
def synth64(tmp_path_factory):
    from regaze.data.synth.generate import write_synthetic_dataset

    path = tmp_path_factory.mktemp("synth") / "s.h5"
    return write_synthetic_dataset(path, subjects=4, per_subject=6, per_session=3, size=64, seed=3, workers=1,
                                   progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory with one small checkpoint (random weights: the report's plumbing, not its figures)."""
    import torch

    from regaze.checkpoint import save_checkpoint
    from regaze.config import ModelConfig
    from regaze.model.redirector import Redirector

    run = tmp_path_factory.mktemp("run")
    cfg = ModelConfig(image_size=64, k=16, channel_base=256, channel_max=32)
    torch.manual_seed(0)
    save_checkpoint(run / "checkpoints" / "best.pt",
                    {"ema": Redirector(cfg).state_dict(), "config": {"model": cfg.to_dict()}, "step": 7})
    return run


@pytest.fixture(scope="module")
def report(synth64, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    reference = tiny_run / "checkpoints" / "best.pt"
    (reference.parent / "card.json").write_text(json.dumps(
        {"training_minutes": 12.5, "command": "regaze train --config configs/synth64.json", "data_seed": 3,
         "metrics": {"head_psnr_db": 24.1, "gaze": {"eye_psnr_db": 27.5}}}))
    return out, write_demo_report(run=tiny_run, data=synth64, out=out / "report.html", pairs=6, reference=reference)


def test_both_changes_move_gaze_and_head_and_stay_in_the_data_range():
    head, gaze = sample_poses(2000, rng=np.random.default_rng(0), ranges=PoseRanges())  # the renderer's labels
    limit = eye_range_deg(gaze=gaze, head=head)
    src_gaze, src_head = gaze[:300], head[:300]
    new_gaze, new_head, ok = sample_changes(gaze=src_gaze, head=src_head, mode="both", rng=np.random.default_rng(1),
                                            min_change_deg=10.0, pool_gaze=gaze, pool_head=head)
    assert ok.mean() > 0.8
    assert (angular_error_deg(new_head[ok], src_head[ok]) >= 10.0 - 1e-4).all()
    assert (angular_error_deg(new_gaze[ok], src_gaze[ok]) >= 10.0 - 1e-4).all()
    assert (eye_in_head_deg(gaze=new_gaze[ok], head=new_head[ok]) <= limit + 1e-3).all()
    with pytest.raises(RegazeError, match="mode must be one of"):
        sample_changes(gaze=src_gaze, head=src_head, mode="eyes", rng=np.random.default_rng(1), min_change_deg=10.0,
                       pool_gaze=gaze, pool_head=head)


def test_clipping_pulls_a_gaze_back_to_the_eye_range_and_keeps_one_inside():
    head = np.radians([[10.0, -20.0], [10.0, -20.0]]).astype(np.float32)
    gaze = np.radians([[10.0, 40.0], [15.0, -10.0]]).astype(np.float32)  # 60 deg off the face; about 11 deg off
    clipped = clip_eye_in_head(gaze=gaze, head=head, limit_deg=30.0)
    off = eye_in_head_deg(gaze=clipped, head=head)
    np.testing.assert_allclose(off[0], 30.0, atol=1e-3)
    np.testing.assert_allclose(clipped[1], gaze[1], atol=1e-5)


def test_an_exact_model_follows_every_sweep_and_copying_does_not(synth64):
    ds = open_dataset(synth64)
    sweep = sweep_targets(dataset=ds)
    assert sweep["index"] in ds.split_indices("test")
    for row in sweep["rows"].values():
        assert (eye_in_head_deg(gaze=row["gaze"], head=row["head"]) <= sweep["limit_deg"] + 1e-3).all()
    exact = sweep_outputs(SyntheticOracle(ds, indices=[sweep["index"]]), sweep=sweep)
    copied = sweep_outputs(CopySource(), sweep=sweep)
    for key in SWEEPS:
        np.testing.assert_array_equal(exact[key]["output"], sweep["rows"][key]["target"])
        assert (copied[key]["psnr_db"] < 100).any()  # the sweep really moves something
    cols = 1 + max(len(v) for *_, v in SWEEPS.values())
    assert sweep_image(sweep=sweep, outputs=exact).shape[:2] == grid_size(rows=2 * len(SWEEPS), cols=cols)[::-1]


def test_report_has_the_both_row_grids_with_the_blur_control_and_the_sweep(report):
    out, rep = report
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["figures"]) == {"head", "gaze", "gaze_decoder", "both"}
    both = saved["figures"]["both"]
    assert both["region"] == "whole image" and both["n"] > 0
    assert both["mean_head_change_deg"] >= 10.0 and both["mean_gaze_change_deg"] >= 10.0
    assert both["blur_sigma_2px_psnr_db"] < both["blur_sigma_1px_psnr_db"] < 100
    assert any(line.startswith("gaze and head") for line in saved["lines"])
    for key, name in saved["grids"].items():
        rows = min(GRID_IMAGES, saved["figures"][key]["n"])
        assert Image.open(out / name).size == grid_size(rows=rows, cols=len(GRID_COLUMNS[key]))
    assert set(saved["grids"]) == {"head", "gaze", "both"}
    sweep_rows = 2 * len(SWEEPS)  # the model's outputs, then the exact renders, per sweep
    assert Image.open(out / saved["sweep"]["png"]).size[1] == grid_size(rows=sweep_rows, cols=1)[1]
    assert set(saved["sweep"]["rows"]) == set(SWEEPS) and saved["sweep"]["subject"] is not None
    page = (out / "report.html").read_text()
    for text in ("Gaze and head together", "exact target blurred 1 px", "Angle sweeps of one held-out person",
                 "gaze yaw: exact target render", "both.png", "sweep.png"):
        assert text in page


def test_a_reference_checkpoint_gets_its_own_section_described_by_its_card(report):
    out, rep = report
    saved = json.loads((out / "report.json").read_text())
    ref = saved["reference"]
    assert set(ref["figures"]) == set(saved["figures"]) and ref["step"] == 7
    assert ref["title"] == "reference model (given, trained on synthetic faces for 12.5 CPU minutes)"
    assert "regaze train --config configs/synth64.json" in ref["description"]
    assert "gaze/eye_psnr_db 27.5" in ref["description"]
    for name in (*ref["grids"].values(), ref["sweep"]["png"]):
        assert name.startswith("reference_") and (out / name).is_file()
    # the same weights on the same images and angles: the same figures
    assert ref["figures"]["both"]["model_psnr_db"] == saved["figures"]["both"]["model_psnr_db"]
    page = (out / "report.html").read_text()
    assert "Reference model (given, trained on synthetic faces for 12.5 CPU minutes)" in page
    assert "reference model (dB)" in page and "reference_both.png" in page


def test_the_reference_card_is_read_defensively(tmp_path):
    assert read_reference_card(tmp_path / "model.pt") == {}
    (tmp_path / "card.json").write_text("{not json")
    assert read_reference_card(tmp_path / "model.pt") == {}
    (tmp_path / "card.json").write_text("[1, 2]")
    assert read_reference_card(tmp_path / "model.pt") == {}
    assert reference_title(card={"training_minutes": "long"}, shipped=True) == \
        "reference model (shipped, trained on synthetic faces; training time not recorded)"
    exported = {"training": {"elapsed_minutes": 30, "command": "regaze train ..."}, "metrics": {}}  # export-reference's
    assert reference_title(card=exported, shipped=True) == \
        "reference model (shipped, trained on synthetic faces for 30 CPU minutes)"
