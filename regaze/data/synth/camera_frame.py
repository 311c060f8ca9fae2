"""Synthetic faces in a real camera's frame (e.g. a 640 x 480 webcam with known intrinsics), with exact labels,
and the data normalization of Zhang et al. 2018 (DESIGN §5) applied to them exactly: ground truth for the
photo normalization chain (landmarks -> solvePnP -> warp).

    scenes = sample_camera_frame_scenes(8, rng)                   # K, poses, landmarks in the webcam image
    photo = render_view(**scenes.view)                            # uint8 (8, 480, 640, 3)
    norm = normalized_view(scenes, focal_px=960.0, distance_mm=600.0, size=224)
    crops = render_view(**norm.view)                              # what the normalizing warp should produce

Landmarks, six per face, in LANDMARK_NAMES order: the subject's right eye centre, the left eye centre (each
the midpoint of that eye's two corners), the nose tip, the subject's right and left mouth corners, the face
centre. That is the order of regaze.data.photo's FIVE_POINTS (plus the face centre): the subject's right eye
lies at x < 0 in head coordinates and appears on the image's LEFT of an upright face that looks at the
camera. Beware that face_model.py's suffixes name the other side: its `eye_r`, corners[0:2], mouth
corners[0] and render()'s `pupil_r` are at x > 0 (the image's right; the subject's left eye).
Pixel coordinates are camera.py's (pixel (i, j) centred at (j + 0.5, i + 0.5)); subtract 0.5 for OpenCV's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from regaze.data.synth.camera import head_rotation, project_pinhole
from regaze.data.synth.face_model import face_geometry
from regaze.data.synth.generate import PoseRanges, sample_poses
from regaze.data.synth.params import sample_identities, sample_sessions
from regaze.geometry import head_matrix_to_pitchyaw, pitchyaw_to_vector, vector_to_pitchyaw

__all__ = ["LANDMARK_NAMES", "MEAN_FACE_LANDMARKS_HEAD", "CameraFrameScenes", "NormalizedView",
           "face_landmarks_head", "sample_camera_frame_scenes", "normalizing_rotation", "normalized_view"]

LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth", "face_centre")
_MARGIN_PX = 3.0  # head outline to the image border: covers the ~1 px edge ramp and the outline sampling
_MAX_TRIES = 200  # placements tried per face before giving up


def face_landmarks_head(identity) -> np.ndarray:
    """(n, P_id) identity -> (n, 6, 3) LANDMARK_NAMES points in head coordinates (mm, origin = face centre):
    the face's own 3-D model for cv2.solvePnP."""
    geo = face_geometry(np.atleast_2d(np.asarray(identity, dtype=np.float64)))
    corners, mouth = _subject_order(geo)
    return np.stack([corners[:, 0:2].mean(1), corners[:, 2:4].mean(1), geo["nose_tip"], mouth[:, 0], mouth[:, 1],
                     np.zeros_like(geo["nose_tip"])], 1)  # (n, 6, 3)


def _subject_order(geo: dict):
    """Eye corners (n, 4, 3) as subject's right outer, right inner, left inner, left outer (image left to right
    for an upright frontal face) and mouth corners (n, 2, 3) as subject's right, left: face_model's reversed."""
    return geo["eye_corners"][:, ::-1], geo["mouth_corners"][:, ::-1]


def _mean_face_landmarks() -> np.ndarray:
    ids = sample_identities(20000, np.random.default_rng(20240))
    return face_landmarks_head(ids).mean(0)


# (6, 3) a generic 3-D model of this renderer's faces: the landmarks averaged over 20000 identities drawn
# from a fixed seed (so the same on every machine); for solvePnP when the face's own model is not known.
MEAN_FACE_LANDMARKS_HEAD = _mean_face_landmarks()


