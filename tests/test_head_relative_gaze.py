"""model.gaze_frame="head" (issue 13's lever 6): Z_g is rotated between head-relative gaze angles, while every
angle the user gives or gets back stays in the camera frame; pair training feeds the label loss head-relative
gaze; a camera-frame model is unchanged; ONNX export refuses the head-frame model with a clear error."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from regaze.config import ModelConfig, TrainConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.geometry import gaze_in_camera, gaze_in_head
from regaze.model.redirector import Redirector
from regaze.training.pair_step import PairForward, generator_terms

sys.path.insert(0, str(Path(__file__).parent))

SMALL = dict(image_size=32, k=8, channel_max=32, flat_channels=8, estimator_hidden=16)


def _model(frame: str) -> Redirector:
    torch.manual_seed(0)
    return Redirector(ModelConfig(**SMALL, gaze_frame=frame)).eval()


def _record_rotations(model: Redirector) -> list[dict]:
    calls = []
    original = model.separation.rotate_features

    def spy(feats, **kw):
        calls.append({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})
        return original(feats, **kw)

    model.separation.rotate_features = spy
    return calls


def test_bad_gaze_frame_is_a_clear_error():
    with pytest.raises(RegazeError, match="gaze_frame"):
        ModelConfig(gaze_frame="world")


def test_head_only_change_turns_z_gaze_between_head_relative_angles_keeping_camera_gaze():
    model = _model("head")
    calls = _record_rotations(model)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    g_s = torch.tensor([[0.1, -0.2], [0.0, 0.3], [-0.2, 0.1]])
    h_s = torch.tensor([[0.05, 0.1], [-0.1, -0.2], [0.2, 0.0]])
    h_t = torch.tensor([[0.2, -0.3], [0.0, 0.2], [-0.1, 0.4]])
    _, sources = model.redirect(x, head=h_t, source_gaze=g_s, source_head=h_s, compose="decode")
    gaze_call, head_call = calls
    torch.testing.assert_close(gaze_call["source_gaze"], gaze_in_head(g_s, h_s))
    torch.testing.assert_close(gaze_call["target_gaze"], gaze_in_head(g_s, h_t))  # camera-frame gaze kept
    torch.testing.assert_close(head_call["target_head"], h_t)
    torch.testing.assert_close(sources["gaze"], g_s)  # the caller's angles, camera frame


def test_camera_frame_model_rotates_z_gaze_only_for_a_gaze_change():
    model = _model("camera")
    calls = _record_rotations(model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    g_s, h_s = torch.full((2, 2), 0.1), torch.full((2, 2), -0.1)
    model.redirect(x, head=torch.zeros(2, 2), source_gaze=g_s, source_head=h_s, compose="decode")
    assert calls[0]["target_gaze"] is None  # Z_g untouched by a head-only change
    torch.testing.assert_close(calls[1]["target_head"], torch.zeros(2, 2))


def test_estimated_source_gaze_comes_back_in_the_camera_frame():
    model = _model("head")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = model.encode(x)
    _, sources = model.redirect(x, gaze=torch.zeros(2, 2), compose="decode")
    torch.testing.assert_close(sources["gaze"], gaze_in_camera(feats.gaze_est.float(), feats.head_est.float()))
    torch.testing.assert_close(sources["head"], feats.head_est.float())


def test_pair_step_label_loss_reads_head_relative_gaze():
    model = _model("head").train()
    pf = PairForward(model, latent=True)
    b = 4
    torch.manual_seed(1)
    batch = {"x_a": torch.rand(b, 3, 32, 32) * 2 - 1, "x_b": torch.rand(b, 3, 32, 32) * 2 - 1,
             "gaze_a": torch.rand(b, 2) * 0.6 - 0.3, "gaze_b": torch.rand(b, 2) * 0.6 - 0.3,
             "head_a": torch.rand(b, 2) * 0.6 - 0.3, "head_b": torch.rand(b, 2) * 0.6 - 0.3}
    sel = torch.tensor([True, False, True, False])
    out = pf(**batch, gaze_sel=sel, head_sel=~sel)
    torch.testing.assert_close(out["gaze_labels"]["a"], gaze_in_head(batch["gaze_a"], batch["head_a"]))
    torch.testing.assert_close(out["latent"]["target_angles"]["gaze"],
                               torch.cat([gaze_in_head(batch["gaze_b"], batch["head_b"]),
                                          gaze_in_head(batch["gaze_a"], batch["head_a"])]))
    terms = generator_terms(out, batch, fake_logits=None)
    assert all(torch.isfinite(v) for v in terms.values())
    # the label term scores the auxiliary estimates against the head-relative labels, not the camera ones
    from regaze.training import losses
    fa, fb = out["feats_a"], out["feats_b"]
    want = 0.5 * (losses.label_loss(gaze_est=fa.gaze_est, gaze_label=out["gaze_labels"]["a"], head_est=fa.head_est,
                                    head_label=batch["head_a"])
                  + losses.label_loss(gaze_est=fb.gaze_est, gaze_label=out["gaze_labels"]["b"], head_est=fb.head_est,
                                      head_label=batch["head_b"]))
    torch.testing.assert_close(terms["label"], want)


def test_head_frame_gaze_round_trips_through_the_conversions():
    g = torch.tensor([[0.3, -0.5], [-0.2, 0.4]])
    h = torch.tensor([[0.1, 0.6], [-0.3, -0.2]])
    torch.testing.assert_close(gaze_in_camera(gaze_in_head(g, h), h), g, atol=1e-6, rtol=0)
    assert math.isclose(float(gaze_in_head(h, h).abs().max()), 0.0, abs_tol=1e-6)  # looking where the face points


@pytest.mark.isolated(timeout=120)
def test_head_frame_model_trains_and_reloads(tmp_path):
    from train_fixtures import write_tiny_dataset

    from regaze.model.pretrained import load_redirector
    from regaze.training.loop import train

    data = write_tiny_dataset(tmp_path / "tiny.h5")
    cfg = config_from_dict(TrainConfig, {"model": {**SMALL, "gaze_frame": "head", "decoder_mode": "warp"},
                                         "loss": {"latent": 0.1}, "batch_size": 4, "log_every": 1, "val_every": 3,
                                         "ckpt_every": 100, "val_pairs": 4, "threads": 1, "max_steps": 3})
    train(cfg, data=data, out=tmp_path / "run", progress=False)
    model, info = load_redirector(tmp_path / "run", which="latest")
    assert model.config.gaze_frame == "head" and info["step"] == 3


def test_onnx_export_refuses_a_head_frame_model():
    from regaze.export.onnx_graph import RedirectionGraph

    with pytest.raises(RegazeError, match="gaze_frame"):
        RedirectionGraph(_model("head"))
