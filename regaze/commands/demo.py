"""`regaze demo`: the main job end to end on the embedded synthetic data (what `make demo` runs).

Renders a synthetic 64² dataset with exact labels, trains a small redirector within a time budget, redirects
held-out test subjects and writes OUT/report.html with image grids and figures against exact target renders.
The job itself is regaze/demo/job.py.
"""
from __future__ import annotations

import argparse

EPILOG = """examples:
  regaze demo                                  # runs/demo: data, run, report.html (about 11 min on 2 cores)
  regaze demo --minutes 30 --out runs/demo30   # a longer training budget
  regaze demo --fresh                          # retrain even when runs/demo/run exists
"""


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (data, run, report.html)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget in minutes")
    parser.add_argument("--subjects", type=int, default=60, help="synthetic subjects (70/15/15 %% train/val/test)")
    parser.add_argument("--per-subject", type=int, default=80, help="images per subject")
    parser.add_argument("--eval-pairs", type=int, default=128, help="test redirections per change type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="retrain even when the run exists")


def run_from_args(args) -> int:
    import math
    from pathlib import Path

    from regaze.demo.job import run_demo
    from regaze.errors import RegazeError

    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise RegazeError(f"--minutes must be a positive number of minutes (the training budget); got {args.minutes}")
    for flag, value, least in (("--subjects", args.subjects, 3), ("--per-subject", args.per_subject, 2),
                               ("--eval-pairs", args.eval_pairs, 1)):
        if value < least:  # 3 subjects: one each for the train, validation and test splits
            raise RegazeError(f"{flag} must be >= {least}; got {value}")

    run_demo(out=Path(args.out), minutes=args.minutes, subjects=args.subjects, per_subject=args.per_subject,
             eval_pairs=args.eval_pairs, seed=args.seed, fresh=args.fresh)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the main job on synthetic data: render, train, report (`make demo`)",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_from_args)
