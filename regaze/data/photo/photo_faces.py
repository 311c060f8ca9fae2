"""Photos -> their faces, each normalized: the chain that `regaze normalize` and `regaze redirect --photo` run.

    photos = list_photos(["shots/", "me.jpg"])          # files, or folders of .jpg / .jpeg / .png
    image = read_photo(photos[0])                      # uint8 (H, W, 3) RGB
    faces = normalize_photo(image, finder=face_finder(), camera=camera, preset=NORMALIZATION_PRESETS["eth-xgaze"])

Each face: five landmarks (the finder) -> head pose (solvePnP against HUMAN_FIVE_POINTS_HEAD or the given model)
-> optionally the head direction read off the face by a head reader (regaze/data/photo/head_refinement.py)
-> the normalized crop in the preset's camera (regaze/data/photo/normalization.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regaze.data.photo.face_finder import Face, FaceFinder, largest_face
from regaze.data.photo.head_refinement import HeadReader, refine_head_pose
from regaze.data.photo.intrinsics import PhotoCamera, default_camera
from regaze.data.photo.normalization import HUMAN_FIVE_POINTS_HEAD, NormalizedFace, estimate_head_pose, normalize_face
from regaze.data.photo.presets import NormalizationPreset
from regaze.errors import RegazeError

__all__ = ["PHOTO_SUFFIXES", "PhotoFace", "list_photos", "read_photo", "normalize_photo", "camera_for"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class PhotoFace:
    face: Face  # box, five landmarks, score in the photo
    norm: NormalizedFace  # the crop, its warp and labels


def list_photos(inputs) -> list[Path]:
    """Files and folders (their .jpg / .jpeg / .png files, sorted, not recursive) -> photo paths, in order."""
    out = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
            if not found:
                raise RegazeError(f"{item}: a folder with no {'/'.join(PHOTO_SUFFIXES)} files")
            out.extend(found)
        elif item.is_file():
            out.append(item)
        else:
            raise RegazeError(f"{item}: no such file or folder")
    if not out:
        raise RegazeError("no photos given")
    return out


def read_photo(path) -> np.ndarray:
    """An image file -> uint8 (H, W, 3) RGB (grey, palette and alpha images become RGB; EXIF rotation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise RegazeError(f"{path}: not a readable image (expected a JPEG or PNG photo; {e})") from e
    if min(rgb.shape[:2]) < 24:
        raise RegazeError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} px is too small to hold a face")
    return np.ascontiguousarray(rgb)


def camera_for(image: np.ndarray, camera: PhotoCamera | None) -> PhotoCamera:
    """The given camera, or the documented default for this image's size."""
    return camera if camera is not None else default_camera(width=image.shape[1], height=image.shape[0])


def normalize_photo(image: np.ndarray, *, finder: FaceFinder, camera: PhotoCamera | None,
                    preset: NormalizationPreset, model_points_head=HUMAN_FIVE_POINTS_HEAD, largest: bool = False,
                    min_score: float = 0.9, faces: list[Face] | None = None,
                    head_reader: HeadReader | None = None) -> list[PhotoFace]:
    """Every face of at least `min_score` (or only the largest) -> its normalized crop, best score first.
    `faces` skips the finder (e.g. exact landmarks of a synthetic render); `head_reader` corrects each landmark
    fit's head direction from the face's appearance (refine_head_pose)."""
    camera = camera_for(image, camera)
    found = finder.find(image) if faces is None else list(faces)
    found = [f for f in found if f.score >= min_score]
    if largest:
        found = largest_face(found)
    out = []
    for face in found:
        pose = estimate_head_pose(points_xy=face.points_xy, model_points_head=model_points_head, camera=camera)
        if head_reader is not None:
            pose = refine_head_pose(image, pose=pose, camera=camera, reader=head_reader)
        norm = normalize_face(image, pose=pose, camera=camera, focal_px=preset.focal_px,
                              distance_mm=preset.distance_mm, size=preset.size)
        out.append(PhotoFace(face=face, norm=norm))
    return out
