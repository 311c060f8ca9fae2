"""Synthetic faces in a camera frame: render_view reproduces render() in the normalized camera, the landmark
labels sit on the rendered face, the head stays in the frame, and the data normalization applied to the
scenes is exact (position-free) and scale-free up to perspective."""
import dataclasses

import numpy as np
import pytest

from regaze.data.synth import IDENTITY_PARAMS, render, sample_identities, sample_sessions
from regaze.data.synth.camera import (
    CAMERA_DISTANCE_MM, camera_rays, face_px_per_mm, focal_px, head_rotation, normalized_camera_matrix, pixel_rays,
    project_pinhole,
)
from regaze.data.synth.camera_frame import (
    MEAN_FACE_LANDMARKS_HEAD, face_landmarks_head, normalized_view, normalizing_rotation,
    sample_camera_frame_scenes,
)
from regaze.data.synth.face_model import landmarks_cam
from regaze.data.synth.generate import sample_poses
from regaze.data.synth.render import render_view
from regaze.geometry import head_matrix_to_pitchyaw, pitchyaw_to_vector, vector_to_pitchyaw

SMALL = dict(width=160, height=120, focal_px=150.0)  # a 640 x 480, f = 600 webcam at a quarter of the pixels


def _normalized_args(n, seed, size):
    rng = np.random.default_rng(seed)
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    ids[0, IDENTITY_PARAMS.index("glasses")] = 1.0
    head, gaze = sample_poses(n, rng)
    view = dict(identity=ids, session=ses, head_rot_cam=head_rotation(head.astype(np.float64)),
                face_centre_cam=np.tile([0.0, 0.0, CAMERA_DISTANCE_MM], (n, 1)),
                gaze_cam=pitchyaw_to_vector(gaze.astype(np.float64)), camera_matrix=normalized_camera_matrix(size),
                width=size, height=size)
    return dict(identity=ids, session=ses, head=head, gaze=gaze, size=size), view


@pytest.mark.parametrize("size", [64, 128, 224])
def test_render_view_in_the_normalized_camera_gives_renders_bytes(size):
    assert np.array_equal(camera_rays(normalized_camera_matrix(size), width=size, height=size).numpy(),
                          pixel_rays(size).numpy())
    old_args, view = _normalized_args(3, seed=size, size=size)
    old = render(**old_args, layers=True)
    new = render_view(**view, layers=True)
    for key in old:  # identical, not merely close: image, pupil_r, pupil_l, nose_z
        assert np.array_equal(old[key], new[key]), key
    assert new["face_mask"].shape == (3, size, size) and new["face_mask"].dtype == np.float32


def test_render_view_non_square_images_and_layers():
    scenes = sample_camera_frame_scenes(2, np.random.default_rng(1), **SMALL)
    out = render_view(**scenes.view, layers=True)
    assert out["image"].shape == (2, 120, 160, 3) and out["image"].dtype == np.uint8
    assert set(out) == {"image", "face_mask", "head_mask", "pupil_r", "pupil_l", "nose_z"}
    for key in ("face_mask", "head_mask"):
        assert out[key].shape == (2, 120, 160) and out[key].dtype == np.float32
        assert out[key].min() == 0.0 and out[key].max() == 1.0
    assert np.all(out["head_mask"] <= out["face_mask"])
    assert np.array_equal(render_view(**scenes.view), out["image"])
    one = render_view(**{k: (v[1:] if k in ("identity", "session", "head_rot_cam", "face_centre_cam", "gaze_cam")
                             else v) for k, v in scenes.view.items()})
    assert np.array_equal(one[0], out["image"][1])  # the same alone as in a batch


