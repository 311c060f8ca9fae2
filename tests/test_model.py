"""The redirection model: shapes, gradients, determinism, the redirect() boundary, config round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from regaze.config import ModelConfig, config_from_dict, config_to_dict
from regaze.errors import RegazeError
from regaze.model import Discriminator, Features, Redirector

SMALL = dict(k=16, channel_base=512, channel_max=64, flat_channels=8, estimator_hidden=16)


def _images(b: int, s: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # (B, 3, S, S)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return Redirector(ModelConfig(image_size=64, **SMALL)).eval()


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_with_default_widths(size):
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=size)
    g, d = Redirector(cfg), Discriminator(**cfg.discriminator_kwargs())
    with torch.no_grad():
        feats = g.encode(_images(2, size))
        out = g.decode(feats)
        logits = d(out)
    k = cfg.k
    assert feats.z_id.shape == (2, 2 * k, 3) and feats.z_gaze.shape == (2, k, 3) and feats.z_head.shape == (2, k, 3)
    assert feats.z_id.numel() == feats.z_gaze.numel() + feats.z_head.numel()  # L_ort's element-wise products
    assert feats.gaze_est.shape == (2, 2) and feats.head_est.shape == (2, 2)
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1.0
    assert logits.shape == (2, 1, size // 8, size // 8)


def test_224_and_no_batchnorm_in_generator():
    g = Redirector(ModelConfig(image_size=224, **SMALL))
    with torch.no_grad():
        assert g(_images(1, 224)).shape == (1, 3, 224, 224)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in g.modules())


def test_rms_features_have_unit_rms(small):
    with torch.no_grad():
        feats = small.encode(_images(3, 64))
    for z in (feats.z_id, feats.z_gaze, feats.z_head):
        torch.testing.assert_close(z.pow(2).mean(dim=(1, 2)).sqrt(), torch.ones(3), atol=1e-4, rtol=0)


def test_every_generator_parameter_gets_a_gradient():
    torch.manual_seed(0)
    g = Redirector(ModelConfig(image_size=64))  # default widths
    feats = g.encode(_images(2, 64))
    out = g.decode(feats)
    loss = out.square().mean() + feats.gaze_est.square().mean() + feats.head_est.square().mean()
    loss.backward()
    dead = [n for n, p in g.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, f"parameters without gradient: {dead}"


def test_discriminator_parameters_get_gradients():
    cfg = ModelConfig(image_size=64, **SMALL)
    d = Discriminator(**cfg.discriminator_kwargs())
    d(_images(2, 64)).mean().backward()
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in d.parameters())


def test_eval_mode_is_deterministic(small):
    x = _images(2, 64)
    with torch.no_grad():
        assert torch.equal(small(x), small(x))


def test_redirect_numpy_and_tensor_inputs(small):
    u8 = (np.random.default_rng(0).random((2, 64, 64, 3)) * 255).astype(np.uint8)
    out, src = small.redirect(u8, gaze=(0.1, -0.2))
    assert out.dtype == np.uint8 and out.shape == (2, 64, 64, 3)
    assert isinstance(src["gaze"], torch.Tensor) and src["gaze"].shape == (2, 2) and src["head"].shape == (2, 2)
    single, single_src = small.redirect(u8[0], head=np.array([0.0, 0.3]))
    assert single.shape == (64, 64, 3) and single_src["head"].shape == (2,)
    np.testing.assert_array_equal(single, small.redirect(u8[:1], head=np.array([0.0, 0.3]))[0][0])
    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    t_out, t_src = small.redirect(x, gaze=torch.tensor([[0.1, -0.2], [0.0, 0.0]]))
    assert isinstance(t_out, torch.Tensor) and t_out.shape == (2, 3, 64, 64)
    with torch.no_grad():
        feats = small.encode(x)
    torch.testing.assert_close(t_src["gaze"], feats.gaze_est)  # no source given: the estimators' reading


def test_redirect_equals_rotating_both_features(small):
    x = _images(2, 64)
    sg, sh = torch.tensor([[0.1, 0.2], [-0.1, 0.0]]), torch.tensor([[0.0, -0.3], [0.2, 0.1]])
    tg, th = torch.tensor([0.3, -0.4]), torch.tensor([-0.2, 0.5])
    out, src = small.redirect(x, gaze=tg, head=th, source_gaze=sg, source_head=sh)
    assert torch.equal(src["gaze"], sg) and torch.equal(src["head"], sh)
    with torch.no_grad():
        feats = small.separation.rotate_features(
            small.encode(x), source_gaze=sg, source_head=sh, target_gaze=tg.expand(2, 2), target_head=th.expand(2, 2)
        )
        expected = small.decode(feats)
    assert torch.equal(out, expected)
    keep, _ = small.redirect(x, source_gaze=sg, source_head=sh)  # no target: plain reconstruction
    with torch.no_grad():
        assert torch.equal(keep, small(x))


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((2, 64, 64, 4), np.uint8), r"\(64, 64, 3\)"),
        (np.zeros((2, 3, 64, 64), np.uint8), r"\(64, 64, 3\)"),
        (np.zeros((2, 32, 32, 3), np.uint8), r"\(64, 64, 3\)"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "float"),
        (torch.zeros(2, 64, 64, 3), r"\(B, 3, 64, 64\)"),
        (torch.full((1, 3, 64, 64), 2.0), r"\[-1, 1\]"),
        (torch.full((1, 3, 64, 64), float("nan")), "finite"),
        ([[0.0]], "NumPy array or a float torch tensor"),
    ],
)
def test_redirect_rejects_bad_images(small, images, match):
    with pytest.raises(RegazeError, match=match):
        small.redirect(images, gaze=(0.0, 0.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gaze=(0.0, 0.1, 0.2)), r"shape \(2,\) or \(2, 2\)"),
        (dict(head=np.zeros((3, 2))), r"shape \(2,\) or \(2, 2\)"),
        (dict(gaze=(0.0, 30.0)), "radians, not degrees"),
        (dict(gaze=(2.0, 0.0)), r"pitch must be in \[-pi/2, pi/2\]"),
        (dict(source_head=(float("nan"), 0.0)), "NaN"),
        (dict(gaze="left"), "pitch, yaw"),
    ],
)
def test_redirect_rejects_bad_angles(small, kwargs, match):
    with pytest.raises(RegazeError, match=match):
        small.redirect(_images(2, 64), **kwargs)


def test_redirect_accepts_the_range_limits(small):
    out, _ = small.redirect(_images(2, 64), gaze=(math.pi / 2, -math.pi), head=(-math.pi / 2, math.pi))
    assert torch.isfinite(out).all()


def test_config_round_trip_and_errors():
    cfg = ModelConfig(image_size=64, k=32, encoder_blocks=(2, 0, 1))
    d = config_to_dict(cfg)
    assert d["encoder_blocks"] == [2, 0, 1]  # JSON-friendly
    assert config_from_dict(ModelConfig, d) == cfg == ModelConfig.from_dict(cfg.to_dict())
    assert config_from_dict(ModelConfig, {}) == ModelConfig()
    with pytest.raises(RegazeError, match="unknown field.*'kk'"):
        config_from_dict(ModelConfig, {"kk": 3})
    with pytest.raises(RegazeError, match="integer"):
        config_from_dict(ModelConfig, {"k": "many"})
    with pytest.raises(RegazeError, match="multiple of 16"):
        ModelConfig(image_size=100)
    with pytest.raises(RegazeError, match="z_norm"):
        ModelConfig(z_norm="l2")


def test_state_dict_round_trip_is_exact(small):
    other = Redirector(small.config).eval()
    other.load_state_dict(small.state_dict())
    x = _images(1, 64)
    with torch.no_grad():
        assert torch.equal(other(x), small(x))
    assert isinstance(small.encode(x), Features)


def test_model_summary_cli(capsys):
    from regaze.cli import main

    assert main(["model", "summary", "--size", "64", "--k", "16", "--batch", "2", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "encoder" in text and "discriminator" in text and "images/s" in text and "GFLOPs/image" in text


def test_gaze_only_redirect_pastes_decoded_eyes_into_the_source(small):
    from regaze.model.framing import eye_mask

    x = _images(2, 64, seed=3)
    sg, sh = torch.tensor([[0.1, 0.2], [-0.1, 0.0]]), torch.tensor([[0.0, -0.3], [0.2, 0.1]])
    tg = torch.tensor([[0.3, -0.4], [0.0, 0.4]])
    decoded, _ = small.redirect(x, gaze=tg, source_gaze=sg, source_head=sh, compose="decode")
    pasted, _ = small.redirect(x, gaze=tg, source_gaze=sg, source_head=sh)  # auto: gaze-only -> eyes
    mask = eye_mask(sh, size=64, framing=small.framing)  # (2, 1, 64, 64)
    torch.testing.assert_close(pasted, x + mask * (decoded - x))
    far, near = (mask < 1e-4).expand_as(x), (mask > 0.9).expand_as(x)
    assert far.float().mean() > 0.5 and near.any()
    assert (pasted - x).abs()[far].max() < 1e-3  # nothing moves away from the eyes
    assert (pasted - decoded).abs()[near].mean() < 0.2 * (x - decoded).abs()[near].mean()  # the decoder at the eyes
    # a head change (or an explicit "decode") gives the decoder's image for that sample only
    th = torch.stack([sh[0], sh[1] + 0.3])  # sample 0 keeps its head, sample 1 turns
    mixed, _ = small.redirect(x, gaze=tg, head=th, source_gaze=sg, source_head=sh)
    both, _ = small.redirect(x, gaze=tg, head=th, source_gaze=sg, source_head=sh, compose="decode")
    torch.testing.assert_close(mixed[0], pasted[0])
    assert torch.equal(mixed[1], both[1])
    with pytest.raises(RegazeError, match="compose"):
        small.redirect(x, gaze=tg, compose="blend")
