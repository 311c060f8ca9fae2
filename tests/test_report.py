"""The demo report's exact redirection scores: target draws stay in the data's own range (drawn in head
coordinates, regaze/data/pose_range.py), a copy-the-source model scores exactly the copy baseline (so a gain
can only come from the model), and every row carries the blur controls a model must beat to count as sharp."""
import numpy as np
import pytest

from regaze.data.dataset import open_dataset
from regaze.data.pose_range import eye_in_head_deg, eye_range_deg
from regaze.data.synth import PoseRanges, sample_poses
from regaze.evaluation.baselines import CopySource
from regaze.geometry import angular_error_deg
from regaze.demo.report_page import _figure, exact_redirection_scores, sample_changes


@pytest.fixture(scope="module")
def synth64(tmp_path_factory):
    from regaze.data.synth.generate import write_synthetic_dataset

    path = tmp_path_factory.mktemp("synth") / "s.h5"
    return write_synthetic_dataset(path, subjects=4, per_subject=6, per_session=3, size=64, seed=3, workers=1, progress=False)


def test_sampled_changes_respect_minimum_and_stay_in_the_data_range():
    head, gaze = sample_poses(2000, rng=np.random.default_rng(0), ranges=PoseRanges())  # the renderer's labels
    limit = eye_range_deg(gaze=gaze, head=head)
    src_gaze, src_head = gaze[:300], head[:300]
    rng = np.random.default_rng(1)
    for mode in ("head", "gaze"):
        new_gaze, new_head, ok = sample_changes(gaze=src_gaze, head=src_head, mode=mode, rng=rng, min_change_deg=15.0,
                                                pool_gaze=gaze, pool_head=head)
        assert ok.mean() > 0.8
        kept, changed = (new_gaze, new_head) if mode == "head" else (new_head, new_gaze)
        np.testing.assert_allclose(kept, src_gaze if mode == "head" else src_head, atol=1e-6)
        assert (angular_error_deg(changed[ok], (src_head if mode == "head" else src_gaze)[ok]) >= 15.0 - 1e-4).all()
        assert (eye_in_head_deg(gaze=new_gaze[ok], head=new_head[ok]) <= limit + 1e-3).all()
    # the control: the demo's former head draw (uniform in |pitch| <= 30, |yaw| <= 45 deg) often left the range
    uniform = np.radians(np.stack([rng.uniform(-30, 30, 300), rng.uniform(-45, 45, 300)], 1))
    assert (eye_in_head_deg(gaze=src_gaze, head=uniform) > limit).mean() > 0.2


def test_copy_model_scores_exactly_the_copy_baseline_and_is_not_sharp(synth64):
    ds = open_dataset(synth64)
    idx = np.arange(len(ds))
    for mode in ("head", "gaze"):
        s = exact_redirection_scores(CopySource(), ds, idx, mode=mode, min_change_deg=10.0, seed=0)
        np.testing.assert_array_equal(s["psnr_db"], s["copy_psnr_db"])
        assert s["psnr_db"].mean() < 40  # the target really differs from the source
        assert s["blur_sigma_2px_psnr_db"].mean() < s["blur_sigma_1px_psnr_db"].mean() < 100
        if mode == "gaze":
            np.testing.assert_array_equal(s["eye_psnr_db"], s["copy_eye_psnr_db"])
            assert s["eye_psnr_db"].mean() < s["psnr_db"].mean()  # the change is concentrated at the eyes
        fig = _figure(s, mode=mode, min_deg=10.0, output="copy")
        assert fig["gain_db"] == 0.0 and not fig["sharp"]  # copying is below the 1 px blur of the target


def test_the_exact_target_is_sharp_and_the_report_says_which_rows_are(synth64, tmp_path):
    import torch

    from regaze.checkpoint import save_checkpoint
    from regaze.config import ModelConfig
    from regaze.demo.report_page import write_demo_report
    from regaze.evaluation.baselines import SyntheticOracle
    from regaze.model.redirector import Redirector

    ds = open_dataset(synth64)
    for mode in ("head", "gaze"):
        s = exact_redirection_scores(SyntheticOracle(ds), ds, np.arange(len(ds)), mode=mode, min_change_deg=10.0, seed=0)
        assert _figure(s, mode=mode, min_deg=10.0, output="exact")["sharp"]
    cfg = ModelConfig(image_size=64, k=16, channel_base=256, channel_max=32)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt",
                    {"ema": Redirector(cfg).state_dict(), "config": {"model": cfg.to_dict()}, "step": 1})
    report = write_demo_report(run=tmp_path / "run", data=synth64, out=tmp_path / "report.html", pairs=8)
    assert set(report["figures"]) == {"head", "gaze", "gaze_decoder", "both"}
    assert not any(f["sharp"] for f in report["figures"].values())  # random weights are sharp nowhere
    assert all("NOT sharp" in line for line in report["lines"][:4]) and "sharp only where" in report["lines"][4]
    page = (tmp_path / "report.html").read_text()
    assert "exact target blurred 1 px (dB)" in page and "gaze-only, decoder image" in page
