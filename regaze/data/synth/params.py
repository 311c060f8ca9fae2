"""Parameter vectors of the synthetic faces: identity (fixed per subject) and session (light, background,
camera), their names, units and samplers.

A parameter vector is a float32 row; its columns are named by IDENTITY_PARAMS / SESSION_PARAMS. Lengths
are millimetres (`_mm`), angles radians (`_rad`), colours RGB albedo/radiance in [0, 1], the rest unitless.
Seeds are integers below 2**24 so that float32 stores them exactly: re-rendering a stored vector gives
identical bytes.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "IDENTITY_PARAMS",
    "SESSION_PARAMS",
    "SEED_LIMIT",
    "sample_identities",
    "sample_sessions",
    "columns",
]

SEED_LIMIT = 2**24  # float32 holds every integer below this exactly

# name -> (low, high) of the uniform sampler; colours and the glasses flag are drawn separately below.
_IDENTITY_RANGES = {
    "head_width_mm": (70.0, 80.0),  # cranium half-width
    "head_height_mm": (96.0, 108.0),  # cranium half-height
    "head_depth_mm": (94.0, 104.0),  # cranium half-depth
    "jaw_width_mm": (54.0, 68.0),  # lower-face half-width
    "chin_length_mm": (40.0, 52.0),  # mouth line -> bottom of the chin
    "cheek_width_mm": (54.0, 70.0),  # cheekbone prominence and spread
    "nose_length_mm": (40.0, 52.0),  # root (eye level) -> tip, vertical
    "nose_width_mm": (26.0, 38.0),  # across the alae
    "nose_protrusion_mm": (16.0, 23.0),  # tip in front of the upper lip
    "brow_height_mm": (11.0, 17.0),  # brow centre line above the eye centre
    "brow_thickness_mm": (2.8, 5.5),
    "brow_darkness": (0.55, 1.0),  # 0 = skin colour, 1 = hair colour darkened
    "mouth_width_mm": (44.0, 56.0),
    "lip_fullness_mm": (3.0, 6.5),  # height of each lip
    "lip_redness": (0.0, 1.0),
    "eye_spacing_mm": (58.0, 70.0),  # between eyeball centres
    "eye_width_mm": (23.0, 28.0),  # corner to corner
    "eye_opening": (0.75, 1.05),  # scales the lid aperture
    "eye_tilt": (-0.04, 0.12),  # outer corner raise, mm per mm
    "eye_mouth_mm": (64.0, 76.0),  # eye line -> mouth line, vertical
    "iris_r": (0.0, 1.0),
    "iris_g": (0.0, 1.0),
    "iris_b": (0.0, 1.0),
    "skin_r": (0.0, 1.0),
    "skin_g": (0.0, 1.0),
    "skin_b": (0.0, 1.0),
    "hair_r": (0.0, 1.0),
    "hair_g": (0.0, 1.0),
    "hair_b": (0.0, 1.0),
    "hairline_mm": (36.0, 62.0),  # hairline above the eye line at the midline (low = fringe)
    "hair_volume_mm": (3.0, 14.0),  # hair thickness over the skull
    "hair_sides": (0.0, 1.0),  # how far the hair comes down over the temples
    "glasses": (0.0, 1.0),  # 0 / 1
    "glasses_dark": (0.0, 1.0),  # frame colour, 0 = light metal, 1 = black
}
IDENTITY_PARAMS: tuple[str, ...] = tuple(_IDENTITY_RANGES)

_SESSION_RANGES = {
    "light_azimuth_rad": (-0.85, 0.85),  # light direction seen from the face; 0 = from the camera
    "light_elevation_rad": (-0.2, 0.9),  # positive = from above
    "light_intensity": (0.65, 1.0),
    "light_r": (0.0, 1.0),
    "light_g": (0.0, 1.0),
    "light_b": (0.0, 1.0),
    "ambient": (0.32, 0.50),
    "specular": (0.15, 0.45),
    "bg_r": (0.0, 1.0),
    "bg_g": (0.0, 1.0),
    "bg_b": (0.0, 1.0),
    "bg2_r": (0.0, 1.0),
    "bg2_g": (0.0, 1.0),
    "bg2_b": (0.0, 1.0),
    "bg_gradient_rad": (-np.pi, np.pi),  # direction of the colour gradient in the image
    "bg_texture": (0.0, 0.12),  # amplitude of the blotchy texture
    "bg_texture_cells": (3.0, 10.0),  # texture cells across the image
    "bg_seed": (0.0, SEED_LIMIT - 1.0),
    "noise_std": (0.0, 0.02),  # sensor noise, fraction of full scale
    "blur_px128": (0.0, 0.8),  # Gaussian blur sigma in pixels of a 128-px image
    "pupil_radius_mm": (1.7, 2.6),
    "target_distance_mm": (450.0, 900.0),  # face centre -> gaze target
    "noise_seed": (0.0, SEED_LIMIT - 1.0),  # the only per-image entry: redrawn for every image
}
SESSION_PARAMS: tuple[str, ...] = tuple(_SESSION_RANGES)

_SKIN_LIGHT = np.array([0.96, 0.80, 0.70])
_SKIN_DARK = np.array([0.36, 0.23, 0.16])
_HAIR = np.array([  # black, dark brown, brown, blond, auburn, grey
    [0.05, 0.045, 0.04], [0.16, 0.10, 0.07], [0.36, 0.23, 0.13],
    [0.78, 0.63, 0.40], [0.55, 0.24, 0.10], [0.62, 0.61, 0.60],
])
_HAIR_P = np.array([0.22, 0.25, 0.20, 0.15, 0.09, 0.09])  # for the lightest skin tone
_HAIR_P_DARK_SKIN = np.array([0.62, 0.28, 0.03, 0.0, 0.0, 0.07])  # for the darkest
_IRIS = np.array([  # dark brown, brown, hazel, green, blue, grey
    [0.22, 0.12, 0.06], [0.38, 0.23, 0.10], [0.45, 0.37, 0.17],
    [0.30, 0.45, 0.28], [0.30, 0.48, 0.70], [0.48, 0.53, 0.58],
])
_IRIS_P = np.array([0.20, 0.18, 0.14, 0.13, 0.25, 0.10])
_IRIS_P_DARK_SKIN = np.array([0.75, 0.22, 0.03, 0.0, 0.0, 0.0])


def columns(vectors: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """(n, P) parameter rows -> {name: (n,) float64 column}."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.shape[-1] != len(names):
        raise ValueError(f"expected parameter vectors with {len(names)} columns, got shape {v.shape}")
    return {name: v[..., i] for i, name in enumerate(names)}


