"""`regaze synth`: render a synthetic dataset with exact labels, or a contact sheet of the generator."""
from __future__ import annotations

import argparse

_EXAMPLES = """\
examples:
  regaze synth --subjects 40 --per-subject 100 --size 128 --out data/synth128.h5
  regaze synth --subjects 10 --per-subject 24 --per-session 8 --size 64 --out small.h5 --seed 3 --workers 2
  regaze synth --preview docs/synth_sheet.png --subjects 6

The file is in the regaze layout: images RGB, labels in radians (pitch, yaw) in the normalized camera, subjects
split into disjoint train/val/test sets (attributes subjects_train/val/test), and every render parameter of
every image (synth_identity, synth_session) so that any image can be re-rendered at a new gaze or head pose.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="render a synthetic face dataset with exact gaze/head labels",
        description="Render procedural 3-D faces (identity x session x pose) into a regaze-layout file, or a "
                    "contact sheet (rows = subjects; columns = a gaze sweep, then a head sweep).",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=20, help="number of identities (default 20)")
    parser.add_argument("--per-subject", type=int, default=60, help="images per subject (default 60)")
    parser.add_argument("--per-session", type=int, default=6,
                        help="images per session: same light and background, new gaze and head (default 6)")
    parser.add_argument("--size", type=int, default=128, choices=(64, 128, 224), help="image side (default 128)")
    parser.add_argument("--out", default=None, help="output .h5 file (regaze layout)")
    parser.add_argument("--preview", default=None, metavar="PNG", help="write a contact sheet instead (or as well)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed = same bytes (default 0)")
    parser.add_argument("--splits", type=float, nargs=3, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"),
                        help="subject fractions for train/val/test (default 0.7 0.15 0.15)")
    parser.add_argument("--head-pitch-deg", type=float, default=30.0, help="head pitch range +/- (default 30)")
    parser.add_argument("--head-yaw-deg", type=float, default=45.0, help="head yaw range +/- (default 45)")
    parser.add_argument("--gaze-cone-deg", type=float, default=35.0,
                        help="largest angle between gaze and head direction (default 35)")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: min(CPUs, 4))")
    parser.add_argument("--compression", choices=("lzf", "gzip", "none"), default="lzf", help="HDF5 compression")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from regaze.errors import RegazeError

    if args.out is None and args.preview is None:
        raise RegazeError("nothing to do: give --out FILE (a dataset) and/or --preview PNG (a contact sheet)")
    for name in ("subjects", "per_subject", "per_session"):
        if getattr(args, name) < 1:
            raise RegazeError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    if args.preview is not None:
        from regaze.data.synth.preview import save_contact_sheet

        path = save_contact_sheet(args.preview, subjects=min(args.subjects, 12), size=args.size, seed=args.seed)
        print(f"wrote contact sheet {path}")
    if args.out is not None:
        from regaze.data.synth.generate import PoseRanges, write_synthetic_dataset

        ranges = PoseRanges(head_pitch_deg=args.head_pitch_deg, head_yaw_deg=args.head_yaw_deg,
                            gaze_cone_deg=args.gaze_cone_deg)
        path = write_synthetic_dataset(args.out, subjects=args.subjects, per_subject=args.per_subject,
                                       per_session=args.per_session, size=args.size, seed=args.seed,
                                       splits=tuple(args.splits), ranges=ranges, workers=args.workers,
                                       compression=args.compression, overwrite=args.force,
                                       progress=not args.quiet)
        print(f"wrote {args.subjects * args.per_subject} images to {path}")
    return 0