def test_landmarks_lie_on_the_rendered_face_and_the_subjects_right_eye_on_the_images_left():
    scenes = sample_camera_frame_scenes(4, np.random.default_rng(2), width=320, height=240, focal_px=300.0)
    out = render_view(**scenes.view, layers=True)
    for i in range(4):
        col, row = np.floor(scenes.landmarks_2d[i]).astype(int).T  # (6,) each
        assert np.all(out["face_mask"][i, row[[0, 1, 2, 5]], col[[0, 1, 2, 5]]] > 0.5)  # eyes, nose tip, face centre
        assert np.isfinite(out["nose_z"][i, row[2], col[2]])  # the nose-tip surface itself
        assert scenes.landmarks_2d[i, 0, 0] < scenes.landmarks_2d[i, 1, 0]  # roll <= 15 deg, yaw <= 40 deg
        # face_model's pupil_l (x < 0 in head coordinates) is the subject's right eye: landmark 0.
        ys, xs = np.nonzero(out["pupil_l"][i] > 0.5)
        if len(xs):
            centroid = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
            dist = np.linalg.norm(scenes.landmarks_2d[i, :2] - centroid, axis=-1)
            assert dist[0] < dist[1]
    np.testing.assert_allclose(scenes.eye_corners_2d.reshape(4, 2, 2, 2).mean(2), scenes.landmarks_2d[:, :2],
                               atol=0.5)  # eye centres are the corners' midpoints in 3-D, near it in 2-D


def test_landmarks_match_the_face_model_and_the_design_face_centre():
    scenes = sample_camera_frame_scenes(5, np.random.default_rng(3))
    lm_head = face_landmarks_head(scenes.identity)  # (5, 6, 3)
    np.testing.assert_allclose(lm_head[:, 5], 0.0, atol=1e-12)
    eye_c, mouth_c = lm_head[:, :2].mean(1), lm_head[:, 3:5].mean(1)
    np.testing.assert_allclose(0.5 * (eye_c + mouth_c), 0.0, atol=1e-9)  # DESIGN §2 face centre
    expected = np.einsum("nij,nkj->nki", scenes.head_rot_cam, lm_head) + scenes.face_centre_cam[:, None]
    np.testing.assert_allclose(scenes.landmarks_cam, expected, atol=1e-9)
    np.testing.assert_allclose(scenes.landmarks_2d, project_pinhole(scenes.landmarks_cam, scenes.camera_matrix))
    # The normalized camera's landmarks of face_model.py are the same points (the sides swapped).
    head = np.deg2rad([[10.0, -20.0]])
    lm = landmarks_cam(scenes.identity[:1], head_pitchyaw_rad=head)
    ours = np.einsum("ij,kj->ki", head_rotation(head)[0], lm_head[0]) + [0.0, 0.0, CAMERA_DISTANCE_MM]
    np.testing.assert_allclose(ours[2], lm["nose_tip"][0], atol=1e-9)
    np.testing.assert_allclose(ours[3], lm["mouth_corners"][0, 1], atol=1e-9)
    mean = MEAN_FACE_LANDMARKS_HEAD
    assert mean.shape == (6, 3) and mean[0, 0] < 0 < mean[1, 0]  # the subject's right eye at x < 0
    np.testing.assert_allclose(mean[0], mean[1] * [-1, 1, 1], atol=1e-9)


def test_solvepnp_on_the_exact_landmarks_recovers_the_pose():
    cv2 = pytest.importorskip("cv2")
    scenes = sample_camera_frame_scenes(3, np.random.default_rng(4))
    k_cv = scenes.camera_matrix.copy()
    k_cv[:2, 2] -= 0.5  # OpenCV's pixel centres
    for i in range(3):
        ok, rvec, tvec = cv2.solvePnP(face_landmarks_head(scenes.identity[i])[0], scenes.landmarks_2d[i] - 0.5,
                                      k_cv, None, flags=cv2.SOLVEPNP_ITERATIVE)
        assert ok
        np.testing.assert_allclose(cv2.Rodrigues(rvec)[0], scenes.head_rot_cam[i], atol=1e-5)
        np.testing.assert_allclose(tvec[:, 0], scenes.face_centre_cam[i], atol=1e-3)


def test_the_head_stays_inside_the_frame():
    scenes = sample_camera_frame_scenes(6, np.random.default_rng(5), **SMALL)
    dist = np.linalg.norm(scenes.face_centre_cam, axis=-1)
    assert np.all((dist >= 400.0) & (dist <= 900.0))
    out = render_view(**scenes.view, layers=True)
    head = out["head_mask"]  # the neck may leave the frame, as in a photo
    for border in (head[:, 0], head[:, -1], head[:, :, 0], head[:, :, -1]):
        assert border.max() == 0.0
    assert np.all(head.reshape(6, -1).max(1) == 1.0)
    assert np.all((scenes.landmarks_2d >= 0) & (scenes.landmarks_2d <= [160, 120]))
    with pytest.raises(ValueError, match="does not fit"):
        sample_camera_frame_scenes(1, np.random.default_rng(0), width=160, height=120, focal_px=600.0,
                                   distance_mm=(400.0, 400.0))


