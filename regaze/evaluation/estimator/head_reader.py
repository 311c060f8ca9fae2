"""A trained estimator as the head-pose reader of the photo chain (regaze/data/photo/head_refinement.py).

    reader = estimator_head_reader("runs/estimator64")   # `regaze normalize --head-estimator runs/estimator64`
    reader = estimator_head_reader("synth64")            # the shipped one: regaze/reference/head_reader64/

It reads the head direction off normalized crops in the framing of the data it was trained on (its config's
focal_px, distance_mm, image_size), so it is right for faces like those: an estimator trained on synthetic faces
corrects the landmark fit on synthetic faces; for photos of people it has to be trained on normalized crops of
people (`regaze normalize` + `regaze estimator train`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regaze.errors import RegazeError
from regaze.geometry import pitchyaw_to_vector, vector_to_pitchyaw
from regaze.evaluation.estimator.network import GazeHeadEstimator, estimate
from regaze.evaluation.estimator.store import DEFAULT_MAX_VAL_ERROR_DEG, load_estimator

__all__ = ["EstimatorHeadReader", "estimator_head_reader", "SHIPPED_HEAD_READERS"]

# Head readers shipped as package data, by name (regaze/reference/README.md). synth64: trained on regaze synth
# 64 px faces with turned and zoomed crops; for synthetic faces only.
SHIPPED_HEAD_READERS = {"synth64": Path(__file__).resolve().parents[2] / "reference" / "head_reader64"}


@dataclass
class EstimatorHeadReader:
    model: GazeHeadEstimator
    focal_px: float
    distance_mm: float
    size: int
    about: str

    def read(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S, 3) -> (n, 2) head (pitch, yaw) rad in the crops' normalized camera: the mean of the
        readings of each crop and of its mirror image (yaw negated back; the mirror is exact in a normalized
        image, whose principal point is its centre), as unit vectors."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.size, self.size, 3):
            raise RegazeError(f"head reader: expected (n, {self.size}, {self.size}, 3) crops, got {crops.shape}")
        n = len(crops)
        both = estimate(self.model, np.concatenate([crops, crops[:, :, ::-1]]))["head"].astype(np.float64)  # (2n, 2)
        mirrored = both[n:] * np.array([1.0, -1.0])
        mean = pitchyaw_to_vector(both[:n]) + pitchyaw_to_vector(mirrored)  # (n, 3)
        return vector_to_pitchyaw(mean)


def estimator_head_reader(path, *, device="cpu") -> EstimatorHeadReader:
    """DIR/estimator.pt (a validated `regaze estimator train` checkpoint), or the name of a shipped reader
    (SHIPPED_HEAD_READERS; a name wins over a folder of that name: write ./synth64 for the folder) -> its head
    reader. RegazeError when
    it is missing, records no validation head error or one above DEFAULT_MAX_VAL_ERROR_DEG (only the head
    counts: a reader trained with turned crops places its eye crops badly and its gaze is not used), or records
    no framing of its training data."""
    path = SHIPPED_HEAD_READERS.get(str(path), path)
    model, info = load_estimator(path, device=device, allow_untrained=True)  # the head error is checked here
    val = info.get("val") or {}
    head_err = float(val.get("head_err_deg", float("nan")))
    if not math.isfinite(head_err) or head_err > DEFAULT_MAX_VAL_ERROR_DEG:
        raise RegazeError(f"{info['checkpoint']}: refusing this estimator as a head reader: its validation head error "
                          f"is {head_err:.2f} deg (missing, or above {DEFAULT_MAX_VAL_ERROR_DEG:g} deg); train it with "
                          f"`regaze estimator train`")
    cfg = info["config"]
    if not cfg.get("focal_px") or not cfg.get("distance_mm"):
        raise RegazeError(f"{info['checkpoint']}: this estimator records no framing (focal_px, distance_mm) of its "
                          f"training data, so its crops cannot be cut; retrain it with `regaze estimator train`")
    shipped = [name for name, folder in SHIPPED_HEAD_READERS.items() if Path(path) == folder]
    what = (f"the shipped {shipped[0]} reader (regaze/reference/{Path(path).name})" if shipped
            else f"the estimator {Path(info['checkpoint']).parent}")
    about = (f"head pose read by {what} (trained on {info.get('data')}; "
             f"validation head error {head_err:.2f} deg)")
    return EstimatorHeadReader(model=model, focal_px=float(cfg["focal_px"]), distance_mm=float(cfg["distance_mm"]),
                               size=int(cfg["image_size"]), about=about)
