"""The head pose from the face's appearance: a landmark fit corrected by a head-pose reader of normalized crops.

    reader = estimator_head_reader("synth64")  # regaze/evaluation/estimator/head_reader.py (the shipped one)
    pose = refine_head_pose(image, pose=landmark_pose, camera=camera, reader=reader)

Why: five landmarks fitted to a generic 3-D face cannot tell the face's shape from its pose (a deep nose reads
as a turned head), so the fit's head direction is several degrees off even with exact landmarks
(docs/RESULTS.md, issue 14). A network trained on normalized crops of the same kind of faces reads the head
direction from the whole face. The landmark fit still gives what appearance cannot: where the face is (its
centre and distance, which place the crop) and the roll (the eye line). Optionally (points_xy and
model_points_head given) each round also re-fits the face centre to the landmarks with the head's rotation held
at its reading (a turned head moves where the fit puts the centre). `regaze normalize` does not: on the webcam
benchmark (benchmarks/photo_normalization.py, rows "..._read_refit_deg") the re-fit raised the median head error
(2.46 -> 2.54 deg with the synthetic face model, 2.53 -> 2.85 with the human one) and moved the mean by less
than 0.05 deg, so the fit's centre is kept.

Each round: cut the crop in the reader's own normalized camera (focal, distance, size of the data it was
trained on) at the current pose, read the head direction h there, and turn the head by the smallest rotation
that takes its forward axis to h (in the normalized camera, then back to the photo's camera); the next round
cuts the crop again at the new pose, whose level x axis has moved a little. The reader is only as good as its
training data: one trained on synthetic faces is right for synthetic faces, not for photos of people.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from regaze.data.photo.intrinsics import PhotoCamera
from regaze.data.photo.normalization import FIVE_POINT_WEIGHTS, HeadPose, normalize_face

__all__ = ["HeadReader", "refine_head_pose", "turn_forward_axis", "fit_face_centre"]


class HeadReader(Protocol):
    """Reads the head direction off normalized crops of its own framing."""

    focal_px: float  # the normalized camera of the crops it reads
    distance_mm: float
    size: int
    about: str  # one line for the output: what it is and what it was trained on

    def read(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S, 3) RGB crops -> (n, 2) head (pitch, yaw) rad in their normalized camera."""
        ...


def turn_forward_axis(rotation, *, target_pitchyaw) -> np.ndarray:
    """(3, 3) head rotation M (normalized camera) -> Q M, Q the smallest rotation taking M's forward axis
    z = M[:, 2] to the axis of (pitch, yaw) (z = [cos p sin y, sin p, cos p cos y], geometry.head_matrix_to_pitchyaw
    read backwards); the roll about the axis is what the turn leaves."""
    m = np.asarray(rotation, np.float64)
    p, y = np.asarray(target_pitchyaw, np.float64)
    z, t = m[:, 2], np.array([np.cos(p) * np.sin(y), np.sin(p), np.cos(p) * np.cos(y)])
    axis, c = np.cross(z, t), float(np.clip(z @ t, -1.0, 1.0))
    s = float(np.linalg.norm(axis))
    if s < 1e-12:
        return m.copy()  # already there (an opposite axis, 180 deg, cannot come from a face reader)
    k = axis / s
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    q = np.eye(3) + s * kx + (1.0 - c) * (kx @ kx)  # Rodrigues: angle atan2(s, c) about k
    return q @ m


def fit_face_centre(*, points_xy, model_points_head, rotation, camera: PhotoCamera, weights=None) -> np.ndarray:
    """(K, 2) landmarks (pixels), (K, 3) model points (head mm), (3, 3) head rotation held fixed -> (3,) the face
    centre t (camera mm) that best places R X_k + t on the landmarks. With undistorted normalized image points
    (x_k, y_k) the projection x_k (Z'_k + t_z) = X'_k + t_x (X' = R X) is linear in t: weighted least squares
    (weights (K,), default FIVE_POINT_WEIGHTS for five points, else equal)."""
    import cv2

    pts = np.ascontiguousarray(points_xy, np.float64).reshape(-1, 1, 2)
    xy = cv2.undistortPoints(pts, camera.matrix, camera.dist_coeffs).reshape(-1, 2)  # (K, 2) normalized coordinates
    obj = np.asarray(model_points_head, np.float64) @ np.asarray(rotation, np.float64).T  # (K, 3) R X_k
    if weights is None:
        weights = FIVE_POINT_WEIGHTS if len(obj) == 5 else np.ones(len(obj))
    w = np.sqrt(np.repeat(np.asarray(weights, np.float64), 2))  # (2K,)
    a = np.zeros((2 * len(obj), 3))
    a[0::2, 0], a[0::2, 2] = 1.0, -xy[:, 0]
    a[1::2, 1], a[1::2, 2] = 1.0, -xy[:, 1]
    b = np.empty(2 * len(obj))
    b[0::2] = xy[:, 0] * obj[:, 2] - obj[:, 0]
    b[1::2] = xy[:, 1] * obj[:, 2] - obj[:, 1]
    return np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0]


def refine_head_pose(image, *, pose: HeadPose, camera: PhotoCamera, reader: HeadReader, rounds: int = 3,
                     points_xy=None, model_points_head=None) -> HeadPose:
    """uint8 (H, W, 3) photo and a landmark fit -> the pose with its head direction read by `reader` (`rounds`
    crops and readings). With points_xy (K, 2) and model_points_head (K, 3), the fit's own landmarks and 3-D
    model, the face centre is re-fitted after each reading (fit_face_centre); without them it is kept."""
    for _ in range(rounds):
        norm = normalize_face(image, pose=pose, camera=camera, focal_px=reader.focal_px,
                              distance_mm=reader.distance_mm, size=reader.size)
        head = np.asarray(reader.read(norm.crop[None]), np.float64)[0]  # (2,) normalized camera
        turned = turn_forward_axis(norm.head_rotation_norm, target_pitchyaw=head)  # R hR', normalized camera
        rotation = norm.rotation.T @ turned  # (3, 3) head -> photo camera
        centre = pose.face_centre_mm
        if points_xy is not None and model_points_head is not None:
            centre = fit_face_centre(points_xy=points_xy, model_points_head=model_points_head, rotation=rotation,
                                     camera=camera)
        pose = HeadPose(rotation=rotation, face_centre_mm=centre, reprojection_px=pose.reprojection_px)
    return pose
