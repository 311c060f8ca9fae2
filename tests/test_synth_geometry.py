"""Synthetic faces: the labels are exact. Rendered pupils and nose tips sit where the label geometry
(eyeball centres, gaze target, head rotation, normalized camera) projects them, within 1 px at 128 px."""
import math

import numpy as np
import pytest

from regaze.data.synth import SESSION_PARAMS, IDENTITY_PARAMS, render, sample_identities, sample_sessions
from regaze.data.synth.camera import CAMERA_DISTANCE_MM, head_rotation, project
from regaze.data.synth.generate import PoseRanges, sample_poses
from regaze.data.synth.face_model import EYEBALL_RADIUS_MM, landmarks_cam, pupil_centres_cam
from regaze.geometry import angular_error_deg, head_matrix_to_pitchyaw, pitchyaw_to_vector

SIZE = 128


def _plain(sessions, identities=None):
    """No noise, no blur, light from the camera, light skin, light-blue iris and wide eyes: near the
    pupil, the pupil is the only very dark blob (the lash line is > 3 px away at 128 px)."""
    s = sessions.copy()
    for k, v in {"noise_std": 0.0, "blur_px128": 0.0, "light_azimuth_rad": 0.0, "light_elevation_rad": 0.1,
                 "pupil_radius_mm": 2.6, "ambient": 0.5, "light_intensity": 0.9}.items():
        s[:, SESSION_PARAMS.index(k)] = v
    if identities is None:
        return s
    i = identities.copy()
    for k, v in {"iris_r": 0.45, "iris_g": 0.62, "iris_b": 0.85, "eye_opening": 1.05, "glasses": 0.0,
                 "skin_r": 0.9, "skin_g": 0.75, "skin_b": 0.65}.items():
        i[:, IDENTITY_PARAMS.index(k)] = v
    return s, i


def test_head_rotation_matches_label_convention():
    head = np.deg2rad([[10.0, -30.0], [-25.0, 40.0], [0.0, 0.0]])
    m = head_rotation(head)
    np.testing.assert_allclose(head_matrix_to_pitchyaw(m), head, atol=1e-12)
    np.testing.assert_allclose(-m[:, :, 2], pitchyaw_to_vector(head), atol=1e-12)  # the face looks to -z
    np.testing.assert_allclose(m[:, 1, 0], 0.0, atol=1e-12)  # no roll: head x axis stays horizontal
    np.testing.assert_allclose(m @ np.swapaxes(m, 1, 2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)


def test_face_centre_is_the_landmark_midpoint_and_projects_to_the_image_centre():
    rng = np.random.default_rng(0)
    ids = sample_identities(8, rng)
    head, _ = sample_poses(8, rng)
    lm = landmarks_cam(ids, head_pitchyaw_rad=head)
    fc = 0.5 * (lm["eye_corners"].mean(1) + lm["mouth_corners"].mean(1))
    np.testing.assert_allclose(fc, lm["face_centre"], atol=1e-9)
    np.testing.assert_allclose(project(fc, SIZE), SIZE / 2.0, atol=1e-9)


def test_sampled_gaze_stays_in_the_cone_around_the_head_direction():
    rng = np.random.default_rng(1)
    head, gaze = sample_poses(4000, rng, PoseRanges(head_pitch_deg=30, head_yaw_deg=45, gaze_cone_deg=35))
    off = angular_error_deg(gaze.astype(np.float64), head.astype(np.float64))
    assert off.max() <= 35.0 + 1e-3 and off.max() > 33.0
    assert np.abs(np.rad2deg(head[:, 0])).max() <= 30.0 + 1e-4 and np.abs(np.rad2deg(head[:, 1])).max() <= 45.0 + 1e-4


def test_eyes_verge_on_the_target_along_the_gaze_label():
    """Both optical axes pass through the target placed along the label from the face centre."""
    rng = np.random.default_rng(2)
    ids, ses = sample_identities(6, rng), sample_sessions(6, rng)
    head, gaze = sample_poses(6, rng)
    pupils = pupil_centres_cam(ids, ses, head_pitchyaw_rad=head, gaze_pitchyaw_rad=gaze)  # (n, 2, 3)
    lm = landmarks_cam(ids, head_pitchyaw_rad=head)
    dist = ses[:, SESSION_PARAMS.index("target_distance_mm")].astype(np.float64)
    target = np.array([0.0, 0.0, CAMERA_DISTANCE_MM]) + dist[:, None] * pitchyaw_to_vector(gaze.astype(np.float64))
    for k, key in enumerate(("eye_r", "eye_l")):
        axis = pupils[:, k] - lm[key]
        np.testing.assert_allclose(np.linalg.norm(axis, axis=-1), EYEBALL_RADIUS_MM, rtol=1e-9)
        to_target = target - lm[key]
        cos = (axis * to_target).sum(-1) / (np.linalg.norm(axis, axis=-1) * np.linalg.norm(to_target, axis=-1))
        np.testing.assert_allclose(cos, 1.0, atol=1e-12)


def _centroid(weights):
    """(H, W) weights -> (x, y) centroid in continuous pixel coordinates (pixel centres at +0.5)."""
    ys, xs = np.mgrid[0:weights.shape[0], 0:weights.shape[1]]
    w = weights.sum()
    return np.array([((xs + 0.5) * weights).sum() / w, ((ys + 0.5) * weights).sum() / w])


def test_rendered_pupil_layer_centres_match_projected_gaze_geometry():
    rng = np.random.default_rng(3)
    n = 24
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng)
    out = render(identity=ids, session=ses, head=head, gaze=gaze, size=SIZE, layers=True)
    expected = project(pupil_centres_cam(ids, ses, head_pitchyaw_rad=head, gaze_pitchyaw_rad=gaze), SIZE)
    err = [np.linalg.norm(_centroid(out[f"pupil_{side}"][i]) - expected[i, k])
           for i in range(n) for k, side in enumerate("rl")]
    assert max(err) < 1.0, f"pupil centre error px: max {max(err):.3f}, mean {np.mean(err):.3f}"


