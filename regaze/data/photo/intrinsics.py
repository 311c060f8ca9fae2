"""The photo's camera: its matrix K and lens distortion, read from a file or a documented default.

    camera = read_camera_file("cam.json")         # or an OpenCV calibration file (.xml / .yml / .yaml)
    camera = default_camera(width=640, height=480)  # no file: f = max(width, height) px, centred, no distortion

JSON: {"camera_matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "dist_coeffs": [k1, k2, p1, p2, k3]}, or the
flat keys fx, fy, cx, cy (dist_coeffs optional). OpenCV FileStorage (what cv2 calibration samples write and
ETH-XGaze's cam*.xml are): the matrix under Camera_Matrix / camera_matrix / K, the distortion under
Distortion_Coefficients / distortion_coefficients / dist_coeffs / D. Principal point in pixel coordinates
where pixel (i, j) covers [j, j + 1) x [i, i + 1), as OpenCV uses them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from regaze.errors import RegazeError

__all__ = ["PhotoCamera", "read_camera_file", "default_camera", "DEFAULT_FOCAL_RULE"]

DEFAULT_FOCAL_RULE = "f = max(width, height) px (about 53 deg across the longer side), principal point at the " \
                     "image centre, no distortion"
_MATRIX_KEYS = ("Camera_Matrix", "camera_matrix", "cameraMatrix", "K")
_DIST_KEYS = ("Distortion_Coefficients", "distortion_coefficients", "dist_coeffs", "distCoeffs", "D")


@dataclass(frozen=True)
class PhotoCamera:
    matrix: np.ndarray  # (3, 3) float64 K
    dist_coeffs: np.ndarray = field(default_factory=lambda: np.zeros(5))  # (k,) float64, OpenCV order
    source: str = "default"  # the file it came from, or the default rule

    def to_dict(self) -> dict:
        return {"camera_matrix": self.matrix.tolist(), "dist_coeffs": self.dist_coeffs.tolist(), "source": self.source}


def default_camera(*, width: int, height: int) -> PhotoCamera:
    f = float(max(width, height))
    k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return PhotoCamera(matrix=k, source=f"default for {width}x{height}: {DEFAULT_FOCAL_RULE}")


def _checked(matrix, dist, *, path: Path) -> PhotoCamera:
    try:
        k = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        d = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise RegazeError(f"{path}: the camera matrix must be 3 x 3 numbers and the distortion a list of "
                          f"numbers ({e})") from e
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(d))):
        raise RegazeError(f"{path}: the camera matrix or distortion holds a non-finite number")
    if k[0, 0] <= 0 or k[1, 1] <= 0 or k[1, 0] != 0 or not np.allclose(k[2], [0, 0, 1]):
        raise RegazeError(f"{path}: not a camera matrix (expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, "
                          f"fy > 0); found {k.tolist()}")
    if d.size not in (0, 4, 5, 8, 12, 14):
        raise RegazeError(f"{path}: {d.size} distortion coefficients; OpenCV takes 4, 5, 8, 12 or 14")
    return PhotoCamera(matrix=k, dist_coeffs=d if d.size else np.zeros(5), source=str(path))


def _read_json(path: Path) -> PhotoCamera:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RegazeError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(data, dict):
        raise RegazeError(f"{path}: expected a JSON object with camera_matrix (or fx, fy, cx, cy)")
    dist = data.get("dist_coeffs", data.get("distortion"))
    if "camera_matrix" in data:
        return _checked(data["camera_matrix"], dist, path=path)
    if all(k in data for k in ("fx", "fy", "cx", "cy")):
        m = [[data["fx"], 0, data["cx"]], [0, data["fy"], data["cy"]], [0, 0, 1]]
        return _checked(m, dist, path=path)
    raise RegazeError(f"{path}: no camera_matrix and no fx, fy, cx, cy; found keys {sorted(data)}")


def _read_opencv(path: Path) -> PhotoCamera:
    try:  # a file OpenCV cannot parse surfaces as cv2.error, or as SystemError from its bindings
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as e:
        raise RegazeError(f"{path}: OpenCV cannot parse it as a calibration file (XML / YAML FileStorage; {e})") from e
    try:
        if not fs.isOpened():
            raise RegazeError(f"{path}: OpenCV cannot parse it as a calibration file (XML / YAML FileStorage)")
        matrix = next((fs.getNode(k).mat() for k in _MATRIX_KEYS if not fs.getNode(k).empty()), None)
        dist = next((fs.getNode(k).mat() for k in _DIST_KEYS if not fs.getNode(k).empty()), None)
    except cv2.error as e:
        raise RegazeError(f"{path}: OpenCV cannot parse it ({e.msg.strip() if hasattr(e, 'msg') else e})") from e
    finally:
        fs.release()
    if matrix is None:
        raise RegazeError(f"{path}: no camera matrix under any of {list(_MATRIX_KEYS)}")
    return _checked(matrix, dist, path=path)


def read_camera_file(path) -> PhotoCamera:
    path = Path(path)
    if not path.is_file():
        raise RegazeError(f"--camera {path}: no such file")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    if path.suffix.lower() in (".xml", ".yml", ".yaml"):
        try:
            return _read_opencv(path)
        except cv2.error as e:
            raise RegazeError(f"{path}: OpenCV cannot parse it as a calibration file ({e})") from e
    raise RegazeError(f"--camera {path}: expected a .json, .xml, .yml or .yaml file")
