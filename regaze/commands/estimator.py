"""`regaze estimator`: the independent gaze + head estimator used by `regaze evaluate` (never by training).

    regaze estimator train --data FILE --out DIR [--epochs 80] [--width 16] [--eye-width 16] ...
    regaze estimator show DIR
"""
from __future__ import annotations

import argparse
import math

EPILOG_TRAIN = """The estimator trains on the file's `train` split (the whole file when it has no split) and measures
its own error on the `val` split subjects, or on a held-out --val-fraction of the training subjects when the
file has no val split. The `test` split is never used: it is for `regaze evaluate`. The error is stored in
the checkpoint; `regaze evaluate` refuses an estimator without it, or above --max-val-error-deg there.

examples:
  regaze synth --subjects 400 --per-subject 70 --size 64 --out data/synth64_est400.h5 --seed 7
  regaze estimator train --data data/synth64_est400.h5 --out runs/estimator64 --epochs 32 --threads 1   # ~31 min: 2.7° gaze
  regaze estimator train --data data/synth64.h5 --out runs/est_quick --epochs 2 --max-train-images 2000
  regaze estimator show runs/estimator64
"""


def _train(args) -> int:
    import torch

    from regaze.dist import pick_device
    from regaze.errors import RegazeError
    from regaze.evaluation.estimator.network import EstimatorConfig
    from regaze.evaluation.estimator.trainer import EstimatorTrainConfig, train_estimator_on_file

    if args.epochs < 1 or args.batch_size < 1 or args.width < 1 or args.eye_width < 0:
        raise RegazeError("--epochs, --batch-size and --width must be >= 1, --eye-width >= 0")
    for flag, value in (("--lr", args.lr), ("--identity-weight", args.identity_weight),
                        ("--crop-head-noise", args.crop_head_noise)):
        if not math.isfinite(value):
            raise RegazeError(f"{flag} must be a finite number; got {value}")
    if args.lr <= 0 or args.identity_weight < 0:
        raise RegazeError(f"--lr must be > 0 and --identity-weight >= 0; got {args.lr}, {args.identity_weight}")
    if not 0.0 < args.val_fraction < 1.0:
        raise RegazeError(f"--val-fraction must be in (0, 1); got {args.val_fraction}")
    for name, value, top in (("--roll-deg", args.roll_deg, 45.0), ("--tilt-deg", args.tilt_deg, 15.0), ("--zoom", args.zoom, 0.5)):
        if not 0.0 <= value <= top:
            raise RegazeError(f"{name} must be in [0, {top:g}]; got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    train_estimator_on_file(
        data=args.data, out=args.out, config=EstimatorConfig(width=args.width, eye_width=args.eye_width),
        train_config=EstimatorTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                          seed=args.seed, hflip=not args.no_flip, identity_weight=args.identity_weight,
                                          crop_head_noise_deg=args.crop_head_noise, roll_deg=args.roll_deg,
                                          tilt_deg=args.tilt_deg, zoom=args.zoom),
        val_fraction=args.val_fraction, max_train_images=args.max_train_images,
        device=pick_device(args.device), progress=not args.quiet)
    return 0


def _show(args) -> int:
    import json

    from regaze.evaluation.estimator.store import load_estimator

    _, info = load_estimator(args.dir, allow_untrained=True)
    print(json.dumps(info, indent=2, default=str))
    if info["untrained"]:
        print(f"NOT USABLE for evaluation by default: it {info['flag']}")
        return 1
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("estimator", help="train / inspect the independent gaze+head estimator",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="estimator_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("train", help="train the estimator on a labelled file and record its validation error",
                       description="Train the evaluation estimator (a small ResNet regressing gaze and head "
                                   "pitch/yaw, with an identity embedding).",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="labelled dataset (regaze, ETH-XGaze or ST-ED/FAZE layout)")
    p.add_argument("--out", required=True, help="output directory: estimator.pt and estimator.json")
    p.add_argument("--epochs", type=int, default=80, help="passes over the training images (default 80)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW peak learning rate, cosine schedule (default 2e-3)")
    p.add_argument("--width", type=int, default=16, help="channels of the first stage (default 16)")
    p.add_argument("--eye-width", type=int, default=16,
                   help="channels of the eye-crop stream (default 16; 0 = whole face only)")
    p.add_argument("--crop-head-noise", type=float, default=1.5,
                   help="training eye crops placed by the head label + this Gaussian noise, deg (default 1.5; "
                        "< 0 = by the detached predicted head)")
    p.add_argument("--identity-weight", type=float, default=0.1,
                   help="weight of the subject-classification loss that trains the identity embedding (default 0.1)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation (yaw sign flipped with it)")
    p.add_argument("--roll-deg", type=float, default=0.0,
                   help="camera turned about its optical axis by up to this many degrees, labels turned with it "
                        "(default 0: none); for a head reader of `regaze normalize --head-estimator` (costs gaze accuracy)")
    p.add_argument("--tilt-deg", type=float, default=0.0,
                   help="camera turned about its x and y axes by up to this many degrees each (the face off the "
                        "crop's centre, as a misplaced crop puts it), labels turned with it (default 0: none)")
    p.add_argument("--zoom", type=float, default=0.0,
                   help="crops zoomed by up to this fraction either way, e.g. 0.1 (default 0: none)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of training subjects held out when the file has no val split (default 0.1)")
    p.add_argument("--max-train-images", type=int, default=0, help="use a seeded subset of this many (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, order and augmentation (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)
    s = sub.add_parser("show", help="print an estimator's recorded validation error and configuration")
    s.add_argument("dir", help="estimator directory (or its estimator.pt)")
    s.set_defaults(func=_show)