def test_dark_pupil_blob_in_a_plain_render_lies_on_the_projected_pupil():
    """Measured in the RGB image: darkness-weighted centroid of the pupil inside a window around the
    prediction one pixel wider than the pupil (the lashes stay outside; a pupil misplaced by a pixel
    shifts the centroid)."""
    rng = np.random.default_rng(4)
    n = 16
    ses, ids = _plain(sample_sessions(n, rng), sample_identities(n, rng))
    head, gaze = sample_poses(n, rng, PoseRanges(head_pitch_deg=15, head_yaw_deg=25, gaze_cone_deg=20))
    img = render(identity=ids, session=ses, head=head, gaze=gaze, size=SIZE).astype(np.float64) / 255.0
    expected = project(pupil_centres_cam(ids, ses, head_pitchyaw_rad=head, gaze_pitchyaw_rad=gaze), SIZE)
    ppm = SIZE * 640.0 / 224.0 / CAMERA_DISTANCE_MM
    radius_px = 2.6 * ppm + 1.0  # pupil radius + 1 px
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    errs = []
    for i in range(n):
        grey = img[i].mean(-1)
        for k in range(2):
            cx, cy = expected[i, k]
            window = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius_px ** 2
            darkness = np.clip((0.2 - grey) / 0.12, 0.0, 1.0) * window
            errs.append(np.linalg.norm(_centroid(darkness) - expected[i, k]))
    assert max(errs) < 1.0, f"pupil blob error px: max {max(errs):.3f}, mean {np.mean(errs):.3f}"


def test_rendered_nose_tip_matches_projected_landmark():
    """The front-most visible point of the nose (minimum head-frame z, sub-pixel by a quadratic fit) sits
    on the projection of the nose-tip landmark through the head rotation."""
    rng = np.random.default_rng(5)
    n = 16
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng)
    nose_z = render(identity=ids, session=ses, head=head, gaze=gaze, size=SIZE, layers=True)["nose_z"]
    expected = project(landmarks_cam(ids, head_pitchyaw_rad=head)["nose_tip"], SIZE)
    errs = []
    for i in range(n):
        z = nose_z[i]
        r, c = np.unravel_index(np.argmin(z), z.shape)
        patch = z[r - 1:r + 2, c - 1:c + 2]
        assert np.isfinite(patch).all()
        # quadratic fit per axis: offset = (f(-1) - f(1)) / (2 (f(-1) - 2 f(0) + f(1)))
        dx = (patch[1, 0] - patch[1, 2]) / (2 * (patch[1, 0] - 2 * patch[1, 1] + patch[1, 2]))
        dy = (patch[0, 1] - patch[2, 1]) / (2 * (patch[0, 1] - 2 * patch[1, 1] + patch[2, 1]))
        errs.append(math.hypot(c + 0.5 + dx - expected[i, 0], r + 0.5 + dy - expected[i, 1]))
    assert max(errs) < 1.0, f"nose tip error px: max {max(errs):.3f}, mean {np.mean(errs):.3f}"
