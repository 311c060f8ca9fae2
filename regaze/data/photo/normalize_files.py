"""`regaze normalize`: photos -> normalized face crops with head-pose labels, as a regaze-layout .h5 file or as
PNGs with a JSON sidecar.

    result = normalize_files(["shots/"], out="faces.h5", preset=NORMALIZATION_PRESETS["eth-xgaze"])

Every photo is read and every face normalized before anything is written; the .h5 file is published
atomically by RegazeWriter, the PNGs and the sidecar each through a temporary file, so a failure leaves
nothing half-written. A photo without a face is an error unless skip_missing, and then it is listed in the
output (attribute `photos_without_faces` / the sidecar's "without_faces") and returned, never dropped silently.

.h5 keys beside the regaze layout's face_patch, face_head_pose (the label: R hR as (pitch, yaw)) and subject
(0, or the photo's folder with subject_by_folder): face_mat_norm (N, 3, 3) R, face_warp (N, 3, 3) W,
head_rotation_cam (N, 3, 3) hR, face_centre_mm (N, 3), facial_landmarks (N, 5, 2) in the photo, face_box
(N, 4) x0 y0 x1 y1, face_score (N,), source_index (N,) into the attribute `source_files`, face_index (N,)
within its photo. Attributes: camera_focal_px, camera_distance_mm (the framing training reads), preset,
cameras (per photo), landmark order, face finder, face_model (the 3-D face fitted), head_pose_source (the
landmark fit, or which head reader).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from regaze.data.photo.face_finder import FIVE_POINTS, face_finder
from regaze.data.photo.face_models import face_model_points
from regaze.data.photo.intrinsics import PhotoCamera
from regaze.data.photo.photo_faces import camera_for, list_photos, normalize_photo, read_photo
from regaze.data.photo.presets import NormalizationPreset
from regaze.errors import RegazeError

__all__ = ["normalize_files"]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def normalize_files(inputs, *, out, preset: NormalizationPreset, camera: PhotoCamera | None = None,
                    finder: str = "mtcnn", largest: bool = False, min_score: float = 0.9, skip_missing: bool = False,
                    subject_by_folder: bool = False, progress: bool = True, head_reader=None,
                    face_model: str = "human") -> dict:
    """Normalize every face of the photos in `inputs` into `out` (.h5, or a folder for PNGs + normalize.json).
    face_model (face_models.py FACE_MODELS): the generic 3-D face the five landmarks are fitted to.
    head_reader (regaze/data/photo/head_refinement.py HeadReader): the head direction read off each face
    instead of the landmark fit's alone; what it is goes into the output (`head_pose_source`).
    Returns {"faces": n, "photos": n, "without_faces": [paths], "out": path, "camera": ...}."""
    out = Path(out)
    to_h5 = out.suffix.lower() in (".h5", ".hdf5")
    if not to_h5 and out.suffix:
        raise RegazeError(f"--out {out}: expected a .h5 file or a folder (no suffix) for PNGs and normalize.json")
    photos = list_photos(inputs)
    images = {p: read_photo(p) for p in photos}  # every photo readable before the slow part
    model_points = face_model_points(face_model)  # (5, 3), before the slow part: an unknown name fails first
    detector = face_finder(finder)
    records, crops, missing = [], [], []
    folders = sorted({p.parent.name for p in photos})
    it = photos
    if progress:
        from tqdm import tqdm

        it = tqdm(photos, desc="normalize", unit="photo", file=sys.stderr)
    for i, path in enumerate(it):
        image = images[path]
        cam = camera_for(image, camera)
        faces = normalize_photo(image, finder=detector, camera=cam, preset=preset, largest=largest, min_score=min_score,
                                model_points_head=model_points, head_reader=head_reader)
        if not faces:
            missing.append(str(path))
            continue
        for k, pf in enumerate(faces):
            crops.append(pf.norm.crop)
            records.append({"source": str(path), "source_index": i, "face_index": k, "face": pf.face,
                            "norm": pf.norm, "camera": cam,
                            "subject": folders.index(path.parent.name) if subject_by_folder else 0})
    if missing and not skip_missing:
        raise RegazeError(f"no face found (score >= {min_score}) in {len(missing)} of {len(photos)} photos: "
                          f"{missing[:5]}{' ...' if len(missing) > 5 else ''}; pass --skip-missing to write the "
                          f"others (the photos without faces are then listed in the output)")
    if not records:
        raise RegazeError(f"no face found in any of the {len(photos)} photos (score >= {min_score}); nothing written")
    cameras = {str(r["source"]): r["camera"].to_dict() for r in records}
    attrs = {"camera_focal_px": preset.focal_px, "camera_distance_mm": preset.distance_mm, "preset": preset.name,
             "landmarks": ",".join(FIVE_POINTS), "face_finder": finder,
             "source_files": json.dumps([str(p) for p in photos]), "photos_without_faces": json.dumps(missing),
             "cameras": json.dumps(cameras), "split": "all", "face_model": face_model,
             "head_pose_label": "normalized head rotation R hR as (pitch, yaw) rad, ETH-XGaze convention",
             "head_pose_source": (f"five landmarks fitted to the generic {face_model} 3-D face (cv2.solvePnP)"
                                  if head_reader is None else f"the fit to the generic {face_model} 3-D face's face "
                                                              f"centre and roll; {head_reader.about}")}
    if to_h5:
        _write_h5(out, crops=crops, records=records, attrs=attrs, size=preset.size)
    else:
        _write_pngs(out, crops=crops, records=records, attrs=attrs, preset=preset)
    return {"faces": len(records), "photos": len(photos), "without_faces": missing, "out": str(out),
            "cameras": sorted({c["source"] for c in cameras.values()})}


def _write_h5(out: Path, *, crops, records, attrs, size: int) -> None:
    from regaze.data.writer import RegazeWriter

    stack = lambda key: np.stack([key(r) for r in records])  # noqa: E731
    with RegazeWriter(out, size=size, attrs=attrs) as w:
        w.append(images=np.stack(crops), head=stack(lambda r: r["norm"].head_pitchyaw_rad).astype(np.float32),
                 subject=np.array([r["subject"] for r in records], np.int64),
                 face_mat_norm=stack(lambda r: r["norm"].rotation).astype(np.float32),
                 face_warp=stack(lambda r: r["norm"].warp).astype(np.float64),
                 head_rotation_cam=stack(lambda r: r["norm"].pose.rotation).astype(np.float32),
                 face_centre_mm=stack(lambda r: r["norm"].pose.face_centre_mm).astype(np.float32),
                 facial_landmarks=stack(lambda r: r["face"].points_xy).astype(np.float32),
                 face_box=stack(lambda r: r["face"].box_xyxy).astype(np.float32),
                 face_score=np.array([r["face"].score for r in records], np.float32),
                 source_index=np.array([r["source_index"] for r in records], np.int64),
                 face_index=np.array([r["face_index"] for r in records], np.int64))


def _write_pngs(out: Path, *, crops, records, attrs, preset: NormalizationPreset) -> None:
    out.mkdir(parents=True, exist_ok=True)
    items = []
    names = set()
    for crop, r in zip(crops, records):
        name = f"{Path(r['source']).stem}_face{r['face_index']}.png"
        if name in names:  # two photos of the same stem in different folders
            name = f"{Path(r['source']).stem}_{r['source_index']}_face{r['face_index']}.png"
        names.add(name)
        items.append((name, crop, r))
    for name, crop, _ in items:
        _write_atomic(out / name, _png_bytes(crop))
    sidecar = {"preset": preset.to_dict(), "landmarks": list(FIVE_POINTS), "face_model": attrs["face_model"],
               "head_pose_source": attrs["head_pose_source"],
               "photos_without_faces": json.loads(attrs["photos_without_faces"]),
               "faces": [{"file": name, "source": r["source"], "face_index": r["face_index"],
                          "head_pitchyaw_deg": np.degrees(r["norm"].head_pitchyaw_rad).round(3).tolist(),
                          "face_mat_norm": r["norm"].rotation.round(6).tolist(), "warp": r["norm"].warp.tolist(),
                          "head_rotation_cam": r["norm"].pose.rotation.round(6).tolist(),
                          "face_centre_mm": r["norm"].pose.face_centre_mm.round(2).tolist(),
                          "reprojection_px": round(r["norm"].pose.reprojection_px, 3), **r["face"].to_dict(),
                          "camera": r["camera"].to_dict(), "subject": r["subject"]} for name, _, r in items]}
    _write_atomic(out / "normalize.json", (json.dumps(sidecar, indent=2) + "\n").encode())