@dataclass(frozen=True)
class CameraFrameScenes:
    """n faces in one camera. `view` holds render_view's arguments; the rest are exact labels."""
    camera_matrix: np.ndarray  # (3, 3) K, camera.py's pixel centres
    width: int
    height: int
    identity: np.ndarray  # (n, P_id) float32
    session: np.ndarray  # (n, P_s) float32
    head_rot_cam: np.ndarray  # (n, 3, 3) head -> camera, roll included
    face_centre_cam: np.ndarray  # (n, 3) mm
    gaze_cam: np.ndarray  # (n, 3) unit, from the face centre toward the target
    landmarks_cam: np.ndarray  # (n, 6, 3) mm, LANDMARK_NAMES order
    landmarks_2d: np.ndarray  # (n, 6, 2) pixels (x, y)
    eye_corners_2d: np.ndarray  # (n, 4, 2) subject's right outer, right inner, left inner, left outer
    mouth_corners_2d: np.ndarray  # (n, 2, 2) subject's right, left

    @property
    def view(self) -> dict:
        return {"identity": self.identity, "session": self.session, "head_rot_cam": self.head_rot_cam,
                "face_centre_cam": self.face_centre_cam, "gaze_cam": self.gaze_cam,
                "camera_matrix": self.camera_matrix, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class NormalizedView:
    """The normalized crops of CameraFrameScenes: render_view's arguments (`view`) and their labels."""
    view: dict  # render_view(**view) renders the crops; camera_matrix is (n, 3, 3)
    rotation: np.ndarray  # (n, 3, 3) R: camera -> normalized camera (rows right, down, forward)
    warp: np.ndarray  # (n, 3, 3) W = K_norm S R K^-1: photo pixels -> crop pixels (camera.py's convention)
    head_pitchyaw_rad: np.ndarray  # (n, 2) of R hR
    gaze_pitchyaw_rad: np.ndarray  # (n, 2) of R g
    landmarks_2d: np.ndarray  # (n, 6, 2) in the crop


def normalizing_rotation(*, face_centre_cam, x_axis_cam) -> np.ndarray:
    """(n, 3) face centres and (n, 3) head x axes in the camera -> (n, 3, 3) R, rows right, down, forward:
    forward = c / |c|, down = forward x x_axis (normalised), right = down x forward."""
    c = np.asarray(face_centre_cam, dtype=np.float64)
    forward = c / np.linalg.norm(c, axis=-1, keepdims=True)
    down = np.cross(forward, np.asarray(x_axis_cam, dtype=np.float64))
    down /= np.linalg.norm(down, axis=-1, keepdims=True)
    right = np.cross(down, forward)
    return np.stack([right, down, forward], -2)  # (n, 3, 3)


def _roll_z(roll_rad: np.ndarray) -> np.ndarray:
    """(n,) -> (n, 3, 3) rotation about z; as the right factor of a head rotation it turns the head's x axis
    toward its y axis (image down): positive roll tilts an upright face clockwise in the image."""
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _head_outline_head(geo: dict) -> np.ndarray:
    """(n, K, 3) points on every head primitive but the neck (it leaves the frame as in a photo), head
    coordinates: their projections bound the rendered head."""
    k = 512
    i = np.arange(k) + 0.5
    zs = 1.0 - 2.0 * i / k
    phi = i * math.pi * (3.0 - math.sqrt(5.0))  # Fibonacci sphere: even spacing
    unit = np.stack([np.sqrt(1.0 - zs ** 2) * np.cos(phi), np.sqrt(1.0 - zs ** 2) * np.sin(phi), zs], -1)  # (K, 3)
    parts = [geo[f"{key}_c"][:, None] + geo[f"{key}_r"][:, None] * unit
             for key in ("cranium", "hair", "jaw", "chin", "nose_tip", "ear")]
    parts.append(parts[-1] * np.array([-1.0, 1.0, 1.0]))  # the other ear
    tilt = geo["nose_bridge_tilt"][:, None]
    b = geo["nose_bridge_r"][:, None] * unit  # bridge frame -> head: rotation about x by -tilt
    bridge = np.stack([b[..., 0], np.cos(tilt) * b[..., 1] + np.sin(tilt) * b[..., 2],
                       -np.sin(tilt) * b[..., 1] + np.cos(tilt) * b[..., 2]], -1)
    parts.append(geo["nose_bridge_c"][:, None] + bridge)
    return np.concatenate(parts, 1)


def sample_camera_frame_scenes(n: int, rng: np.random.Generator, *, width: int = 640, height: int = 480,
                               focal_px: float = 600.0, distance_mm=(400.0, 900.0), roll_deg=(-15.0, 15.0),
                               head_deg=(30.0, 40.0), gaze_deg: float = 30.0) -> CameraFrameScenes:
    """n random faces in a width x height camera with focal focal_px and the principal point at the centre.

    distance_mm: (low, high) of |face centre|, uniform; roll_deg: (low, high) of the head roll, uniform;
    head_deg: (max |pitch|, max |yaw|) of the head relative to the ray from the camera to the face centre
    (pitch and yaw of head_rotation in the frame that looks along that ray with the camera's x axis level);
    gaze_deg: gaze uniform in the cone of that half angle around the face's direction. The face centre is
    placed uniformly where the whole head (all but the neck) projects at least _MARGIN_PX inside the image.
    Deterministic for the state of rng.
    """
    lo_d, hi_d = (float(v) for v in distance_mm)
    if n < 1 or width < 1 or height < 1 or focal_px <= 0:
        raise ValueError(f"sample_camera_frame_scenes: need n, width, height >= 1 and focal_px > 0, "
                         f"got n={n}, {width} x {height}, focal_px={focal_px}")
    if not 250.0 <= lo_d <= hi_d or roll_deg[0] > roll_deg[1]:
        raise ValueError(f"sample_camera_frame_scenes: need 250 <= distance_mm[0] <= distance_mm[1] and "
                         f"roll_deg[0] <= roll_deg[1], got distance_mm={distance_mm}, roll_deg={roll_deg}")
    k = np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])
    ids, ses = sample_identities(n, rng), sample_sessions(n, rng)
    head, gaze = sample_poses(n, rng, PoseRanges(head_pitch_deg=head_deg[0], head_yaw_deg=head_deg[1],
                                                 gaze_cone_deg=gaze_deg))
    roll = np.deg2rad(rng.uniform(roll_deg[0], roll_deg[1], n))
    dist = rng.uniform(lo_d, hi_d, n)
    rot_ray = head_rotation(head.astype(np.float64)) @ _roll_z(roll)  # (n, 3, 3) head -> ray frame
    g_ray = pitchyaw_to_vector(gaze.astype(np.float64))
    g_ray /= np.linalg.norm(g_ray, axis=-1, keepdims=True)
    geo = face_geometry(ids.astype(np.float64))
    outline = _head_outline_head(geo)  # (n, K, 3)
    r_ray, fc = np.empty((n, 3, 3)), np.empty((n, 3))  # camera -> ray frame, face centres
    for i in range(n):
        r_ray[i], fc[i] = _place(rng, rot_ray=rot_ray[i], outline=outline[i], distance_mm=dist[i],
                                 camera_matrix=k, width=width, height=height)
    rot = np.swapaxes(r_ray, 1, 2) @ rot_ray  # (n, 3, 3) head -> camera
    gaze_cam = np.einsum("nji,nj->ni", r_ray, g_ray)  # (n, 3)

    def to_cam(pts):  # (n, K, 3) head -> camera
        return np.einsum("nij,nkj->nki", rot, pts) + fc[:, None]

    corners, mouth = _subject_order(geo)
    lm_cam = to_cam(face_landmarks_head(ids))
    return CameraFrameScenes(
        camera_matrix=k, width=int(width), height=int(height), identity=ids, session=ses, head_rot_cam=rot,
        face_centre_cam=fc, gaze_cam=gaze_cam, landmarks_cam=lm_cam, landmarks_2d=project_pinhole(lm_cam, k),
        eye_corners_2d=project_pinhole(to_cam(corners), k), mouth_corners_2d=project_pinhole(to_cam(mouth), k))


