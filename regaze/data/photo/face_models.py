"""The generic 3-D face models `regaze normalize` fits the five landmarks to (`--face-model`).

- human: HUMAN_FIVE_POINTS_HEAD (normalization.py), symmetrised from ETH-XGaze's mean face: for photos of people;
- synthetic: the mean face of regaze's renderer (regaze/data/synth/camera_frame.py MEAN_FACE_LANDMARKS_HEAD),
  for the synthetic renders, whose proportions differ from a person's (eyes wider apart, flatter nose).
Fitting a face to the wrong model tilts the head estimate by several degrees (docs/RESULTS.md, issue 14)."""
from __future__ import annotations

import numpy as np

from regaze.errors import RegazeError

FACE_MODELS = ("human", "synthetic")


def face_model_points(name: str) -> np.ndarray:
    """name in FACE_MODELS -> (5, 3) FIVE_POINTS in head coordinates (mm, origin = face centre)."""
    if name == "human":
        from regaze.data.photo.normalization import HUMAN_FIVE_POINTS_HEAD

        return HUMAN_FIVE_POINTS_HEAD.copy()
    if name == "synthetic":
        from regaze.data.synth.camera_frame import MEAN_FACE_LANDMARKS_HEAD  # averaged once, at import (~0.1 s)

        return MEAN_FACE_LANDMARKS_HEAD[:5].copy()
    raise RegazeError(f"unknown face model {name!r}; choose from {', '.join(FACE_MODELS)}")
