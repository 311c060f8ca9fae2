"""`regaze redirect`: new gaze and/or head angles for normalized face crops (image files). See regaze/augment/images.py."""
from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  regaze redirect face.png --gaze 10,-25 -o out/                 # up, towards the image's right; head kept
  regaze redirect a.png b.jpg --gaze 0,0 --head 0,20 --run runs/r64 -o out/
  regaze redirect face.png --sweep -o out/                       # out/face_sweep.png (no --run: the shipped model)
  regaze redirect face.png --head 0,30 --source-gaze 5,10 --source-head 0,0 -o out/

Angles are degrees 'PITCH,YAW' (|pitch| <= 90, |yaw| <= 180), ETH-XGaze conventions: (0,0) looks into the
camera, positive pitch looks up, positive yaw towards the image's left (the person's right). The source
angles the rotation starts from are the model's own estimates unless --source-gaze / --source-head are
given; redirect.json lists the ones used.

Raw photos (--photo): every face (or --largest) is normalized in the framing of the model's training data
(landmarks -> head pose -> the normalizing warp, as `regaze normalize`), redirected, warped back with the
inverse warp and blended into the photo with a soft mask: around the eyes for a gaze-only change, over the face
for a head change; pixels outside the mask keep their bytes. Angles are then in each face's normalized camera:
--gaze 0,0 looks into the camera (eye-contact correction). The source head is the normalization's head pose
unless --source-head is given. --camera FILE gives the camera matrix (see `regaze normalize --help`); --debug
also writes each face's crop, redirected crop and blend mask. Needs pip install 'regaze[photo]'.
  regaze redirect --photo me.jpg --gaze 0,0 -o out/             # out/me_redirected.png

Inputs must be normalized face crops (without --photo): square RGB images (PNG or JPEG). An image not at the model's size is
resized to it (area filter when shrinking, bicubic when enlarging) with a warning, and the output is at the
model's size. Non-image files, non-square images, out-of-range angles and a missing checkpoint are errors,
checked before anything is written.

The model: --run RUN_DIR (or a checkpoint .pt) when given; else the reference model shipped with regaze
(regaze/reference/synth64/reference.pt: trained on synthetic faces only; for real photos train on your own
data with `regaze train`); else runs/demo/run (`make demo`) in the working directory. A notice on stderr
says which, and redirect.json records it ("model": "reference" or "run").

Outputs in OUT_DIR: NAME_redirected.png (with --gaze/--head), NAME_sweep.png (with --sweep: rows gaze yaw,
gaze pitch, head yaw, head pitch; first column the input), redirect.json (angles used, model, checkpoint
hash). Existing files of the same names are replaced.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "redirect", help="re-render face crops with new gaze / head angles, or sweep grids",
        description="Redirect gaze and/or head pose of normalized face crops with a trained model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="normalized face crops (PNG or JPEG), or photos with --photo")
    p.add_argument("--photo", action="store_true", help="the inputs are raw photos: normalize, redirect, put back")
    p.add_argument("--camera", help="with --photo: camera matrix and distortion (.json, OpenCV .xml / .yml)")
    p.add_argument("--largest", action="store_true", help="with --photo: only the largest face (default: all)")
    p.add_argument("--min-score", type=float, default=0.9, help="with --photo: the face finder's minimum score (0.9)")
    p.add_argument("--debug", action="store_true", help="with --photo: also write each face's crops and blend mask")
    p.add_argument("--gaze", metavar="P,Y", help="target gaze pitch,yaw in degrees (default: keep)")
    p.add_argument("--head", metavar="P,Y", help="target head pitch,yaw in degrees (default: keep)")
    p.add_argument("--source-gaze", metavar="P,Y", help="current gaze of the inputs in degrees (default: estimated)")
    p.add_argument("--source-head", metavar="P,Y", help="current head pose of the inputs in degrees (default: estimated)")
    p.add_argument("--sweep", action="store_true", help="also write a grid of gaze and head sweeps per image")
    p.add_argument("--sweep-max", type=float, default=30.0, metavar="DEG", help="sweep from -DEG to +DEG (default 30)")
    p.add_argument("--sweep-steps", type=int, default=5, metavar="N", help="values per sweep (default 5)")
    p.add_argument("--run", default=None,
                   help="training run directory or checkpoint .pt (default: the shipped reference model, trained on "
                        "synthetic faces; without one, runs/demo/run from `make demo`)")
    p.add_argument("--which", choices=("best", "latest"), default="best", help="checkpoint of the run (default best)")
    p.add_argument("-o", "--out-dir", required=True, help="output directory (created if needed)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    p.add_argument("--compose", choices=("auto", "decode", "eyes"), default="auto",
                   help="auto (default): a gaze-only change pastes the model's eye regions into the input, so nothing "
                        "else moves; any head change is the decoder's whole image. decode: always the decoder's image")
    p.set_defaults(func=_run)


