"""The independent estimator: shapes, label-exact augmentation, splits, checkpoint round trip, and the
refusal of missing, mismatched, unvalidated and random-weights checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from regaze.checkpoint import save_checkpoint
from regaze.cli import main as cli_main
from regaze.data.dataset import open_dataset
from regaze.errors import RegazeError
from regaze.data.synth.camera import head_rotation
from regaze.evaluation.estimator.network import (EstimatorConfig, GazeHeadEstimator, estimate, estimator_framing,
                                                 eye_crop_shape, eye_crops)
from regaze.geometry import gaze_in_camera, gaze_in_head, head_to_camera, pitchyaw_to_vector
from regaze.evaluation.estimator.store import load_estimator, save_estimator
from regaze.model.framing import eye_centres_px
from regaze.evaluation.estimator.trainer import (EstimatorTrainConfig, ImageBank, LabelledImages, _augment,
                                                  estimator_splits, validate_estimator)
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import TOY_MAX_VAL_ERROR_DEG, TOY_SPLIT, toy_setup, write_toy_dataset

TINY = EstimatorConfig(width=4, hidden=16, embed_dim=8, n_subjects=3, eye_width=4)
SYNTH64 = EstimatorConfig(image_size=64, focal_px=640.0 * 64 / 224, distance_mm=600.0)  # the renderer's camera


@pytest.mark.parametrize("size", [32, 64, 128])
def test_forward_shapes_and_unit_embedding(size):
    model = GazeHeadEstimator(EstimatorConfig(**{**TINY.__dict__, "image_size": size})).eval()
    out = model(torch.rand(2, 3, size, size) * 2 - 1)
    assert out["gaze"].shape == (2, 2) and out["head"].shape == (2, 2) and out["embedding"].shape == (2, 8)
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(2), atol=1e-5)
    assert model.subject_logits(out["embedding"], scale=16.0).shape == (2, 3)


def test_head_rotation_is_the_renderers_and_head_relative_gaze_round_trips():
    rng = np.random.default_rng(0)
    head = rng.uniform(-0.8, 0.8, (50, 2))  # (50, 2) rad
    gaze = head + rng.uniform(-0.5, 0.5, (50, 2))
    m = head_to_camera(torch.from_numpy(head))  # (50, 3, 3)
    assert np.allclose(m.numpy(), head_rotation(head), atol=1e-12)
    g_head = gaze_in_head(torch.from_numpy(gaze), torch.from_numpy(head))
    assert torch.allclose(gaze_in_camera(g_head, torch.from_numpy(head)), torch.from_numpy(gaze), atol=1e-9)
    # looking where the face points is (0, 0) in head coordinates, whatever the head pose
    assert torch.allclose(gaze_in_head(torch.from_numpy(head), torch.from_numpy(head)), torch.zeros(50, 2, dtype=torch.float64), atol=1e-9)
    # a mirror negates yaw in both frames, so flipped labels stay consistent
    mirror = torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert torch.allclose(gaze_in_head(torch.from_numpy(gaze) * mirror, torch.from_numpy(head) * mirror),
                          g_head * mirror, atol=1e-9)


def test_forward_composes_camera_gaze_from_head_relative_gaze():
    model = GazeHeadEstimator(TINY).eval()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    out = model(x)
    assert torch.allclose(out["gaze"], gaze_in_camera(out["gaze_head"], out["head"]), atol=1e-6)
    # at inference the crops are placed by the predicted head
    placed = model(x, crop_head=out["head"])
    assert torch.allclose(placed["gaze_head"], out["gaze_head"], atol=1e-5)
    whole_face = GazeHeadEstimator(EstimatorConfig(**{**TINY.__dict__, "eye_width": 0})).eval()
    assert not hasattr(whole_face, "eyes") and whole_face(x)["gaze"].shape == (4, 2)
    assert set(estimate(model, torch.zeros(2, 3, 64, 64))) == {"gaze", "head", "embedding"}


def test_eye_crops_are_centred_on_the_eyes_at_twice_the_pixel_density():
    shape = eye_crop_shape(SYNTH64)
    assert shape == (17, 27)  # 28 x 44 mm at 2 x 0.305 px/mm
    head = torch.tensor([[0.2, -0.5], [-0.3, 0.7]])  # (2, 2) rad
    centres = eye_centres_px(head, size=64, framing=estimator_framing(SYNTH64))  # (2, 2 eyes, 2)
    x = torch.full((2, 3, 64, 64), -1.0)
    for b in range(2):
        for e in range(2):  # a bright pixel at each eye centre
            cx, cy = centres[b, e].floor().long().tolist()
            x[b, :, cy, cx] = 1.0
    crops = eye_crops(x, head, framing=estimator_framing(SYNTH64), shape=shape)  # (4, 3, 17, 27)
    assert crops.shape == (4, 3, 17, 27)
    for k in range(4):
        bright = (crops[k, 0] > -0.9).nonzero().float().mean(dim=0)  # (row, col) of the bright spot
        assert torch.allclose(bright, torch.tensor([8.0, 13.0]), atol=1.6), (k, bright)


def test_eye_crops_swap_under_a_mirror_with_yaw_negated():
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    head = torch.tensor([[0.1, 0.4], [-0.2, -0.6], [0.0, 0.0]])
    kw = dict(framing=estimator_framing(SYNTH64), shape=eye_crop_shape(SYNTH64))
    a = eye_crops(x, head, **kw)  # (6, ...): eye 1 of the 3 images, then eye 2 mirrored
    b = eye_crops(x.flip(-1), head * torch.tensor([1.0, -1.0]), **kw)
    assert torch.allclose(b[:3], a[3:], atol=1e-5) and torch.allclose(b[3:], a[:3], atol=1e-5)


def test_augmentation_flip_mirrors_pixels_and_negates_yaw_only():
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    gaze, head = torch.rand(64, 2) - 0.5, torch.rand(64, 2) - 0.5
    cfg = EstimatorTrainConfig(brightness=0, contrast=0, channel_gain=0, noise_std=0, hflip=True)
    y, g, h = _augment(x, gaze, head, cfg=cfg, generator=torch.Generator().manual_seed(0))
    flipped = g[:, 1] != gaze[:, 1]
    assert 10 < int(flipped.sum()) < 54  # about half
    assert torch.equal(g[:, 0], gaze[:, 0]) and torch.equal(h[:, 0], head[:, 0])  # pitch never changes
    assert torch.allclose(g[flipped, 1], -gaze[flipped, 1]) and torch.allclose(h[flipped, 1], -head[flipped, 1])
    assert torch.allclose(y[flipped], x[flipped].flip(-1), atol=1e-6)
    assert torch.allclose(y[~flipped], x[~flipped], atol=1e-6)
    # photometric changes alter pixels, never labels
    y2, g2, h2 = _augment(x, gaze, head, cfg=EstimatorTrainConfig(hflip=False), generator=torch.Generator())
    assert torch.equal(g2, gaze) and torch.equal(h2, head) and not torch.allclose(y2, x)
    assert y2.min() >= -1 and y2.max() <= 1


def test_augmentation_turn_keeps_the_angle_between_gaze_and_head_and_is_off_by_default():
    x = torch.rand(16, 3, 32, 32) * 2 - 1
    gaze, head = torch.rand(16, 2) - 0.5, torch.rand(16, 2) - 0.5
    flat = dict(brightness=0, contrast=0, channel_gain=0, noise_std=0, hflip=False)
    y, g, h = _augment(x, gaze, head, cfg=EstimatorTrainConfig(**flat), generator=torch.Generator().manual_seed(0))
    assert torch.equal(g, gaze) and torch.equal(h, head) and torch.allclose(y, x, atol=1e-6)  # the defaults: no turn
    cfg = EstimatorTrainConfig(**flat, roll_deg=15, tilt_deg=4, zoom=0.1)
    y, g, h = _augment(x, gaze, head, cfg=cfg, generator=torch.Generator().manual_seed(0), focal_px=90.0)
    vec = lambda a: pitchyaw_to_vector(a)  # noqa: E731
    turned = torch.rad2deg(torch.arccos((vec(h) * vec(head)).sum(-1).clamp(-1, 1)))  # (16,) how far each head turned
    assert turned.max() > 2.0 and turned.max() < 16.0
    assert torch.allclose((vec(g) * vec(h)).sum(-1), (vec(gaze) * vec(head)).sum(-1), atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)


def test_image_bank_in_memory_and_lazy_agree(tmp_path):
    ds = open_dataset(write_toy_dataset(tmp_path / "t.h5", subjects=2, per_session=3, sessions=1))
    idx = np.array([5, 0, 3])
    eager, lazy = ImageBank.from_dataset(ds, idx), ImageBank.from_dataset(ds, idx, cache_mb=0)
    both = ImageBank(eager.parts() + lazy.parts())
    assert np.array_equal(eager.get([2, 0]), ds.read_images([3, 5]))
    assert np.array_equal(lazy.get([2, 0]), ds.read_images([3, 5]))
    assert len(both) == 6 and np.array_equal(both.get([1, 4]), ds.read_images([0, 0]))


def test_splits_use_val_split_and_never_the_test_split(tmp_path):
    ds = open_dataset(write_toy_dataset(tmp_path / "s.h5", subjects=16, per_session=2, sessions=1, split=TOY_SPLIT))
    tr, va, rule = estimator_splits(ds)
    assert set(ds.subject[tr]) == set(TOY_SPLIT["train"]) and set(ds.subject[va]) == set(TOY_SPLIT["val"])
    assert "val split" in rule
    nosplit = open_dataset(write_toy_dataset(tmp_path / "n.h5", subjects=10, per_session=2, sessions=1))
    tr, va, rule = estimator_splits(nosplit, val_fraction=0.2, seed=3)
    assert len(np.unique(nosplit.subject[va])) == 2 and not set(nosplit.subject[tr]) & set(nosplit.subject[va])
    one = open_dataset(write_toy_dataset(tmp_path / "o.h5", subjects=1, per_session=4, sessions=1))
    with pytest.raises(RegazeError, match="held-out subjects"):
        estimator_splits(one)


def test_save_load_round_trip_is_exact(tmp_path):
    model = GazeHeadEstimator(TINY).eval()
    save_estimator(tmp_path / "e", model=model, record={"val": {"gaze_err_deg": 1.0, "head_err_deg": 1.0}})
    loaded, info = load_estimator(tmp_path / "e")
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    a, b = estimate(model, x), estimate(loaded, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not info["untrained"] and json.loads((tmp_path / "e" / "estimator.json").read_text())["val"]["gaze_err_deg"] == 1.0
    with pytest.raises(RegazeError, match="trained on 64"):
        load_estimator(tmp_path / "e", image_size=128)


def test_load_refuses_missing_foreign_and_mismatched_checkpoints(tmp_path):
    with pytest.raises(RegazeError, match="no estimator checkpoint"):
        load_estimator(tmp_path / "nothing")
    save_checkpoint(tmp_path / "run.pt", {"format": "something-else", "config": {}, "model": {}})
    with pytest.raises(RegazeError, match="not an estimator checkpoint"):
        load_estimator(tmp_path / "run.pt")
    save_estimator(tmp_path / "e", model=GazeHeadEstimator(TINY), record={"val": {"gaze_err_deg": 1.0, "head_err_deg": 1.0}})
    state = torch.load(tmp_path / "e" / "estimator.pt", weights_only=True)
    state["config"]["width"] = 8  # weights of width 4 under a width-8 config
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(RegazeError, match="do not fit"):
        load_estimator(tmp_path / "bad.pt")
    state = torch.load(tmp_path / "e" / "estimator.pt", weights_only=True)
    for old in (1, 2):  # 1: camera-frame gaze outputs; 2: whole face only
        state["format_version"] = old
        save_checkpoint(tmp_path / f"v{old}.pt", state)
        with pytest.raises(RegazeError, match="retrain"):
            load_estimator(tmp_path / f"v{old}.pt", allow_untrained=True)


def test_random_weights_are_refused_unless_allowed_and_then_flagged(tmp_path):
    data, _ = toy_setup()
    ds = open_dataset(data)
    torch.manual_seed(0)
    random_model = GazeHeadEstimator(EstimatorConfig(image_size=32, width=8, hidden=64, embed_dim=16))
    val = validate_estimator(random_model, LabelledImages.from_dataset(ds, ds.split_indices("val")))
    assert val["gaze_err_deg"] > 10 or val["head_err_deg"] > 10  # random weights are far from the labels
    save_estimator(tmp_path / "measured", model=random_model, record={"val": val})
    save_estimator(tmp_path / "unmeasured", model=random_model, record=None)
    with pytest.raises(RegazeError, match="exceeds max_val_error_deg"):
        load_estimator(tmp_path / "measured")
    with pytest.raises(RegazeError, match="records no validation error"):
        load_estimator(tmp_path / "unmeasured")
    _, info = load_estimator(tmp_path / "unmeasured", allow_untrained=True)
    assert info["untrained"] and "no validation error" in info["flag"]


def test_trained_toy_estimator_beats_chance_and_loads():
    data, est_dir = toy_setup()
    model, info = load_estimator(est_dir, image_size=32, max_val_error_deg=TOY_MAX_VAL_ERROR_DEG)
    val = info["val"]
    assert val["gaze_err_deg"] < TOY_MAX_VAL_ERROR_DEG and val["head_err_deg"] < 8, val  # chance is ~22°
    ds = open_dataset(data)
    test = validate_estimator(model, LabelledImages.from_dataset(ds, ds.split_indices("test")))
    assert test["head_err_deg"] < 10 and test["n_subjects"] == 4


@pytest.mark.isolated(timeout=120)
def test_cli_train_and_show(tmp_path, capsys):
    data = write_toy_dataset(tmp_path / "c.h5", subjects=16, per_session=3, sessions=1, split=TOY_SPLIT)
    rc = cli_main(["estimator", "train", "--data", str(data), "--out", str(tmp_path / "est"), "--epochs", "1",
                   "--width", "4", "--quiet"])
    assert rc == 0 and (tmp_path / "est" / "estimator.pt").is_file()
    summary = json.loads((tmp_path / "est" / "estimator.json").read_text())
    assert summary["val"]["n_subjects"] == 2 and summary["train_images"] == 30
    assert summary["config"]["focal_px"] > 0 and summary["config"]["distance_mm"] > 0  # the file's framing stored
    assert cli_main(["estimator", "show", str(tmp_path / "est")]) == 1  # one epoch: flagged as unusable
    assert "NOT USABLE" in capsys.readouterr().out
    assert cli_main(["estimator", "train", "--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x")]) == 1


@pytest.mark.parametrize("flag,value,message", [("--crop-head-noise", "nan", "finite"), ("--lr", "inf", "finite"),
                                                ("--lr", "0", "--lr must be > 0"), ("--eye-width", "-1", "eye-width")])
def test_cli_train_refuses_bad_numbers_and_writes_nothing(tmp_path, capsys, flag, value, message):
    data = write_toy_dataset(tmp_path / "c.h5", subjects=16, per_session=3, sessions=1, split=TOY_SPLIT)
    out = tmp_path / "est"
    assert cli_main(["estimator", "train", "--data", str(data), "--out", str(out), flag, value, "--quiet"]) == 1
    assert message in capsys.readouterr().err and not out.exists()
