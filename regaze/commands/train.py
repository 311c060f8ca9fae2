"""`regaze train`: pair training of the redirector (patent claims 5–8). See regaze/train.py."""
from __future__ import annotations

import argparse

EPILOG = """examples:
  regaze train --data data/synth64.h5 --out runs/r64 model.image_size=64 max_minutes=30
  regaze train --data data/xgaze128.h5 --out runs/x128 --config configs/xgaze128.json
  regaze train --data data/synth64.h5 --out runs/r64 --resume          # continue after a stop
  regaze train --data data/synth64.h5 --out runs/no_id identity_swap=false loss.ort=0   # ablations
  torchrun --nproc_per_node=4 -m regaze.train --data ... --out ...      # several GPUs / processes

overrides are TrainConfig fields (regaze/config.py), dotted for nested ones: model.k=64, loss.gen=0.1,
data.min_head_deg=10, target=gaze|head|both|random, cross_swap=false, stop_at_psnr=30.
"""


def register(subparsers) -> None:
    from regaze.train import add_arguments, run_from_args

    p = subparsers.add_parser("train", help="train a redirector on a dataset", description=__doc__,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_from_args)
