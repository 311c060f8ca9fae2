"""Faces and five landmarks in a photo: the one small interface every detector backend implements.

    finder = face_finder("mtcnn")               # FACE_FINDERS names the backends
    faces = finder.find(image_rgb)              # uint8 (H, W, 3) RGB -> list[Face], best first

Points follow one order for every backend (FIVE_POINTS): the subject's right eye centre (on the image's left
for a face that looks at the camera), the left eye centre, the nose tip, the right and the left mouth corner,
in continuous pixel coordinates (x, y) with pixel (i, j) covering [j, j + 1) x [i, i + 1). A backend that
needs an optional package raises RegazeError naming the package and the extra that installs it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from regaze.errors import RegazeError

__all__ = ["Face", "FaceFinder", "FIVE_POINTS", "FACE_FINDERS", "face_finder", "largest_face"]

FIVE_POINTS = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")


@dataclass(frozen=True)
class Face:
    box_xyxy: np.ndarray  # (4,) float64 x0, y0, x1, y1 in pixels
    points_xy: np.ndarray  # (5, 2) float64, FIVE_POINTS order
    score: float  # the detector's confidence in [0, 1]

    @property
    def area_px(self) -> float:
        x0, y0, x1, y1 = self.box_xyxy
        return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))

    def to_dict(self) -> dict:
        return {"box_xyxy": [round(float(v), 2) for v in self.box_xyxy], "score": round(float(self.score), 4),
                "points_xy": {name: [round(float(v), 2) for v in p] for name, p in zip(FIVE_POINTS, self.points_xy)}}


class FaceFinder(Protocol):
    name: str

    def find(self, image_rgb: np.ndarray) -> list[Face]:
        """uint8 (H, W, 3) RGB -> the faces found, highest score first."""


def _mtcnn() -> FaceFinder:
    from regaze.data.photo.mtcnn import MtcnnFaceFinder

    return MtcnnFaceFinder()


# name -> factory; add a backend here (its module imports its optional package lazily)
FACE_FINDERS: dict[str, Callable[[], FaceFinder]] = {"mtcnn": _mtcnn}


def face_finder(name: str = "mtcnn") -> FaceFinder:
    if name not in FACE_FINDERS:
        raise RegazeError(f"unknown face finder {name!r}; available: {sorted(FACE_FINDERS)}")
    return FACE_FINDERS[name]()


def largest_face(faces: list[Face]) -> list[Face]:
    """The face with the largest box, as a list of at most one."""
    return [max(faces, key=lambda f: f.area_px)] if faces else []
