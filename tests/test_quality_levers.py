"""Issue 13's levers: the warping decoder, the full-resolution stage, latent consistency, the training-time
estimator's redirection loss and the GAN warm-up: their invariants, and a training run that uses them all."""
from __future__ import annotations

import json
import math

import pytest
import torch

from regaze.config import ModelConfig, TrainConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.decoder import warp_image
from regaze.model.redirector import Redirector
from regaze.training import losses
from regaze.training.pair_step import PairForward, generator_terms

SMALL = dict(image_size=32, k=8, channel_max=32, flat_channels=8, estimator_hidden=16)


def _small(**kw) -> Redirector:
    torch.manual_seed(0)
    return Redirector(ModelConfig(**SMALL, **kw))


def _angles(n: int, seed: int) -> torch.Tensor:
    return (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) - 0.5) * 0.8  # (n, 2) rad


# ------------------------------------------------------------------------------------------ warping
def test_zero_flow_is_the_identity_and_a_shift_moves_pixels():
    image = torch.rand(2, 3, 8, 8)
    assert torch.allclose(warp_image(image, flow=torch.zeros(2, 2, 8, 8)), image, atol=1e-6)
    flow = torch.zeros(2, 2, 8, 8)
    flow[:, 0] = 2.0 / 8  # one pixel to the right in [-1, 1] coordinates: out(x) = image(x + 1)
    shifted = warp_image(image, flow=flow)
    assert torch.allclose(shifted[..., :-1], image[..., 1:], atol=1e-5)


def test_warping_decoder_starts_as_half_base_half_rendered_and_needs_its_base():
    g = _small(decoder_mode="warp")
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    feats = g.encode(x)
    out = g.decode(feats, base=x, base_feats=feats)
    warp_head, g.decoder.to_warp = g.decoder.to_warp, None  # without its warp head the decoder returns the rendered image
    rendered = g.decode(feats, base=x, base_feats=feats)
    g.decoder.to_warp = warp_head
    assert torch.allclose(out, 0.5 * x + 0.5 * rendered, atol=1e-5)  # zero-initialised flow and mask logit
    with pytest.raises(RegazeError, match="warps the image"):
        g.decode(feats)


