"""Gaze data normalization (Zhang, Sugano and Bulling 2018, "Revisiting data normalization for appearance-based
gaze estimation") and its inverse: a face in a photo -> a normalized crop with head-pose label, and a crop
-> back into the photo (DESIGN §5).

    pose = estimate_head_pose(points_xy=face.points_xy, model_points_head=HUMAN_FIVE_POINTS_HEAD, camera=camera)
    norm = normalize_face(image, pose=pose, camera=camera, framing=preset.framing, size=preset.size)
    back, mask = denormalize(crop, norm=norm, photo_shape=image.shape, mask_crop=face_blend_mask(...))

Steps: five landmarks -> cv2.solvePnP (EPnP, then iterative refinement) against a 3-D model whose origin is the
face centre -> head rotation hR and the face centre c in the camera; forward = c / |c|, down = forward x hR[:, 0],
right = down x forward, R = [right; down; forward] (rows), S = diag(1, 1, d / |c|), W = K_norm S R K^-1: the
camera turned to look at the face centre, with the head's x axis level, and zoomed so that the face sits at the
normalized distance d. The normalized head rotation is R hR (no roll) and gaze vectors rotate by R alone.

Pixel coordinates are OpenCV's here: pixel (i, j) has its centre at (j, i), as calibrated camera matrices
use them. The normalized crop's principal point is its exact centre ((S - 1) / 2, (S - 1) / 2), as in the
synthetic renders (which use continuous coordinates, pixel centres at j + 0.5: the same point).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from regaze.data.photo.intrinsics import PhotoCamera
from regaze.errors import RegazeError
from regaze.geometry import head_matrix_to_pitchyaw, vector_to_pitchyaw

__all__ = ["HeadPose", "NormalizedFace", "HUMAN_FIVE_POINTS_HEAD", "FIVE_POINT_WEIGHTS", "estimate_head_pose",
           "normalizing_rotation", "normalize_face", "denormalize", "blend", "blend_residual", "face_blend_mask",
           "eye_blend_mask", "crop_camera_matrix"]

# A generic adult face's five points in head coordinates (mm; x to the image right of a frontal face, y down,
# z out of the back of the head, origin at the face centre of DESIGN §2), FIVE_POINTS order: eye centres,
# nose tip, mouth corners. Symmetrised from ETH-XGaze's mean 3-D face (the eye centres are the means of each
# eye's six contour points, the face centre the midpoint of the eye-corner and mouth-corner centres);
# inter-eye distance 62.8 mm, mouth width 41.6 mm.
HUMAN_FIVE_POINTS_HEAD = np.array([
    [-31.4, -35.7, 1.0],   # right eye (image left)
    [31.4, -35.7, 1.0],    # left eye
    [0.0, 4.0, -25.4],     # nose tip
    [-20.8, 35.3, -4.2],   # right mouth corner
    [20.8, 35.3, -4.2],    # left mouth corner
])


@dataclass(frozen=True)
class HeadPose:
    rotation: np.ndarray  # (3, 3) head -> camera (columns: the head's axes in the camera)
    face_centre_mm: np.ndarray  # (3,) the face centre in camera coordinates
    reprojection_px: float  # RMS distance of the model's projected points to the landmarks


@dataclass(frozen=True)
class NormalizedFace:
    crop: np.ndarray  # (S, S, 3) uint8 RGB
    warp: np.ndarray  # (3, 3) W: photo pixels -> crop pixels (homogeneous; for undistorted photo coordinates)
    rotation: np.ndarray  # (3, 3) R: camera -> normalized camera
    head_pitchyaw_rad: np.ndarray  # (2,) the head pose label: R hR as (pitch, yaw)
    head_rotation_norm: np.ndarray  # (3, 3) R hR
    pose: HeadPose
    camera: PhotoCamera
    focal_px: float
    distance_mm: float

    def gaze_to_camera(self, gaze_pitchyaw_rad) -> np.ndarray:
        """(2,) gaze in the normalized camera -> (3,) unit gaze vector in the photo's camera (R^T g)."""
        from regaze.geometry import pitchyaw_to_vector

        return self.rotation.T @ pitchyaw_to_vector(np.asarray(gaze_pitchyaw_rad, dtype=np.float64))

    def gaze_from_camera(self, gaze_vector_cam) -> np.ndarray:
        """(3,) gaze vector in the photo's camera -> (2,) (pitch, yaw) in the normalized camera (R g)."""
        return vector_to_pitchyaw(self.rotation @ np.asarray(gaze_vector_cam, dtype=np.float64))