def _place(rng, *, rot_ray, outline, distance_mm, camera_matrix, width, height):
    """One face centre at distance_mm whose head outline (K, 3) projects inside the image: the rotation camera
    -> ray frame (3, 3) and the face centre (3,). Proposals come from the outline's extent on the optical
    axis; each is checked exactly (off-axis, perspective stretches the head a little)."""
    f = camera_matrix[0, 0]
    on_axis = outline @ rot_ray.T  # (K, 3) head -> camera for a face on the optical axis (ray frame = camera)
    ext = f * on_axis[:, :2] / (distance_mm + on_axis[:, 2:])  # (K, 2) px from the face centre's image
    lo = _MARGIN_PX - ext.min(0)
    hi = np.array([width, height]) - _MARGIN_PX - ext.max(0)
    if np.any(hi < lo):
        raise ValueError(f"sample_camera_frame_scenes: a head at {distance_mm:.0f} mm does not fit in a "
                         f"{width} x {height} image with focal {f} px; increase distance_mm")
    for _ in range(_MAX_TRIES):
        uv = rng.uniform(lo, hi)
        ray = np.linalg.solve(camera_matrix, np.array([uv[0], uv[1], 1.0]))
        fc = distance_mm * ray / np.linalg.norm(ray)
        r_ray = normalizing_rotation(face_centre_cam=fc[None], x_axis_cam=np.array([[1.0, 0.0, 0.0]]))[0]
        rot = r_ray.T @ rot_ray
        xy = project_pinhole(outline @ rot.T + fc, camera_matrix)  # (K, 2)
        if np.all(xy >= _MARGIN_PX) and np.all(xy <= np.array([width, height]) - _MARGIN_PX):
            return r_ray, fc
        lo, hi = lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo)  # the misses are near the borders
    raise ValueError(f"sample_camera_frame_scenes: found no placement of a head at {distance_mm:.0f} mm inside "
                     f"the {width} x {height} image in {_MAX_TRIES} tries; increase distance_mm")


