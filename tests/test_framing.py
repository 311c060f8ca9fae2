"""The eye-region weights of the reconstruction loss: they must sit on the eyes of real renders."""
import numpy as np
import torch

from regaze.training import losses
from regaze.data.synth.camera import CAMERA_DISTANCE_MM, focal_px, project
from regaze.data.synth.face_model import landmarks_cam
from regaze.data.synth.params import sample_identities
from regaze.model.framing import Framing, eye_centres_px, eye_weight_map, framing_from_attrs

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