# Weights of the five points in the pose fit: mouth corners move with expression (a smile lifts and widens
# them, which a rigid fit reads as the head pitching down), eyes and nose tip much less.
FIVE_POINT_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.1, 0.1])


def _weighted_refinement(obj, img, *, rvec, tvec, camera: PhotoCamera, weights, steps: int = 30):
    """Levenberg-Marquardt on the weighted reprojection error; cv2.projectPoints gives the Jacobian."""
    w = np.repeat(np.sqrt(weights), 2)  # (2K,) per residual
    lam = 1e-3
    x = np.concatenate([rvec.ravel(), tvec.ravel()])  # (6,)

    def residual(x):
        proj, jac = cv2.projectPoints(obj, x[:3], x[3:], camera.matrix, camera.dist_coeffs)
        return (proj.reshape(-1) - img.reshape(-1)) * w, jac[:, :6] * w[:, None]  # (2K,), (2K, 6)

    r, j = residual(x)
    for _ in range(steps):
        h = j.T @ j
        step = np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-12), -j.T @ r)
        r_new, j_new = residual(x + step)
        if r_new @ r_new < r @ r:
            x, r, j, lam = x + step, r_new, j_new, lam * 0.3
            if np.abs(step).max() < 1e-9:
                break
        else:
            lam *= 10.0
    return x[:3].reshape(3, 1), x[3:].reshape(3, 1)


def _weighted_cost(obj, img, *, rvec, tvec, camera: PhotoCamera, weights) -> float:
    proj = cv2.projectPoints(obj, rvec, tvec, camera.matrix, camera.dist_coeffs)[0].reshape(-1, 2)
    return float((weights * ((proj - img.reshape(-1, 2)) ** 2).sum(-1)).sum())


def estimate_head_pose(*, points_xy, model_points_head, camera: PhotoCamera, weights=None) -> HeadPose:
    """(K, 2) landmarks (pixels) and the (K, 3) same points of a 3-D face model (head coordinates, mm, origin at
    the face centre) -> the head pose: EPnP, cv2.solvePnP's iterative refinement, then a refinement of the
    reprojection error weighted by `weights` (K,) (default: FIVE_POINT_WEIGHTS for five points, else equal)."""
    img = np.ascontiguousarray(points_xy, dtype=np.float64).reshape(-1, 1, 2)
    obj = np.ascontiguousarray(model_points_head, dtype=np.float64).reshape(-1, 1, 3)
    if img.shape[0] != obj.shape[0] or img.shape[0] < 4:
        raise RegazeError(f"head pose: need the same number (>= 4) of landmarks and model points; got "
                          f"{img.shape[0]} and {obj.shape[0]}")
    if weights is None:
        weights = FIVE_POINT_WEIGHTS if img.shape[0] == 5 else np.ones(img.shape[0])
    k, dist = camera.matrix, camera.dist_coeffs
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_EPNP)
    if not ok or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:  # EPnP can fail on near-planar points
        rvec, tvec = np.zeros((3, 1)), np.array([[0.0], [0.0], [600.0]])
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, rvec=rvec, tvec=tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if ok and not np.allclose(weights, weights[0]):
        # Two starts, the rigid fit and a frontal face at the distance its landmark spread implies: with
        # the mouth down-weighted the cost can have a second minimum, and the lower one wins.
        weights = np.asarray(weights, dtype=np.float64)
        spread_px = np.sqrt(((img - img.mean(0)) ** 2).sum(-1).mean())
        spread_mm = np.sqrt(((obj - obj.mean(0)) ** 2).sum(-1).mean())
        z = k[0, 0] * spread_mm / max(spread_px, 1e-6)
        centre = np.linalg.inv(k) @ np.array([*img.reshape(-1, 2).mean(0), 1.0]) * z
        starts = [(rvec, tvec), (np.zeros((3, 1)), centre.reshape(3, 1))]
        fits = [_weighted_refinement(obj, img, rvec=r, tvec=t, camera=camera, weights=weights) for r, t in starts]
        rvec, tvec = min(fits, key=lambda f: _weighted_cost(obj, img, rvec=f[0], tvec=f[1], camera=camera,
                                                             weights=weights) if f[1][2, 0] > 0 else np.inf)
    if not ok or tvec[2, 0] <= 0:
        raise RegazeError("head pose: cv2.solvePnP found no pose in front of the camera for these landmarks")
    rot = cv2.Rodrigues(rvec)[0]
    proj = cv2.projectPoints(obj, rvec, tvec, k, dist)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - img.reshape(-1, 2)) ** 2, axis=1))))
    return HeadPose(rotation=rot, face_centre_mm=tvec.ravel().astype(np.float64), reprojection_px=rms)


