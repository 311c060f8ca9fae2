"""One update of the page as a plain function: AppHandler.update(face=, gaze_deg=, head_deg=, compose=) redirects
one face with Redirector.redirect and returns source, redirected image and the source angles the model read.

No server or browser is involved, so tests and benchmarks call it directly; page.py wires it to Gradio's events.
"""
from __future__ import annotations

import math
import secrets
import threading
from collections import OrderedDict

import numpy as np

from regaze.app.faces import SampleFace, sample_faces, upload_crop
from regaze.errors import RegazeError

__all__ = ["AppHandler", "COMPOSE_CHOICES", "SLIDER_RANGES_DEG"]

# slider -> (min, max) degrees
SLIDER_RANGES_DEG = {"gaze_pitch": (-40, 40), "gaze_yaw": (-40, 40), "head_pitch": (-30, 30), "head_yaw": (-45, 45)}
# page choice -> (Redirector.redirect compose, label). "auto" is the eye composite wherever the head does not move
# (a head change needs the decoder's whole image).
COMPOSE_CHOICES = {"eyes": ("auto", "eye composite (decoder image when the head moves)"),
                   "decode": ("decode", "decoder image")}
MAX_UPLOADS = 16  # uploads kept in memory, oldest dropped first


class AppHandler:
    """The page's state: one model, its sample faces (rendered once, on first use) and recent uploads."""

    def __init__(self, model, *, sample_count: int = 6, finder=None):
        self.model = model
        self.size = int(model.config.image_size)
        self._sample_count = sample_count
        self._samples: list[SampleFace] | None = None
        self._uploads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._finder = finder
        self._lock = threading.Lock()  # one model call at a time; Gradio answers events in threads

    @property
    def samples(self) -> list[SampleFace]:
        if self._samples is None:
            self._samples = sample_faces(size=self.size, count=self._sample_count)
        return self._samples

    def face_choices(self) -> list[dict]:
        """[{"face": key, "name": label}] for the page's face list."""
        return [{"face": f"sample:{i}", "name": s.name} for i, s in enumerate(self.samples)]

    def face_image(self, face: str) -> np.ndarray:
        """A face key ("sample:I" or "upload:TOKEN") -> its (S, S, 3) uint8 image."""
        kind, _, ident = str(face).partition(":")
        if kind == "sample" and ident.isdigit() and int(ident) < len(self.samples):
            return self.samples[int(ident)].image
        if kind == "upload" and ident in self._uploads:
            return self._uploads[ident]
        raise RegazeError(f"unknown face {face!r} (an upload is kept for the last {MAX_UPLOADS} only; upload again)")

    def add_upload(self, data: bytes) -> dict:
        """File bytes -> {"face": key, "note": how the crop was made}; UploadError (with the page's message)."""
        crop, note = upload_crop(data, model=self.model, finder=self._finder_for_photos())
        token = secrets.token_hex(8)
        self._uploads[token] = crop
        while len(self._uploads) > MAX_UPLOADS:
            self._uploads.popitem(last=False)
        return {"face": f"upload:{token}", "note": note}

    def _finder_for_photos(self):
        if self._finder is None:
            try:  # needs the photo extra; without it upload_crop says so for photos (crops need none)
                from regaze.data.photo.face_finder import face_finder

                self._finder = face_finder()
            except (ImportError, RegazeError):
                return None
        return self._finder

    def update(self, *, face: str, gaze_deg=None, head_deg=None, compose: str = "eyes") -> dict:
        """Redirect `face` to gaze_deg / head_deg ((pitch, yaw) degrees, None keeps that feature).

        Returns {"source": (S, S, 3) uint8, "redirected": (S, S, 3) uint8, "source_gaze_deg": (p, y),
        "source_head_deg": (p, y), "compose": the Redirector compose used} — the image is exactly
        Redirector.redirect(source, gaze=radians(gaze_deg), head=radians(head_deg), compose=...)."""
        if compose not in COMPOSE_CHOICES:
            raise RegazeError(f"compose must be one of {sorted(COMPOSE_CHOICES)}; found {compose!r}")
        gaze = _radians(gaze_deg, "gaze")
        head = _radians(head_deg, "head")
        source = self.face_image(face)
        mode = COMPOSE_CHOICES[compose][0]
        with self._lock:
            out, sources = self.model.redirect(source, gaze=gaze, head=head, compose=mode)
        return {"source": source, "redirected": out, "compose": mode,
                "source_gaze_deg": tuple(round(math.degrees(float(v)), 2) for v in sources["gaze"]),
                "source_head_deg": tuple(round(math.degrees(float(v)), 2) for v in sources["head"])}


def _radians(value_deg, name: str):
    """(pitch, yaw) degrees inside the sliders' ranges -> a (2,) float64 array in radians; None stays None."""
    if value_deg is None:
        return None
    try:
        pitch, yaw = (float(v) for v in value_deg)
    except (TypeError, ValueError) as e:
        raise RegazeError(f"{name} must be (pitch, yaw) in degrees; found {value_deg!r}") from e
    for part, v in (("pitch", pitch), ("yaw", yaw)):
        lo, hi = SLIDER_RANGES_DEG[f"{name}_{part}"]
        if not (math.isfinite(v) and lo <= v <= hi):
            raise RegazeError(f"{name} {part} must be in [{lo}, {hi}] degrees; found {v}")
    return np.radians([pitch, yaw])
