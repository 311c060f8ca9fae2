"""One face found in a photo: its box, its five landmarks in FIVE_POINTS order and the detector's score."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Face", "FIVE_POINTS"]

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
