"""The demo report's exact redirection scores: target draws obey their constraints, and a copy-the-source
model scores exactly the copy baseline (so a gain can only come from the model)."""
import numpy as np
import pytest

from regaze.data.dataset import open_dataset
from regaze.evaluation.baselines import CopySource
from regaze.geometry import angular_error_deg
from regaze.demo.report_page import GAZE_FROM_HEAD_MAX_DEG, exact_redirection_scores, sample_changes


@pytest.fixture(scope="module")
def synth64(tmp_path_factory):
    from regaze.data.synth.generate import write_synthetic_dataset

    path = tmp_path_factory.mktemp("synth") / "s.h5"
    return write_synthetic_dataset(path, subjects=4, per_subject=6, per_session=3, size=64, seed=3, workers=1, progress=False)


def test_sampled_changes_respect_minimum_and_eyeball_range():
    rng = np.random.default_rng(0)
    head = np.radians(rng.uniform(-20, 20, (200, 2)))
    gaze = head + np.radians(rng.uniform(-15, 15, (200, 2)))
    for mode in ("head", "gaze"):
        new_gaze, new_head, ok = sample_changes(gaze=gaze, head=head, mode=mode, rng=rng, min_change_deg=15.0)
        assert ok.all()
        kept, changed = (new_gaze, new_head) if mode == "head" else (new_head, new_gaze)
        np.testing.assert_allclose(kept, gaze if mode == "head" else head, atol=1e-6)
        assert (angular_error_deg(changed, head if mode == "head" else gaze) >= 15.0 - 1e-4).all()
        assert (angular_error_deg(new_gaze, new_head) <= GAZE_FROM_HEAD_MAX_DEG + 1e-4).all()


def test_copy_model_scores_exactly_the_copy_baseline(synth64):
    ds = open_dataset(synth64)
    idx = np.arange(len(ds))
    for mode in ("head", "gaze"):
        s = exact_redirection_scores(CopySource(), ds, idx, mode=mode, min_change_deg=10.0, seed=0)
        np.testing.assert_array_equal(s["psnr_db"], s["copy_psnr_db"])
        assert s["psnr_db"].mean() < 40  # the target really differs from the source
        if mode == "gaze":
            np.testing.assert_array_equal(s["eye_psnr_db"], s["copy_eye_psnr_db"])
            assert s["eye_psnr_db"].mean() < s["psnr_db"].mean()  # the change is concentrated at the eyes