def normalizing_rotation(*, face_centre_mm, head_rotation) -> np.ndarray:
    """(3,) face centre and (3, 3) head rotation, camera coordinates -> (3, 3) R (rows right, down, forward)."""
    forward = np.asarray(face_centre_mm, dtype=np.float64) / np.linalg.norm(face_centre_mm)
    down = np.cross(forward, np.asarray(head_rotation)[:, 0])
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    right /= np.linalg.norm(right)
    return np.stack([right, down, forward])


def crop_camera_matrix(*, focal_px: float, size: int) -> np.ndarray:
    """The normalized camera: focal `focal_px`, principal point at the crop's centre (OpenCV pixel indices)."""
    c = (size - 1) / 2.0
    return np.array([[focal_px, 0.0, c], [0.0, focal_px, c], [0.0, 0.0, 1.0]])


def _has_distortion(camera: PhotoCamera) -> bool:
    return bool(np.any(camera.dist_coeffs != 0))


def normalize_face(image, *, pose: HeadPose, camera: PhotoCamera, focal_px: float, distance_mm: float,
                   size: int) -> NormalizedFace:
    """uint8 (H, W, 3) photo -> the normalized crop of the face at `pose` (size x size, focal focal_px at
    distance_mm: the framing of the data the model was trained on)."""
    c = pose.face_centre_mm
    rot = normalizing_rotation(face_centre_mm=c, head_rotation=pose.rotation)
    scale = np.diag([1.0, 1.0, distance_mm / np.linalg.norm(c)])
    k_norm = crop_camera_matrix(focal_px=focal_px, size=size)
    warp = k_norm @ scale @ rot @ np.linalg.inv(camera.matrix)  # (3, 3) photo -> crop
    # Crop pixels per photo pixel at the face centre; below 1 the photo is first shrunk with an area filter so
    # that the bilinear warp does not alias (a face 250 px wide into a 64-px crop).
    zoom = focal_px * np.linalg.norm(c) / (distance_mm * float(np.sqrt(camera.matrix[0, 0] * camera.matrix[1, 1])))
    src, to_src = np.asarray(image), np.eye(3)  # to_src: photo pixels -> pixels of `src`
    if zoom < 0.5:
        s = 2.0 * zoom  # twice the crop's sampling rate; bilinear does the rest (measured: 64-px crops from
        # 640 x 480 frames, +0.8 dB over warping the full photo, benchmarks/photo_normalization.py)
        h, w = src.shape[:2]
        nw, nh = max(int(round(w * s)), 1), max(int(round(h * s)), 1)
        sx, sy = nw / w, nh / h
        src = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
        to_src = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])  # pixel centres
    if _has_distortion(camera):  # sample through the lens model: crop pixel -> ray -> distorted photo pixel
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
        pix = np.stack([xs.ravel(), ys.ravel(), np.ones(size * size)])  # (3, S*S)
        rays = (rot.T @ np.linalg.inv(k_norm @ scale) @ pix).T  # (S*S, 3) camera coordinates
        proj = cv2.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.matrix, camera.dist_coeffs)[0]
        proj = proj.reshape(-1, 2) * np.diag(to_src)[:2] + to_src[:2, 2]
        maps = proj.reshape(size, size, 2).astype(np.float32)
        crop = cv2.remap(src, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        crop = cv2.warpPerspective(src, warp @ np.linalg.inv(to_src), (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
    head_norm = rot @ pose.rotation
    return NormalizedFace(crop=crop, warp=warp, rotation=rot, head_pitchyaw_rad=head_matrix_to_pitchyaw(head_norm),
                          head_rotation_norm=head_norm, pose=pose, camera=camera, focal_px=float(focal_px),
                          distance_mm=float(distance_mm))


def denormalize(crop, *, norm: NormalizedFace, photo_shape, mask_crop=None) -> tuple[np.ndarray, np.ndarray]:
    """A crop in `norm`'s normalized camera -> (photo-sized (H, W, 3) image of the crop's dtype (uint8, or float32
    for a difference of crops), float32 (H, W) mask in [0, 1]): each photo pixel samples the crop at W p (the
    inverse of normalize_face's warp). mask_crop (S, S) float (default: all ones) goes through the same warp; the
    mask is exactly 0 where the crop does not reach."""
    h, w = photo_shape[:2]
    size = crop.shape[0]
    mask_crop = np.ones((size, size), np.float32) if mask_crop is None else np.asarray(mask_crop, np.float32)
    if _has_distortion(norm.camera):  # photo pixel -> undistorted ray -> crop pixel
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        pts = np.stack([xs.ravel(), ys.ravel()], -1).reshape(-1, 1, 2)
        und = cv2.undistortPoints(pts, norm.camera.matrix, norm.camera.dist_coeffs, P=norm.camera.matrix).reshape(-1, 2)
        q = norm.warp @ np.concatenate([und, np.ones((len(und), 1))], 1).T  # (3, H*W)
        with np.errstate(divide="ignore", invalid="ignore"):
            mx = np.where(q[2] > 0, q[0] / q[2], -1.0).reshape(h, w).astype(np.float32)
            my = np.where(q[2] > 0, q[1] / q[2], -1.0).reshape(h, w).astype(np.float32)
        back = cv2.remap(crop, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask = cv2.remap(mask_crop, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        back = cv2.warpPerspective(crop, norm.warp, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask = cv2.warpPerspective(mask_crop, norm.warp, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=0)
    return back, np.clip(mask, 0.0, 1.0)


def blend(photo, *, back, mask) -> np.ndarray:
    """uint8 photo, uint8 back-warped crop, (H, W) mask in [0, 1] -> uint8 photo; pixels where the mask is 0
    are the photo's own bytes."""
    photo = np.asarray(photo)
    m = np.asarray(mask, np.float32)[..., None]
    mixed = np.clip(np.round(photo.astype(np.float32) * (1.0 - m) + back.astype(np.float32) * m), 0, 255).astype(np.uint8)
    return np.where(m > 0, mixed, photo)


def blend_residual(photo, *, delta, mask) -> np.ndarray:
    """uint8 photo + mask * delta, where delta (H, W, 3) float is the back-warped change of the crop (redirected
    minus source): the photo keeps its own detail and resolution and receives only the change; pixels where the
    mask is 0 are the photo's own bytes."""
    photo = np.asarray(photo)
    m = np.asarray(mask, np.float32)[..., None]
    mixed = np.clip(np.round(photo.astype(np.float32) + m * np.asarray(delta, np.float32)), 0, 255).astype(np.uint8)
    return np.where(m > 0, mixed, photo)


def _raised_cosine(r: np.ndarray) -> np.ndarray:
    """r <= 0: 1; 0 < r < 1: a smooth fall; r >= 1: exactly 0."""
    return np.where(r <= 0, 1.0, np.where(r >= 1, 0.0, 0.5 * (1.0 + np.cos(np.pi * np.clip(r, 0.0, 1.0)))))


def face_blend_mask(*, size: int, inner: float = 0.78, outer: float = 0.98) -> np.ndarray:
    """(S, S) float32: 1 inside an ellipse of `inner` x the crop's half-size, falling to exactly 0 at `outer`
    (the crop's border never shows as a seam)."""
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot((xs - c) / (c + 0.5), (ys - c) / (c + 0.5))  # 1 at the crop's edge
    return _raised_cosine((r - inner) / (outer - inner)).astype(np.float32)


def eye_blend_mask(*, eye_centres_xy, size: int, radius_px: float, feather_px: float) -> np.ndarray:
    """(2, 2) eye centres (crop pixels, OpenCV indices) -> (S, S) float32: 1 within radius_px of either eye,
    falling to exactly 0 at radius_px + feather_px."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size))
    for x, y in np.asarray(eye_centres_xy, dtype=np.float64):
        d = np.hypot(xs - x, ys - y)
        out = np.maximum(out, _raised_cosine((d - radius_px) / feather_px))
    return out.astype(np.float32)
