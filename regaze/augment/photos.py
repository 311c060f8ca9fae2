"""`regaze redirect --photo`: new gaze and/or head angles for the faces in raw photos (eye-contact correction).

    records = redirect_photos(["me.jpg"], run=run, out_dir="out", gaze_rad=(0.0, 0.0))   # look into the camera

Each face: normalized in the framing of the model's training data (regaze/data/photo/: landmarks, head pose,
the normalizing warp) -> Redirector.redirect (source head = the normalization's head-pose label unless given;
source gaze = the model's estimate unless given) -> warped back with the inverse warp -> blended into the photo
with a soft mask that is exactly zero outside its support: for a gaze-only change only the change of the crop
(redirected minus source, the model's eye composite) is added around the eyes, so the photo keeps its own
resolution there; for a head change the redirected crop replaces the face. Pixels outside the
mask keep the photo's bytes. Angles are in each face's normalized camera: gaze (0, 0) looks into the camera.

Outputs in OUT_DIR: NAME_redirected.png per photo, redirect.json, and with debug NAME_faceK_crop.png,
NAME_faceK_redirected.png and NAME_faceK_mask.png (the crop-space blend mask). Everything is computed before the
first file is written.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from regaze.augment.images import check_angles_rad
from regaze.data.photo.face_finder import face_finder
from regaze.data.photo.intrinsics import PhotoCamera
from regaze.data.photo.normalization import blend, blend_residual, denormalize, eye_blend_mask, face_blend_mask
from regaze.data.photo.photo_faces import camera_for, list_photos, normalize_photo, read_photo
from regaze.data.photo.presets import preset_for_model
from regaze.errors import RegazeError

__all__ = ["redirect_photos", "EYE_MASK_RADIUS_MM", "EYE_MASK_FEATHER_MM"]

EYE_MASK_RADIUS_MM = 12.0  # an eye opening is ~25 x 10 mm: the full-weight disc covers it and the lids
EYE_MASK_FEATHER_MM = 8.0  # then a raised-cosine fall to exactly 0


def _eye_centres_in_crop(face, norm) -> np.ndarray:
    """The finder's two eye points mapped into the crop by the normalizing warp: (2, 2) pixels."""
    pts = np.concatenate([face.points_xy[:2], np.ones((2, 1))], 1).T  # (3, 2) homogeneous photo pixels
    q = norm.warp @ pts
    return (q[:2] / q[2:]).T