def test_the_base_image_enters_only_through_the_sampling():
    """Flow and mask come from features alone, so the output is affine in the base image's pixels."""
    g = _small(decoder_mode="warp")
    with torch.no_grad():  # a non-trivial flow and mask
        g.decoder.to_warp.weight.normal_(0, 0.3)
        g.decoder.to_warp.bias.normal_(0, 0.3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = g.encode(x)
    b1, b2 = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    dec = lambda base: g.decode(feats, base=base, base_feats=feats)  # noqa: E731
    mixed = dec(0.3 * b1 + 0.7 * b2)
    assert torch.allclose(mixed, 0.3 * dec(b1) + 0.7 * dec(b2), atol=1e-5)
    assert not torch.allclose(dec(b1), dec(b2), atol=1e-3)  # ... and it does show the base


def test_pair_step_warps_the_image_whose_identity_it_decodes():
    """With the identity swap, X_a^T warps X_b: replacing X_b's pixels (features fixed) changes X_a^T only."""
    g = _small(decoder_mode="warp")
    pf = PairForward(g)
    b = 2
    x_a, x_b = torch.rand(b, 3, 32, 32) * 2 - 1, torch.rand(b, 3, 32, 32) * 2 - 1
    kw = dict(gaze_a=_angles(b, 1), head_a=_angles(b, 2), gaze_b=_angles(b, 3), head_b=_angles(b, 4),
              gaze_sel=torch.tensor([True, False]), head_sel=torch.tensor([False, True]))
    feats = g.encode(torch.cat([x_a, x_b]))
    g.encode = lambda x: feats  # the features stay those of the original images
    out1 = pf(x_a=x_a, x_b=x_b, **kw)
    out2 = pf(x_a=x_a, x_b=torch.zeros_like(x_b), **kw)
    assert not torch.allclose(out1["out_a"], out2["out_a"], atol=1e-4)
    assert torch.allclose(out1["out_b"], out2["out_b"], atol=1e-6)


@pytest.mark.parametrize("kw", [dict(decoder_mode="warp"), dict(decoder_mode="warp", decoder_full_res=4), dict(decoder_full_res=4),
                                dict(decoder_mode="warp", decoder_warp_refine=4),
                                dict(decoder_mode="warp", decoder_warp_upsample="convex")])
def test_gradients_reach_every_parameter(kw):
    g = _small(**kw)
    pf = PairForward(g, latent=True)
    b = 3
    batch = dict(x_a=torch.rand(b, 3, 32, 32) * 2 - 1, x_b=torch.rand(b, 3, 32, 32) * 2 - 1, gaze_a=_angles(b, 1),
                 head_a=_angles(b, 2), gaze_b=_angles(b, 3), head_b=_angles(b, 4))
    with torch.no_grad():  # a warm start for the zero-initialised warp head, so that gradients pass through it
        if g.decoder.to_warp is not None:
            g.decoder.to_warp.weight.normal_(0, 0.01)
        if g.decoder.refine is not None:
            g.decoder.refine[-1].weight.normal_(0, 0.01)
        if g.decoder.upsample_weights is not None:
            g.decoder.upsample_weights.weight.normal_(0, 0.01)
    out = pf(**batch, gaze_sel=torch.tensor([True, False, True]), head_sel=torch.tensor([False, True, True]),
             random_gaze=_angles(b, 5), random_head=_angles(b, 6))
    terms = generator_terms(out, batch, fake_logits=None)
    sum(terms.values()).backward()
    assert "out_random" in out and "latent" in out
    missing = [n for n, p in g.named_parameters() if p.grad is None]
    assert not missing, missing


def test_warp_refinement_starts_as_the_plain_warp_and_then_corrects_it():
    """Zero-initialised, the refined decoder is the plain one; once its last conv has weights, the output changes.
    The switch needs the warping decoder."""
    plain, refined = _small(decoder_mode="warp"), _small(decoder_mode="warp", decoder_warp_refine=4)
    refined.load_state_dict(plain.state_dict(), strict=False)  # the same weights outside the refinement
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        for g in (plain, refined):
            g.decoder.to_warp.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
        refined.decoder.to_warp.weight.copy_(plain.decoder.to_warp.weight)
        fp, fr = plain.encode(x), refined.encode(x)
        assert torch.allclose(plain.decode(fp, base=x, base_feats=fp), refined.decode(fr, base=x, base_feats=fr), atol=1e-6)
        refined.decoder.refine[-1].weight.normal_(0, 0.1)
        assert not torch.allclose(plain.decode(fp, base=x, base_feats=fp), refined.decode(fr, base=x, base_feats=fr), atol=1e-3)
    with pytest.raises(RegazeError, match="decoder_warp_refine"):
        ModelConfig(decoder_warp_refine=8)  # the patent's pure decoder has no warp to refine
    with pytest.raises(RegazeError, match="decoder_warp_refine"):
        ModelConfig(decoder_mode="warp", decoder_warp_refine=-1)


def test_convex_upsampling_is_the_3x3_mean_at_zero_weights_and_can_keep_a_step_edge():
    from regaze.model.decoder import convex_upsample

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6)
    zero = convex_upsample(x, weights=torch.zeros(2, 36, 5, 6))
    mean = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert zero.shape == (2, 3, 10, 12)
    assert torch.allclose(zero, torch.nn.functional.interpolate(mean, scale_factor=2.0, mode="nearest"), atol=1e-6)
    centre = torch.full((2, 9, 4, 5, 6), -30.0)
    centre[:, 4] = 30.0  # all weight on the pixel itself: nearest-neighbour upsampling
    assert torch.allclose(convex_upsample(x, weights=centre.view(2, 36, 5, 6)),
                          torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), atol=1e-6)
    # a step between columns 2 and 3 of the coarse grid: bilinear ramps it over two full-resolution pixels,
    # convex weights that look left on the left half and right on the right half keep it a step
    step = torch.zeros(1, 1, 4, 6)
    step[..., 3:] = 1.0
    w = torch.full((1, 9, 2, 2, 4, 6), -30.0)  # (neighbour k, sub-row i, sub-column j, y, x)
    w[:, 4] = 30.0
    w[:, 4, :, 1, :, 2], w[:, 3, :, 1, :, 2] = -30.0, 30.0  # sub-column 1 of coarse column 2 takes its left neighbour
    up = convex_upsample(step, weights=w.view(1, 36, 4, 6))
    assert torch.equal(up[0, 0, 0].round(), torch.tensor([0.0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]))
    bilinear = torch.nn.functional.interpolate(step, scale_factor=2.0, mode="bilinear", align_corners=False)
    assert 0.0 < bilinear[0, 0, 0, 5] < 1.0 and 0.0 < bilinear[0, 0, 0, 6] < 1.0
    with pytest.raises(RegazeError, match="decoder_warp_upsample"):
        ModelConfig(decoder_warp_upsample="convex")  # the pure decoder has no warp
    with pytest.raises(RegazeError, match="decoder_warp_upsample"):
        ModelConfig(decoder_mode="warp", decoder_warp_upsample="nearest")


# ------------------------------------------------------------------------------------------ losses
def test_latent_consistency_is_zero_exactly_when_consistent():
    z = torch.randn(4, 8, 3)
    zid = torch.randn(4, 16, 3)
    ang = _angles(4, 0)
    consistent = dict(rotated={"gaze": z, "head": z}, own={"gaze": z.clone(), "head": z.clone()}, z_id_a=zid,
                      z_id_b=zid.clone(), rotated_est={"gaze": ang, "head": ang}, target_angles={"gaze": ang, "head": ang})
    assert float(losses.latent_consistency_loss(**consistent)) < 1e-4
    for change in ({"z_id_b": zid + 0.1}, {"own": {"gaze": z + 0.1, "head": z}},
                   {"rotated_est": {"gaze": ang + 0.1, "head": ang}}):
        assert float(losses.latent_consistency_loss(**{**consistent, **change})) > 1e-3