def test_sampling_is_deterministic_for_a_seed():
    a, b = (sample_camera_frame_scenes(3, np.random.default_rng(6)) for _ in range(2))
    c = sample_camera_frame_scenes(3, np.random.default_rng(7))
    for field in dataclasses.fields(a):
        assert np.array_equal(getattr(a, field.name), getattr(b, field.name)), field.name
    assert not np.array_equal(a.face_centre_cam, c.face_centre_cam)


def test_roll_turns_the_head_about_the_ray_clockwise_in_the_image():
    scenes = sample_camera_frame_scenes(3, np.random.default_rng(11), head_deg=(0.0, 0.0), roll_deg=(10.0, 10.0))
    in_ray = normalizing_rotation(face_centre_cam=scenes.face_centre_cam, x_axis_cam=np.tile([1.0, 0.0, 0.0], (3, 1)))
    m = in_ray @ scenes.head_rot_cam  # head in the frame that looks along the ray: a pure roll
    np.testing.assert_allclose(m[:, :, 2], np.tile([0.0, 0.0, 1.0], (3, 1)), atol=1e-12)
    np.testing.assert_allclose(np.rad2deg(np.arctan2(m[:, 1, 0], m[:, 0, 0])), 10.0, atol=1e-9)
    assert np.all(scenes.landmarks_2d[:, 1, 1] > scenes.landmarks_2d[:, 0, 1])  # the image-right eye is lower


def test_normalized_view_labels_and_warp():
    scenes = sample_camera_frame_scenes(4, np.random.default_rng(8), roll_deg=(-15.0, 15.0))
    norm = normalized_view(scenes, focal_px=960.0, distance_mm=600.0, size=224)
    r, hr = norm.rotation, norm.view["head_rot_cam"]
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(hr[:, 1, 0], 0.0, atol=1e-12)  # normalization removes roll
    np.testing.assert_allclose(norm.head_pitchyaw_rad, head_matrix_to_pitchyaw(r @ scenes.head_rot_cam))
    np.testing.assert_allclose(norm.gaze_pitchyaw_rad, vector_to_pitchyaw(np.einsum("nij,nj->ni", r, scenes.gaze_cam)))
    np.testing.assert_allclose(norm.landmarks_2d[:, 5], 112.0, atol=1e-9)  # face centre -> crop centre
    # W maps the photo's landmarks onto the crop's: the zoomed, rotated camera is the homography.
    h = np.concatenate([scenes.landmarks_2d, np.ones((4, 6, 1))], -1) @ np.swapaxes(norm.warp, 1, 2)
    np.testing.assert_allclose(h[..., :2] / h[..., 2:], norm.landmarks_2d, atol=1e-6)
    # Scale: what the renderer draws in px per mm (edges, blur) is the normalized camera's focal / distance.
    np.testing.assert_allclose(face_px_per_mm(camera_matrix=norm.view["camera_matrix"],
                                              face_centre_cam=norm.view["face_centre_cam"]), 960.0 / 600.0)
    assert face_px_per_mm(camera_matrix=normalized_camera_matrix(128),
                          face_centre_cam=[0.0, 0.0, CAMERA_DISTANCE_MM]) == focal_px(128) / CAMERA_DISTANCE_MM
    # The eyes are as far apart in every crop as at 600 mm with a 960-px focal.
    ipd_px = np.linalg.norm(norm.landmarks_2d[:, 0] - norm.landmarks_2d[:, 1], axis=-1)
    eyes_head = face_landmarks_head(scenes.identity)[:, :2]
    ipd_mm = np.linalg.norm(eyes_head[:, 0] - eyes_head[:, 1], axis=-1)
    np.testing.assert_allclose(ipd_px / (ipd_mm * 960.0 / 600.0), 1.0, atol=0.25)  # yaw shortens it


