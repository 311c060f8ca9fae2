"""The normalized camera (framing) of each on-disk format: focal length and face distance of the images,
recorded by every reader in the dataset's attributes so that eye masks, eye-weighted losses and the
estimator's eye crops land on the eyes whatever the file came from.

    attrs["camera_focal_px"]     focal length in pixels, for the file's own image size
    attrs["camera_distance_mm"]  distance of the face centre from the normalized camera, mm
    attrs["camera_framing"]      where the two numbers come from (the file itself, or the format's preset)

regaze.model.framing.framing_from_attrs reads the first two. Presets (DESIGN §5; the normalization scripts
that produced the public files):

| format                                   | focal f (px) | distance (mm) | at crop (px) | script                       |
| ETH-XGaze face patches                   | 960          | 600           | 224          | ETH-XGaze demo.py            |
| ST-ED / GazeCapture, MPIIFaceGaze (FAZE) | 500          | 600           | 128          | create_hdf_files_for_sted.py |

A focal length scales with the image: f(S) = f · S / crop. A regaze file keeps the camera it was written
with; one without camera attributes takes the preset of the layout it was converted from
(attribute `source_layout`), and otherwise ETH-XGaze's, said so in camera_framing ("assumed").
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FormatCamera", "ETH_XGAZE", "STED", "FRAMING_ATTRS", "camera_attrs", "regaze_camera_attrs",
           "scale_camera_attrs"]

FRAMING_ATTRS = ("camera_focal_px", "camera_distance_mm", "camera_framing")


@dataclass(frozen=True)
class FormatCamera:
    """A format's normalization: focal_px at crop_px pixels, face at distance_mm."""

    name: str
    focal_px: float
    distance_mm: float
    crop_px: int

    def attrs(self, *, size: int, assumed: bool = False) -> dict:
        """The FRAMING_ATTRS for images of `size` pixels."""
        what = f"{self.name} normalization (f {self.focal_px:g} px, d {self.distance_mm:g} mm at {self.crop_px} px)"
        return {"camera_focal_px": self.focal_px * size / self.crop_px, "camera_distance_mm": self.distance_mm,
                "camera_framing": ("assumed: " if assumed else "") + what}


ETH_XGAZE = FormatCamera("ETH-XGaze", focal_px=960.0, distance_mm=600.0, crop_px=224)
STED = FormatCamera("ST-ED/GazeCapture faze_preprocess", focal_px=500.0, distance_mm=600.0, crop_px=128)
_BY_LAYOUT = {"ethxgaze": ETH_XGAZE, "sted": STED}


def camera_attrs(layout: str, *, size: int) -> dict:
    """The preset framing of an ETH-XGaze ('ethxgaze') or ST-ED/FAZE ('sted') file of `size`-pixel images."""
    return _BY_LAYOUT[layout].attrs(size=size)


def regaze_camera_attrs(attrs: dict, *, size: int) -> dict:
    """A regaze file's framing: its own camera attributes, else its source layout's preset, else ETH-XGaze's
    (assumed)."""
    if "camera_focal_px" in attrs and "camera_distance_mm" in attrs:
        return {"camera_focal_px": float(attrs["camera_focal_px"]), "camera_distance_mm": float(attrs["camera_distance_mm"]),
                "camera_framing": str(attrs.get("camera_framing", "the file's camera attributes"))}
    source = _BY_LAYOUT.get(str(attrs.get("source_layout", "")))
    if source is not None:
        return source.attrs(size=size)
    return ETH_XGAZE.attrs(size=size, assumed=True)


def scale_camera_attrs(attrs: dict, *, from_size: int, to_size: int) -> dict:
    """FRAMING_ATTRS of images resized from `from_size` to `to_size` pixels (the focal length scales)."""
    out = {k: attrs[k] for k in FRAMING_ATTRS if k in attrs}
    if "camera_focal_px" in out:
        out["camera_focal_px"] = float(out["camera_focal_px"]) * to_size / from_size
    return out
