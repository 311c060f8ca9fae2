"""Normalization presets: the normalized camera (focal length, face distance) and crop size of the data sets
users train on (DESIGN §5), and the synthetic framing of regaze's own renders and shipped model.

    preset = NORMALIZATION_PRESETS["eth-xgaze"]         # f 960 px, 600 mm, 224 px
    preset = preset_for_model(model)                    # the framing a trained model's data had
"""
from __future__ import annotations

from dataclasses import dataclass

from regaze.data.synth.camera import CAMERA_DISTANCE_MM, focal_px as synth_focal_px
from regaze.errors import RegazeError

__all__ = ["NormalizationPreset", "NORMALIZATION_PRESETS", "preset_for_model", "preset_by_name"]


@dataclass(frozen=True)
class NormalizationPreset:
    name: str
    focal_px: float  # of the normalized camera, for crops of `size` px
    distance_mm: float  # the face centre's distance in the normalized camera
    size: int  # crop side, px
    about: str

    def to_dict(self) -> dict:
        return {"name": self.name, "focal_px": self.focal_px, "distance_mm": self.distance_mm, "size": self.size,
                "about": self.about}


NORMALIZATION_PRESETS = {p.name: p for p in (
    NormalizationPreset("eth-xgaze", 960.0, 600.0, 224, "ETH-XGaze face patches (its demo.py)"),
    NormalizationPreset("st-ed", 500.0, 600.0, 128, "ST-ED / FAZE preprocessing of GazeCapture and MPIIFaceGaze"),
    NormalizationPreset("synth64", synth_focal_px(64), CAMERA_DISTANCE_MM, 64,
                        "regaze synth at 64 px (the shipped reference model's framing)"),
    NormalizationPreset("synth128", synth_focal_px(128), CAMERA_DISTANCE_MM, 128, "regaze synth at 128 px"),
)}
NORMALIZATION_PRESETS["gazecapture"] = NORMALIZATION_PRESETS["st-ed"]


def preset_by_name(name: str) -> NormalizationPreset:
    if name not in NORMALIZATION_PRESETS:
        raise RegazeError(f"unknown normalization preset {name!r}; choose one of {sorted(NORMALIZATION_PRESETS)}")
    return NORMALIZATION_PRESETS[name]


def preset_for_model(model) -> NormalizationPreset:
    """The normalized camera a trained Redirector's data had (model.framing, model.config.image_size)."""
    size = int(model.config.image_size)
    framing = getattr(model, "framing", None)
    if framing is None:
        raise RegazeError("this model records no framing (focal length, distance) of its training data")
    return NormalizationPreset("model", float(framing.focal_px), float(framing.distance_mm), size,
                               "the framing of the model's training data")
