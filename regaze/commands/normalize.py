"""`regaze normalize`: photos -> normalized face crops with head-pose labels (gaze data normalization).
The chain is regaze/data/photo/ (photo_faces.py, normalization.py); the writing normalize_files.py."""
from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  regaze normalize shots/ --out faces.h5                        # every face, ETH-XGaze framing (224 px)
  regaze normalize me.jpg --preset synth64 --out crops/ --largest   # PNGs + crops/normalize.json
  regaze normalize cam0/*.png --camera cam0.xml --preset st-ed --out cam0.h5

What happens to each photo: MTCNN finds the faces and five landmarks (eye centres, nose tip, mouth corners) ->
cv2.solvePnP fits a generic 3-D face to them (mouth corners down-weighted: a smile moves them) -> the camera is
turned to look at the face centre with the head's x axis level and zoomed to the preset's distance
(Zhang et al. 2018) -> cv2.warpPerspective cuts the crop. The head-pose label is the head's rotation in that
normalized camera; the normalization matrix, the landmarks, the box and the source photo are stored beside it.

presets (normalized camera focal length, face distance, crop size):
  eth-xgaze      960 px, 600 mm, 224 px   ETH-XGaze face patches
  st-ed          500 px, 600 mm, 128 px   ST-ED / FAZE GazeCapture and MPIIFaceGaze (alias gazecapture)
  synth64        182.9 px, 600 mm, 64 px  regaze synth 64 px, the shipped reference model's framing
  synth128       365.7 px, 600 mm, 128 px regaze synth 128 px

--camera FILE: the photos' camera matrix and distortion: JSON {"camera_matrix": [[fx,0,cx],[0,fy,cy],[0,0,1]],
"dist_coeffs": [...]} (or fx, fy, cx, cy) or an OpenCV calibration file (.xml / .yml, Camera_Matrix and
Distortion_Coefficients). Without it each photo gets f = max(width, height) px, centred, no distortion; the
output says so. Head poses are only as good as this camera.

--head-estimator DIR|synth64: the head direction read off each face by a trained estimator (`regaze estimator
train`, best with --roll-deg 15) instead of the five-point fit's alone, which cannot tell a face's shape from its
pose; the fit still places the crop and sets the roll. `synth64` is the reader shipped in
regaze/reference/head_reader64/, trained on regaze's synthetic faces: on the synthetic webcam benchmark
(docs/RESULTS.md, issue 14; 60 new faces, MTCNN landmarks) it lowers the median head error from 10.4 deg to
2.5 deg (9.0 to 2.5 with --face-model synthetic). It is right only for faces like those it was trained on: it is
not a head-pose estimator for photos of people; for those, train one on normalized crops of people.

--face-model human|synthetic: the generic 3-D face the five landmarks are fitted to. human (default) for photos
of people; synthetic (the mean of regaze's rendered faces) for regaze's own renders: with MTCNN's landmarks
on the same benchmark the fit's median head error is 10.4 deg with the human face, 9.0 deg with the synthetic
one (4.5 deg from the exact landmarks: the floor of a generic face).

A photo without a face (score >= --min-score) is an error that names it, unless --skip-missing: then the
other photos are written and the photos without faces are listed (stderr, and in the output). Nothing is
written when anything fails. Needs the optional extra: pip install 'regaze[photo]'.
"""


def register(subparsers) -> None:
    from regaze.data.photo.face_models import FACE_MODELS
    from regaze.data.photo.presets import NORMALIZATION_PRESETS

    p = subparsers.add_parser(
        "normalize", help="photos -> normalized face crops with head-pose labels (.h5 or PNGs)",
        description="Find the faces in photos and cut normalized crops (Zhang et al. 2018) with head-pose labels.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="PHOTO", help="photo files (JPEG, PNG) or folders of them")
    p.add_argument("--out", required=True, help="FILE.h5 (regaze layout) or a folder (PNGs + normalize.json)")
    p.add_argument("--preset", choices=sorted(NORMALIZATION_PRESETS), default="eth-xgaze",
                   help="normalized camera and crop size (default eth-xgaze)")
    p.add_argument("--size", type=int, help="crop size in px instead of the preset's (its focal length scales with "
                                            "it); a multiple of 16, >= 32, as the model takes")
    p.add_argument("--camera", help="camera matrix and distortion (.json, or OpenCV .xml / .yml); default: from "
                                    "the image size, f = max(width, height)")
    p.add_argument("--largest", action="store_true", help="only the largest face of each photo (default: all)")
    p.add_argument("--min-score", type=float, default=0.9, help="the face finder's minimum score (default 0.9)")
    p.add_argument("--skip-missing", action="store_true",
                   help="write the other photos when some have no face (they are listed); default: an error")
    p.add_argument("--subject-by-folder", action="store_true",
                   help="subject id = the photo's folder (sorted names); default: subject 0 for all")
    p.add_argument("--head-estimator", metavar="DIR",
                   help="read the head direction off each face with this estimator, or the shipped one for "
                        "synthetic faces: synth64 (see below); default: the landmark fit alone")
    p.add_argument("--face-model", choices=FACE_MODELS, default="human",
                   help="the generic 3-D face the landmarks are fitted to: human (photos of people, default) or "
                        "synthetic (regaze's own renders)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from dataclasses import replace

    from regaze.data.photo.intrinsics import DEFAULT_FOCAL_RULE, read_camera_file
    from regaze.data.photo.normalize_files import normalize_files
    from regaze.data.photo.presets import preset_by_name
    from regaze.errors import RegazeError

    if not 0.0 <= args.min_score <= 1.0:
        raise RegazeError(f"--min-score must be in [0, 1]; got {args.min_score}")
    camera = read_camera_file(args.camera) if args.camera else None
    preset = preset_by_name(args.preset)
    if args.size is not None:
        if args.size < 32 or args.size % 16:
            raise RegazeError(f"--size {args.size}: the redirector takes crops whose size is a multiple of 16 and "
                              f">= 32 (e.g. 64, 128, 224)")
        preset = replace(preset, name=f"{preset.name}@{args.size}", focal_px=preset.focal_px * args.size / preset.size,
                         size=args.size)
    head_reader = None
    if args.head_estimator:
        from regaze.evaluation.estimator.head_reader import estimator_head_reader

        head_reader = estimator_head_reader(args.head_estimator)
        print(head_reader.about, file=sys.stderr)
    if camera is None:
        print(f"no --camera: each photo gets the default camera ({DEFAULT_FOCAL_RULE})", file=sys.stderr)
    result = normalize_files(args.inputs, out=args.out, preset=preset, camera=camera, largest=args.largest,
                             min_score=args.min_score, skip_missing=args.skip_missing,
                             subject_by_folder=args.subject_by_folder, progress=not args.no_progress,
                             head_reader=head_reader, face_model=args.face_model)
    for path in result["without_faces"]:
        print(f"warning: no face found in {path} (listed in the output)", file=sys.stderr)
    print(f"wrote {result['faces']} normalized faces of {result['photos']} photos to {result['out']} "
          f"(preset {preset.name}: f {preset.focal_px:.1f} px, {preset.distance_mm:g} mm, {preset.size} px)")
    return 0