def test_redirection_loss_is_the_angle_between_read_and_requested_directions():
    target = torch.zeros(1, 2)
    read = torch.tensor([[0.0, math.radians(10.0)]])  # 10 deg of yaw off
    loss = losses.redirection_loss(gaze_read=read, head_read=target, gaze_target=target, head_target=target)
    assert float(loss) == pytest.approx(math.radians(10.0), rel=1e-4)


def test_guide_weights_need_a_guide_estimator():
    with pytest.raises(RegazeError, match="guide_estimator"):
        config_from_dict(TrainConfig, {"loss": {"guide": 0.1}})
    with pytest.raises(RegazeError, match="decoder_mode"):
        ModelConfig(decoder_mode="flow")
    with pytest.raises(RegazeError, match="gan_start_step"):
        config_from_dict(TrainConfig, {"gan_start_step": -1})


# ------------------------------------------------------------------------------------------ training
def _fake_guide(tmp_path, *, train_subjects, data):
    """A small estimator checkpoint with a stated (not measured) validation record: wiring only."""
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
    from regaze.evaluation.estimator.store import save_estimator

    torch.manual_seed(1)
    est = GazeHeadEstimator(EstimatorConfig(image_size=32, width=4, hidden=16, embed_dim=8, n_subjects=4, eye_width=4))
    save_estimator(tmp_path, model=est, record={"val": {"gaze_err_deg": 1.0, "head_err_deg": 1.0},
                                                "train_subjects": train_subjects}, data=str(data))
    return tmp_path


def test_a_guide_that_saw_held_out_subjects_is_refused(tmp_path):
    from train_fixtures import write_tiny_dataset

    from regaze.evaluation.estimator.store import load_guide_estimator

    data = write_tiny_dataset(tmp_path / "tiny.h5")
    ok = _fake_guide(tmp_path / "ok", train_subjects=[0, 1, 2, 3], data=data)
    load_guide_estimator(ok, data=data, image_size=32)
    bad = _fake_guide(tmp_path / "bad", train_subjects=[0, 1, 2, 3, 5], data=data)  # 5 is the test subject
    with pytest.raises(RegazeError, match=r"subjects \[5\]"):
        load_guide_estimator(bad, data=data, image_size=32)


@pytest.mark.isolated(timeout=300)
def test_training_with_every_lever_runs_resumes_and_loads(tmp_path):
    from train_fixtures import write_tiny_dataset

    from regaze.evaluation.estimator.store import load_guide_estimator
    from regaze.model.pretrained import load_redirector
    from regaze.training.loop import train

    data = write_tiny_dataset(tmp_path / "tiny.h5")
    guide_dir = _fake_guide(tmp_path / "guide", train_subjects=[0, 1, 2, 3], data=data)
    guide, _ = load_guide_estimator(guide_dir, data=data, image_size=32)
    cfg = {"model": {**SMALL, "decoder_mode": "warp", "decoder_full_res": 4, "disc_channel_max": 32},
           "loss": {"latent": 0.1, "guide": 0.1, "guide_random": 0.1, "gen": 0.05}, "gan_start_step": 3,
           "guide_estimator": str(guide_dir), "batch_size": 4, "log_every": 2, "val_every": 100, "ckpt_every": 3,
           "val_pairs": 4, "threads": 1, "max_steps": 4}
    run = tmp_path / "run"
    with pytest.raises(RegazeError, match="guide"):
        train(config_from_dict(TrainConfig, cfg), data=data, out=run, progress=False)  # the caller must load it
    train(config_from_dict(TrainConfig, cfg), data=data, out=run, progress=False, guide=guide)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    logged = [s for s in stats if "rec" in s]
    assert all(math.isfinite(s[k]) for s in logged for k in ("latent", "guide", "guide_random"))
    assert "disc" not in logged[0] and "disc" in logged[-1]  # the D step begins at gan_start_step
    train(config_from_dict(TrainConfig, {**cfg, "max_steps": 6}), data=data, out=run, progress=False, guide=guide, resume=True)
    model, info = load_redirector(run, which="latest")
    assert info["step"] == 6 and model.decoder.mode == "warp"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out, _ = model.redirect(x, head=torch.zeros(2), compose="decode")
    assert out.shape == x.shape and torch.isfinite(out).all()

    from regaze.evaluation.protocol import evaluate_run

    with pytest.raises(RegazeError, match="training-time estimator of this run"):  # never measured by its own guide
        evaluate_run(run=run, data=data, estimator=guide_dir, n_pairs=4, progress=False)