def redirect_photos(paths, *, run, out_dir, gaze_rad=None, head_rad=None, source_gaze_rad=None, source_head_rad=None,
                    camera: PhotoCamera | None = None, finder: str = "mtcnn", largest: bool = False,
                    min_score: float = 0.9, which: str = "best", device: str = "auto", debug: bool = False,
                    log=None) -> list[dict]:
    """Redirect every face (or the largest) of each photo; see the module docstring. Returns one record per face."""
    from regaze.augment.augmentation import check_device
    from regaze.checkpoint import file_sha256
    from regaze.dist import pick_device
    from regaze.image_io import save_png
    from regaze.model.pretrained import find_checkpoint, is_reference, load_redirector

    if gaze_rad is None and head_rad is None:
        raise RegazeError("nothing to do: give --gaze and/or --head")
    if not 0.0 <= min_score <= 1.0:
        raise RegazeError(f"--min-score must be in [0, 1]; got {min_score}")
    for name, value in (("gaze", gaze_rad), ("head", head_rad), ("source gaze", source_gaze_rad),
                        ("source head", source_head_rad)):
        if value is not None:
            check_angles_rad(value, name=name)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RegazeError(f"{out_dir}: exists and is not a directory")
    photos = list_photos(paths)
    stems = [p.stem for p in photos]
    if len(set(stems)) != len(stems):
        raise RegazeError(f"two photos would write the same output name: {sorted(s for s in stems if stems.count(s) > 1)}")
    images = [read_photo(p) for p in photos]
    check_device(device)
    ckpt = find_checkpoint(run, which=which)
    model, info = load_redirector(ckpt, device=pick_device(device))
    preset = preset_for_model(model)
    detector = face_finder(finder)
    gaze_only = head_rad is None

    # ---- compute everything first
    results, records = [], []
    for path, image in zip(photos, images):
        cam = camera_for(image, camera)
        faces = normalize_photo(image, finder=detector, camera=cam, preset=preset, largest=largest, min_score=min_score)
        if not faces:
            raise RegazeError(f"{path}: no face found (score >= {min_score}); nothing written")
        out = image.copy()
        extras = []
        for k, pf in enumerate(faces):
            norm = pf.norm
            src_head = source_head_rad if source_head_rad is not None else norm.head_pitchyaw_rad.astype(np.float32)
            redirected, src = model.redirect(norm.crop, gaze=gaze_rad, head=head_rad, source_gaze=source_gaze_rad,
                                             source_head=src_head, compose="auto")
            px_per_mm = preset.focal_px / preset.distance_mm
            if gaze_only:
                mask = eye_blend_mask(eye_centres_xy=_eye_centres_in_crop(pf.face, norm), size=preset.size,
                                      radius_px=EYE_MASK_RADIUS_MM * px_per_mm, feather_px=EYE_MASK_FEATHER_MM * px_per_mm)
            else:
                mask = face_blend_mask(size=preset.size)
            if gaze_only:  # only the change goes in: the photo keeps its own resolution around the eyes
                delta = redirected.astype(np.float32) - norm.crop.astype(np.float32)  # (S, S, 3)
                back, photo_mask = denormalize(delta, norm=norm, photo_shape=image.shape, mask_crop=mask)
                out = blend_residual(out, delta=back, mask=photo_mask)
            else:
                back, photo_mask = denormalize(redirected, norm=norm, photo_shape=image.shape, mask_crop=mask)
                out = blend(out, back=back, mask=photo_mask)
            deg = lambda v: None if v is None else [round(math.degrees(float(x)), 3) for x in np.asarray(v).ravel()]  # noqa: E731
            records.append({"input": os.fspath(path), "face_index": k, **pf.face.to_dict(),
                            "camera": cam.to_dict(), "normalized_head_deg": deg(norm.head_pitchyaw_rad),
                            "source_gaze_deg": deg(src["gaze"].float().cpu()), "source_head_deg": deg(src_head),
                            "source_angles": {"gaze": "given" if source_gaze_rad is not None else "estimated by the model",
                                              "head": "given" if source_head_rad is not None else "normalization"},
                            "target_gaze_deg": deg(gaze_rad), "target_head_deg": deg(head_rad),
                            "blend": "eyes" if gaze_only else "face", "changed_pixels": int((photo_mask > 0).sum())})
            extras.append((k, norm.crop, redirected, mask))
        results.append((path, out, extras))

    # ---- write
    out_dir.mkdir(parents=True, exist_ok=True)
    by_input = {}
    for (path, out, extras), stem in zip(results, stems):
        target = out_dir / f"{stem}_redirected.png"
        save_png(target, out)
        by_input[os.fspath(path)] = os.fspath(target)
        if debug:
            for k, crop, redirected, mask in extras:
                save_png(out_dir / f"{stem}_face{k}_crop.png", crop)
                save_png(out_dir / f"{stem}_face{k}_redirected.png", redirected)
                save_png(out_dir / f"{stem}_face{k}_mask.png", np.repeat((mask * 255).round().astype(np.uint8)[..., None], 3, -1))
    for rec in records:
        rec["output"] = by_input[rec["input"]]
    summary = {"model": "reference" if is_reference(ckpt) else "run", "checkpoint": os.fspath(ckpt),
               "checkpoint_sha256": file_sha256(ckpt), "checkpoint_step": info["step"], "framing": preset.to_dict(),
               "input_kind": "photo", "faces": records}
    tmp = out_dir / ".redirect.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out_dir / "redirect.json")
    return records
