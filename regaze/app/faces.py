"""The faces the page redirects: held-out synthetic samples, and the user's uploads made into normalized crops.

Sample faces are fresh draws of the synthetic face model from a fixed seed (SAMPLE_SEED). Identities are continuous
parameter vectors, so a subject drawn from a seed no dataset was written with is one no model trained on (the
reference model's data used `regaze synth --seed 3`; a run's own split records only subject ids, not the
parameters). An upload is either a normalized crop (square, at most MAX_CROP_FACTOR times the model's size: resized
to it) or a raw photo (anything else: normalized with the model's framing, its largest face).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from regaze.errors import RegazeError

__all__ = ["SampleFace", "UploadError", "SAMPLE_SEED", "sample_faces", "upload_crop", "decode_image"]

SAMPLE_SEED = 20_515  # no `regaze synth` dataset of this project uses it
# (head, gaze) (pitch, yaw) degrees of the samples: frontal, and a few poses inside every slider's range
SAMPLE_POSES_DEG = (((0, 0), (0, 0)), ((-5, 15), (5, -10)), ((8, -20), (-10, 15)), ((0, 10), (10, 20)),
                    ((-10, -10), (-5, -25)), ((5, 25), (0, 5)))
MAX_CROP_FACTOR = 4  # a square upload up to 4x the model's size is taken as a crop already normalized
MIN_UPLOAD_PX = 16
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000


class UploadError(RegazeError):
    """An upload the page cannot use; its message is shown on the page."""


@dataclass(frozen=True)
class SampleFace:
    name: str  # what the page lists
    image: np.ndarray  # (S, S, 3) uint8 RGB, the model's size
    rendered_head_deg: tuple[float, float]  # the exact angles it was rendered with (pitch, yaw)
    rendered_gaze_deg: tuple[float, float]


def sample_faces(*, size: int, count: int = len(SAMPLE_POSES_DEG), seed: int = SAMPLE_SEED) -> list[SampleFace]:
    """`count` held-out synthetic faces at `size` px (one subject and session each), the same on every call."""
    from regaze.data.synth import render, sample_identities, sample_sessions

    if not 1 <= count <= len(SAMPLE_POSES_DEG):
        raise RegazeError(f"count must be 1 to {len(SAMPLE_POSES_DEG)}; found {count}")
    rng = np.random.default_rng(seed)
    ids, sessions = sample_identities(count, rng), sample_sessions(count, rng)  # (n, P_id), (n, P_s)
    poses = SAMPLE_POSES_DEG[:count]
    head = np.radians([p[0] for p in poses])  # (n, 2) rad
    gaze = np.radians([p[1] for p in poses])  # (n, 2) rad
    images = render(identity=ids, session=sessions, head=head, gaze=gaze, size=size)  # (n, S, S, 3) uint8
    return [SampleFace(name=f"held-out subject {i + 1}", image=images[i],
                       rendered_head_deg=tuple(map(float, poses[i][0])), rendered_gaze_deg=tuple(map(float, poses[i][1])))
            for i in range(count)]


def decode_image(data: bytes) -> np.ndarray:
    """File bytes (PNG, JPEG, ...) -> uint8 (H, W, 3) RGB (EXIF rotation applied); UploadError when not an image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise UploadError("the upload is empty; choose a PNG or JPEG image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"the upload is {len(data) / 2**20:.0f} MB; the page takes images up to "
                          f"{MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise UploadError(f"the image is {im.width}x{im.height} px; the page takes up to "
                                  f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels")
            im.load()
            rgb = np.array(ImageOps.exif_transpose(im).convert("RGB"))  # writable: torch.from_numpy warns otherwise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UploadError(f"the upload is not an image this page can read (expected PNG or JPEG: {e})") from e
    return np.ascontiguousarray(rgb)


def upload_crop(data: bytes, *, model, finder=None) -> tuple[np.ndarray, str]:
    """An uploaded file -> ((S, S, 3) uint8 crop at the model's size, how it was made). UploadError with a message
    for the page when the file is not an image, is too small, or is a photo with no face found.

    finder: a FaceFinder for raw photos (default: face_finder(), built on first use)."""
    from PIL import Image

    rgb = decode_image(data)
    size = int(model.config.image_size)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_UPLOAD_PX:
        raise UploadError(f"the image is {w}x{h} px; too small to hold a face (at least {MIN_UPLOAD_PX} px a side)")
    if h == w and w <= MAX_CROP_FACTOR * size:
        if w != size:
            rgb = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS))
        how = f"normalized crop, {w}x{h} px" + ("" if w == size else f" resized to {size}x{size}")
        return np.ascontiguousarray(rgb), how
    return _normalized_photo(rgb, model=model, finder=finder)


def _normalized_photo(rgb: np.ndarray, *, model, finder) -> tuple[np.ndarray, str]:
    """A raw photo -> its largest face normalized in the model's camera."""
    try:
        from regaze.data.photo.face_finder import face_finder
        from regaze.data.photo.photo_faces import normalize_photo
        from regaze.data.photo.presets import preset_for_model

        finder = finder if finder is not None else face_finder()
        faces = normalize_photo(rgb, finder=finder, camera=None, preset=preset_for_model(model), largest=True)
    except ImportError as e:
        raise UploadError(f"raw photos need the photo extra (pip install 'regaze[photo]': {e.name} is missing); "
                          f"or upload a square normalized crop") from e
    except RegazeError as e:
        raise UploadError(f"the photo could not be normalized: {e}") from e
    if not faces:
        h, w = rgb.shape[:2]
        raise UploadError(f"no face found in the {w}x{h} px photo (a square crop up to "
                          f"{MAX_CROP_FACTOR * int(model.config.image_size)} px is used as it is)")
    head = np.degrees(faces[0].norm.head_pitchyaw_rad)
    return np.ascontiguousarray(faces[0].norm.crop), (f"photo {rgb.shape[1]}x{rgb.shape[0]} px, largest face "
                                                      f"normalized (head {head[0]:+.0f}, {head[1]:+.0f} deg)")
