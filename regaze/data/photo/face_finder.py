"""Faces and five landmarks in a photo: the one small interface every detector backend implements.

    finder = face_finder("mtcnn")               # FACE_FINDERS names the backends
    faces = finder.find(image_rgb)              # uint8 (H, W, 3) RGB -> list[Face], best first

Points follow one order for every backend (FIVE_POINTS): the subject's right eye centre (on the image's left
for a face that looks at the camera), the left eye centre, the nose tip, the right and the left mouth corner,
in OpenCV's pixel coordinates (x, y): pixel (i, j) has its centre at (j, i). A backend that
needs an optional package raises RegazeError naming the package and the extra that installs it.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from regaze.data.photo.face_box import FIVE_POINTS, Face
from regaze.errors import RegazeError

__all__ = ["Face", "FaceFinder", "FIVE_POINTS", "FACE_FINDERS", "face_finder", "largest_face"]


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