def _run_photos(args, *, angles: dict, run) -> int:
    from regaze.augment.photos import redirect_photos
    from regaze.data.photo.intrinsics import DEFAULT_FOCAL_RULE, read_camera_file

    camera = read_camera_file(args.camera) if args.camera else None
    if camera is None:
        print(f"no --camera: each photo gets the default camera ({DEFAULT_FOCAL_RULE})", file=sys.stderr)
    records = redirect_photos(args.images, run=run, out_dir=args.out_dir, gaze_rad=angles["gaze"], head_rad=angles["head"],
                              source_gaze_rad=angles["source_gaze"], source_head_rad=angles["source_head"], camera=camera,
                              largest=args.largest, min_score=args.min_score, which=args.which, device=args.device,
                              debug=args.debug)
    for rec in records:
        fmt = lambda v: "kept" if v is None else f"({v[0]:+.1f}, {v[1]:+.1f})"  # noqa: E731
        print(f"{rec['input']} face {rec['face_index']}: source gaze {fmt(rec['source_gaze_deg'])} head "
              f"{fmt(rec['source_head_deg'])} -> gaze {fmt(rec['target_gaze_deg'])} head {fmt(rec['target_head_deg'])}: "
              f"{rec['output']} ({rec['changed_pixels']} pixels changed, {rec['blend']} mask)")
    return 0


def _run(args) -> int:
    from regaze.augment.images import parse_angles_deg, redirect_files
    from regaze.errors import RegazeError
    from regaze.model.pretrained import resolve_run

    angle = lambda text, name: None if text is None else parse_angles_deg(text, name=name)  # noqa: E731
    angles = {k: angle(getattr(args, k), "--" + k.replace("_", "-"))
              for k in ("gaze", "head", "source_gaze", "source_head")}  # (2,) rad or None
    if not args.photo and (args.camera or args.largest or args.debug):
        raise RegazeError("--camera, --largest and --debug are for raw photos: add --photo")
    if args.photo and args.sweep:
        raise RegazeError("--sweep is for normalized crops; with --photo give --gaze and/or --head")
    run, notice = resolve_run(args.run)  # after the arguments' checks, before any file is read
    if notice:
        print(notice, file=sys.stderr)
    if args.photo:
        return _run_photos(args, angles=angles, run=run)
    records = redirect_files(
        args.images, run=run, out_dir=args.out_dir, gaze_rad=angles["gaze"], head_rad=angles["head"],
        source_gaze_rad=angles["source_gaze"], source_head_rad=angles["source_head"], sweep=args.sweep,
        sweep_max_deg=args.sweep_max, sweep_steps=args.sweep_steps, which=args.which, device=args.device,
        compose=args.compose, log=lambda msg: print(f"warning: {msg}", file=sys.stderr))
    for rec in records:
        fmt = lambda v: "kept" if v is None else f"({v[0]:+.1f}, {v[1]:+.1f})"  # noqa: E731
        print(f"{rec['input']}: source gaze {fmt(rec['source_gaze_deg'])} head {fmt(rec['source_head_deg'])} -> "
              f"gaze {fmt(rec['target_gaze_deg'])} head {fmt(rec['target_head_deg'])}: "
              f"{rec.get('output') or ''} {rec.get('sweep') or ''}".rstrip())
    return 0