def normalized_view(scene: CameraFrameScenes, *, focal_px: float, distance_mm: float, size: int) -> NormalizedView:
    """The faces of `scene` as the data normalization (DESIGN §5) crops them: the camera rotated by
    R = normalizing_rotation(c, hR[:, 0]) and zoomed to focal focal_px |c| / distance_mm, principal point
    (size / 2, size / 2), size x size pixels; exactly the homography W = K_norm S R K^-1 with
    S = diag(1, 1, distance_mm / |c|) applied to the photo. Head R hR, face centre R c = (0, 0, |c|), gaze R g.
    """
    if focal_px <= 0 or distance_mm <= 0 or size < 1:
        raise ValueError(f"normalized_view: need focal_px, distance_mm > 0 and size >= 1, got {focal_px}, "
                         f"{distance_mm}, {size}")
    c, hr = scene.face_centre_cam, scene.head_rot_cam
    r = normalizing_rotation(face_centre_cam=c, x_axis_cam=hr[:, :, 0])  # (n, 3, 3)
    dist = np.linalg.norm(c, axis=-1)  # (n,)
    n = len(dist)
    k_zoom = np.tile(np.eye(3), (n, 1, 1))
    k_zoom[:, 0, 0] = k_zoom[:, 1, 1] = focal_px * dist / distance_mm
    k_zoom[:, :2, 2] = size / 2.0
    k_norm = np.array([[focal_px, 0.0, size / 2.0], [0.0, focal_px, size / 2.0], [0.0, 0.0, 1.0]])
    s = np.tile(np.eye(3), (n, 1, 1))
    s[:, 2, 2] = distance_mm / dist
    warp = k_norm @ s @ r @ np.linalg.inv(scene.camera_matrix)  # (n, 3, 3)
    head_rot = r @ hr
    gaze = np.einsum("nij,nj->ni", r, scene.gaze_cam)
    fc = np.stack([np.zeros(n), np.zeros(n), dist], -1)  # R c, exactly
    lm = np.einsum("nij,nkj->nki", r, scene.landmarks_cam)  # (n, 6, 3)
    lm_2d = np.stack([project_pinhole(lm[i], k_zoom[i]) for i in range(n)])
    view = {"identity": scene.identity, "session": scene.session, "head_rot_cam": head_rot, "face_centre_cam": fc,
            "gaze_cam": gaze, "camera_matrix": k_zoom, "width": int(size), "height": int(size),
            "light_rotation": r}  # the photo's light, seen from the turned camera
    return NormalizedView(view=view, rotation=r, warp=warp, head_pitchyaw_rad=head_matrix_to_pitchyaw(head_rot),
                          gaze_pitchyaw_rad=vector_to_pitchyaw(gaze), landmarks_2d=lm_2d)
