"""`regaze train`: pair training of the redirector (patent claims 5–8). The loop is regaze/training/loop.py.

Several processes (GPUs, or CPU processes with gloo) run the same command under torchrun:
    torchrun --nproc_per_node=N -m regaze.cli train --data FILE --out RUN_DIR ...
"""
from __future__ import annotations

import argparse

EPILOG = """examples:
  regaze train --data data/synth64.h5 --out runs/r64 model.image_size=64 max_minutes=30
  regaze train --data data/xgaze128.h5 --out runs/x128 --config configs/xgaze128.json
  regaze train --data data/synth64.h5 --out runs/r64 --resume          # continue after a stop
  regaze train --data data/synth64.h5 --out runs/no_id identity_swap=false loss.ort=0   # ablations
  torchrun --nproc_per_node=4 -m regaze.cli train --data ... --out ...   # several GPUs / processes

overrides are TrainConfig fields (regaze/config.py), dotted for nested ones: model.k=64, loss.gen=0.1,
data.min_head_deg=10, target=gaze|head|both|random, cross_swap=false, stop_at_psnr=30.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="training data: regaze, ETH-XGaze or ST-ED/FAZE file (see `regaze data inspect`)")
    parser.add_argument("--out", required=True, help="run directory (config, stats.jsonl, checkpoints, grids)")
    parser.add_argument("--config", help="JSON file with TrainConfig fields (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, dotted for nested fields: batch_size=8 loss.ort=0 identity_swap=false model.image_size=128")


def run_from_args(args) -> int:
    from regaze.config import build_config
    from regaze.training.loop import train

    cfg = build_config(config_file=args.config, overrides=args.overrides)
    train(cfg, data=args.data, out=args.out, resume=args.resume, progress=not args.no_progress)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a redirector on a dataset", description=__doc__,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_from_args)
