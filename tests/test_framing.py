"""The eye-region weights of the reconstruction loss: they must sit on the eyes of real renders; the framing
of every file format puts the mean face's eyes where that format's camera does."""
import numpy as np
import pytest
import torch

from data_fixtures import write_ethxgaze, write_regaze_file, write_sted
from regaze.data.convert import convert_to_regaze
from regaze.data.dataset import open_dataset
from regaze.data.readers.cameras import ETH_XGAZE, STED
from regaze.errors import RegazeError
from regaze.geometry import head_to_camera

from regaze.training import losses
from regaze.data.synth.camera import CAMERA_DISTANCE_MM, focal_px, project
from regaze.data.synth.face_model import landmarks_cam
from regaze.data.synth.params import sample_identities
from regaze.model.framing import MEAN_EYES_HEAD_MM, Framing, eye_centres_px, eye_weight_map, framing_from_attrs

SYNTH_128 = Framing(focal_px=focal_px(128), distance_mm=CAMERA_DISTANCE_MM)


def _synthetic_eye_centres(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random identities and head poses over the whole range -> (head (n, 2) rad, eye-corner centres (n, 2, 2) px at 128²)."""
    rng = np.random.default_rng(seed)
    identity = sample_identities(n, rng)
    head = np.radians(np.stack([rng.uniform(-30, 30, n), rng.uniform(-45, 45, n)], 1))
    corners = landmarks_cam(identity, head_pitchyaw_rad=head)["eye_corners"]  # (n, 4, 3) mm
    centres = np.stack([corners[:, :2].mean(1), corners[:, 2:].mean(1)], 1)  # (n, 2, 3)
    return head, project(centres, 128)


def test_mean_face_eyes_land_on_the_rendered_eyes():
    head, truth = _synthetic_eye_centres(300, seed=1)
    pred = eye_centres_px(torch.from_numpy(head).float(), size=128, framing=SYNTH_128).numpy()  # (n, 2, 2)
    err = np.linalg.norm(pred - truth, axis=-1)
    # 1 px is 1.6 mm here; an eye is ~25 mm wide (40 px), the blob sigma 8 mm (13 px)
    assert err.mean() < 3.0 and err.max() < 7.0, (err.mean(), err.max())


def test_weight_map_peaks_on_the_eyes_and_is_one_elsewhere():
    head, truth = _synthetic_eye_centres(16, seed=2)
    w = eye_weight_map(torch.from_numpy(head).float(), size=128, framing=SYNTH_128, weight=10.0)
    assert w.shape == (16, 1, 128, 128) and w.dtype == torch.float32
    assert float(w.min()) >= 1.0 and float(w.max()) <= 10.0 + 1e-5
    cols, rows = np.clip(truth[..., 0].astype(int), 0, 127), np.clip(truth[..., 1].astype(int), 0, 127)  # (16, 2)
    at_eyes = w[np.arange(16)[:, None], 0, rows, cols]  # (16, 2)
    assert float(at_eyes.min()) > 5.0
    assert float(w[:, 0, -8:, :].max()) < 1.01  # the chin rows never carry eye weight


def test_weighted_reconstruction_loss_counts_errors_on_the_eyes_more():
    head = torch.zeros(1, 2)
    w = eye_weight_map(head, size=64, framing=framing_from_attrs({}, size=64), weight=10.0)
    target = torch.zeros(1, 3, 64, 64)
    cx, cy = (int(v) for v in eye_centres_px(head, size=64, framing=framing_from_attrs({}, size=64))[0, 0])
    on_eye, off_eye = target.clone(), target.clone()
    on_eye[..., cy, cx] = 1.0
    off_eye[..., 60, 2] = 1.0
    plain = losses.reconstruction_loss(output=on_eye, target=target)
    assert torch.isclose(losses.reconstruction_loss(output=on_eye, target=target, weight=torch.ones_like(w)), plain)
    assert losses.reconstruction_loss(output=on_eye, target=target, weight=w) > 5 * losses.reconstruction_loss(
        output=off_eye, target=target, weight=w)


def test_framing_comes_from_the_file_or_defaults_to_eth_xgaze():
    assert framing_from_attrs({"camera_focal_px": 182.0, "camera_distance_mm": 600.0}, size=64) == Framing(182.0, 600.0)
    assert framing_from_attrs({}, size=224) == Framing(960.0, 600.0)


# ------------------------------------------------------------------ issue 12, item 15: the framing of each format
def _projected_eyes(head: np.ndarray, *, size: int, focal_at_crop: float, crop: int, distance_mm: float) -> np.ndarray:
    """The mean face's eye centres through a pinhole camera of focal f·size/crop px at distance_mm -> (n, 2, 2) px,
    with the head rotation of geometry.head_to_camera (NumPy; not the framing module's own)."""
    cam = np.einsum("nij,ej->nei", head_to_camera(head.astype(np.float64)), np.array(MEAN_EYES_HEAD_MM))  # (n, 2, 3)
    cam[..., 2] += distance_mm
    return focal_at_crop * size / crop * cam[..., :2] / cam[..., 2:] + size / 2.0


def _framing_eyes(ds, head: np.ndarray) -> np.ndarray:
    framing = framing_from_attrs(ds.attrs, size=ds.size)
    return eye_centres_px(torch.from_numpy(head).float(), size=ds.size, framing=framing).numpy()


def test_eye_centres_match_each_formats_camera(tmp_path):
    """Each reader, and each converted file, records its format's normalization; the eye centres it implies are
    where that format's camera puts the eyes (ETH-XGaze f 960 px at 224, ST-ED/GazeCapture f 500 px at 128)."""

    head = np.radians(np.stack([np.linspace(-25, 25, 9), np.linspace(40, -40, 9)], 1))  # (9, 2)
    eth, sted = (960.0, 224, 600.0), (500.0, 128, 600.0)  # (focal at crop, crop, distance)
    write_sted(tmp_path / "gc.h5", size=128, counts={"p00": 2, "p01": 2})
    write_ethxgaze(tmp_path / "xgaze", size=224, counts={0: 2})
    convert_to_regaze(tmp_path / "gc.h5", tmp_path / "gc64.h5", size=64, progress=False)
    convert_to_regaze(tmp_path / "xgaze", tmp_path / "xg32.h5", size=32, progress=False)
    convert_to_regaze(tmp_path / "gc64.h5", tmp_path / "gc32.h5", size=32, progress=False)  # twice converted
    write_regaze_file(tmp_path / "old_sted.h5", size=16, attrs={"source_layout": "sted"})  # converted before framing
    cases = {"gc.h5": (128, sted), "xgaze": (224, eth), "gc64.h5": (64, sted), "xg32.h5": (32, eth),
             "gc32.h5": (32, sted), "old_sted.h5": (16, sted)}
    for name, (size, (focal, crop, distance)) in cases.items():
        ds = open_dataset(tmp_path / name)
        assert ds.size == size
        expected = _projected_eyes(head, size=size, focal_at_crop=focal, crop=crop, distance_mm=distance)
        np.testing.assert_allclose(_framing_eyes(ds, head), expected, atol=1e-3, err_msg=name)
        assert ds.attrs["camera_framing"].startswith("ST-ED" if crop == 128 else "ETH-XGaze"), name
    # the control: ETH-XGaze's framing on an ST-ED file (what every file without camera attributes got)
    # puts the eyes of a 128-px crop ~3 px off
    wrong = _projected_eyes(head, size=128, focal_at_crop=960.0, crop=224, distance_mm=600.0)
    right = _projected_eyes(head, size=128, focal_at_crop=500.0, crop=128, distance_mm=600.0)
    assert 2.0 < np.linalg.norm(wrong - right, axis=-1).mean() < 4.0


def test_a_files_own_camera_wins_and_is_scaled_by_convert(tmp_path):

    write_regaze_file(tmp_path / "synth.h5", size=32, attrs={"camera_focal_px": 91.0, "camera_distance_mm": 600.0})
    ds = open_dataset(tmp_path / "synth.h5")
    assert framing_from_attrs(ds.attrs, size=32) == Framing(91.0, 600.0)
    small = open_dataset(convert_to_regaze(tmp_path / "synth.h5", tmp_path / "s16.h5", size=16, progress=False))
    assert framing_from_attrs(small.attrs, size=16) == Framing(45.5, 600.0)  # the focal follows the pixels
    write_regaze_file(tmp_path / "bare.h5", size=16, attrs={})
    bare = open_dataset(tmp_path / "bare.h5")
    assert bare.attrs["camera_framing"].startswith("assumed: ETH-XGaze")  # said so, not silent
    assert framing_from_attrs(bare.attrs, size=16) == framing_from_attrs({}, size=16)
    with pytest.raises(RegazeError, match="camera attributes should be positive"):
        framing_from_attrs({"camera_focal_px": 0.0, "camera_distance_mm": 600.0}, size=16)


def test_format_presets_agree_with_the_model_default():
    assert (ETH_XGAZE.focal_px, ETH_XGAZE.crop_px, ETH_XGAZE.distance_mm) == (960.0, 224, 600.0)  # DESIGN §5
    assert (STED.focal_px, STED.crop_px, STED.distance_mm) == (500.0, 128, 600.0)
    for size in (32, 64, 224):
        attrs = ETH_XGAZE.attrs(size=size)
        assert framing_from_attrs(attrs, size=size) == framing_from_attrs({}, size=size)