def _uniform(rng: np.random.Generator, ranges: dict, n: int) -> dict[str, np.ndarray]:
    return {k: rng.uniform(lo, hi, size=n) for k, (lo, hi) in ranges.items()}


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of (n, K) probabilities."""
    cdf = np.cumsum(probs / probs.sum(1, keepdims=True), axis=1)
    return np.minimum((rng.uniform(size=(len(probs), 1)) > cdf).sum(1), probs.shape[1] - 1)


def sample_identities(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random subjects -> float32 (n, len(IDENTITY_PARAMS)). Colours come from palettes with jitter so
    that subjects differ visibly in skin, hair and eyes, not only in millimetres."""
    p = _uniform(rng, _IDENTITY_RANGES, n)
    tone = rng.uniform(0.0, 1.0, size=n) ** 1.3  # more light than dark tones, both present
    skin = _SKIN_LIGHT + tone[:, None] * (_SKIN_DARK - _SKIN_LIGHT)  # (n, 3)
    skin = skin * rng.uniform(0.92, 1.08, size=(n, 1)) * rng.uniform(0.96, 1.04, size=(n, 3))
    # Hair and eye colour follow skin tone as they do in people: dark skin, mostly dark hair and eyes.
    hair = _HAIR[_choice(rng, (1 - tone)[:, None] * _HAIR_P + tone[:, None] * _HAIR_P_DARK_SKIN)]
    hair = hair * rng.uniform(0.8, 1.2, size=(n, 3))
    iris = _IRIS[_choice(rng, (1 - tone)[:, None] * _IRIS_P + tone[:, None] * _IRIS_P_DARK_SKIN)]
    iris = iris * rng.uniform(0.85, 1.15, size=(n, 3))
    for i, c in enumerate("rgb"):
        p[f"skin_{c}"] = np.clip(skin[:, i], 0.0, 1.0)
        p[f"hair_{c}"] = np.clip(hair[:, i], 0.0, 1.0)
        p[f"iris_{c}"] = np.clip(iris[:, i], 0.0, 1.0)
    p["glasses"] = (rng.uniform(size=n) < 0.15).astype(np.float64)
    return np.stack([p[k] for k in IDENTITY_PARAMS], axis=-1).astype(np.float32)


def sample_sessions(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random sessions (light, background, camera) -> float32 (n, len(SESSION_PARAMS)).
    Each row has its own noise seed; a dataset writer redraws `noise_seed` for every image of a session."""
    p = _uniform(rng, _SESSION_RANGES, n)
    warmth = rng.uniform(-1.0, 1.0, size=n)  # light colour temperature, warm > 0
    p["light_r"], p["light_g"], p["light_b"] = 1.0 + 0.12 * warmth, 1.0 + 0.02 * warmth, 1.0 - 0.15 * warmth
    base = rng.uniform(0.05, 0.95, size=(n, 3))
    grey = rng.uniform(0.0, 0.7, size=(n, 1))  # muted backgrounds are common, saturated ones possible
    bg = base * (1 - grey) + base.mean(axis=1, keepdims=True) * grey
    bg2 = np.clip(bg * rng.uniform(0.6, 1.3, size=(n, 1)) + rng.normal(0.0, 0.08, size=(n, 3)), 0.0, 1.0)
    for i, c in enumerate("rgb"):
        p[f"bg_{c}"], p[f"bg2_{c}"] = bg[:, i], bg2[:, i]
    p["bg_seed"] = rng.integers(0, SEED_LIMIT, size=n).astype(np.float64)
    p["noise_seed"] = rng.integers(0, SEED_LIMIT, size=n).astype(np.float64)
    return np.stack([p[k] for k in SESSION_PARAMS], axis=-1).astype(np.float32)