def test_normalization_removes_the_position_in_the_frame_exactly():
    a = sample_camera_frame_scenes(2, np.random.default_rng(9), distance_mm=(600.0, 600.0))
    b = sample_camera_frame_scenes(2, np.random.default_rng(9), distance_mm=(600.0, 600.0), width=800, height=600)
    assert np.abs(a.face_centre_cam - b.face_centre_cam).max() > 10.0  # placed elsewhere
    # the light fixed in the turned camera: a directional light fixed in the photo's camera (light_rotation, the
    # default of normalized_view) does shade a face differently at another place in the frame
    views = [{**normalized_view(s, focal_px=focal_px(64), distance_mm=600.0, size=64).view, "light_rotation": None}
             for s in (a, b)]
    ra, rb = (render_view(**v, layers=True) for v in views)
    inside = (ra["face_mask"] > 0.99) & (rb["face_mask"] > 0.99)
    assert inside.mean() > 0.3 and np.array_equal(ra["image"][inside], rb["image"][inside])


def _psnr_in_mask(ra, rb):
    out = []
    for i in range(len(ra["image"])):
        inside = (ra["face_mask"][i] > 0.99) & (rb["face_mask"][i] > 0.99)
        err = ra["image"][i][inside].astype(np.float64) - rb["image"][i][inside].astype(np.float64)
        out.append(10.0 * np.log10(255.0 ** 2 / max(np.mean(err ** 2), 1e-10)))
    return np.array(out)


def test_near_and_far_faces_match_after_normalization_up_to_perspective():
    """The same face at 450 and 850 mm, normalized to one scale. What differs is perspective, which no warp
    removes: a feature 10 mm in front of the face centre is magnified 2.2 % vs 1.2 %, the ears at +100 mm shrink
    18 % vs 11 %; ~1 px at the edges of a 64-px crop, so such pairs match to 21-33 dB (here 23-27), not 30+.
    A small change of distance (600 vs 610 mm) matches to >= 35 dB (here 49-56); a zoom without the |c| / d
    factor drops these to 26-30 dB and 8-11 dB."""
    size, f = 64, focal_px(64)
    psnr = {}
    for d1, d2 in ((450.0, 850.0), (600.0, 610.0)):
        a = sample_camera_frame_scenes(3, np.random.default_rng(10), distance_mm=(d1, d1))
        b = sample_camera_frame_scenes(3, np.random.default_rng(10), distance_mm=(d2, d2))
        na, nb = (normalized_view(s, focal_px=f, distance_mm=600.0, size=size) for s in (a, b))
        np.testing.assert_allclose(na.head_pitchyaw_rad, nb.head_pitchyaw_rad, atol=1e-12)
        np.testing.assert_allclose(na.gaze_pitchyaw_rad, nb.gaze_pitchyaw_rad, atol=1e-12)
        psnr[d1] = _psnr_in_mask(render_view(**na.view, layers=True), render_view(**nb.view, layers=True))
    assert np.all(psnr[450.0] >= 20.0), psnr
    assert np.all(psnr[600.0] >= 35.0) and np.all(psnr[600.0] > psnr[450.0] + 8.0), psnr


def test_bad_arguments_raise_clear_errors():
    _, view = _normalized_args(2, seed=0, size=64)
    bad = {
        "identity": (view["identity"][:, :5], "identity of shape"),
        "session": (view["session"][:1], "session of shape"),
        "head_rot_cam": (view["head_rot_cam"][:, :2], "head_rot_cam of shape"),
        "face_centre_cam": (view["face_centre_cam"][:, :2], "face_centre_cam of shape"),
        "gaze_cam": (view["gaze_cam"] * 2.0, "unit vectors"),
        "camera_matrix": (np.eye(4), "camera_matrix"),
        "width": (0, "positive integers"),
    }
    for key, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            render_view(**{**view, key: value})
    with pytest.raises(ValueError, match="rotation matrices"):
        render_view(**{**view, "head_rot_cam": view["head_rot_cam"] * [1.0, 1.0, -1.0]})
    with pytest.raises(ValueError, match="in front of the camera"):
        render_view(**{**view, "face_centre_cam": np.tile([0.0, 0.0, 100.0], (2, 1))})
    with pytest.raises(ValueError, match="distance_mm"):
        sample_camera_frame_scenes(2, np.random.default_rng(0), distance_mm=(900.0, 400.0))
    with pytest.raises(ValueError, match="focal_px"):
        normalized_view(sample_camera_frame_scenes(1, np.random.default_rng(0)), focal_px=0.0, distance_mm=600.0,
                        size=64)
