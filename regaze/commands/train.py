"""`regaze train`: pair training of the redirector (patent claims 5–8). The loop is regaze/training/loop.py.

Several processes (GPUs, or CPU processes with gloo) run the same command under torchrun:
    torchrun --nproc_per_node=N -m regaze.cli train --data FILE --out RUN_DIR ...
"""
from __future__ import annotations

import argparse

EPILOG = """examples:
  regaze train --data data/synth64.h5 --out runs/r64 max_minutes=30   # model.image_size from the data (64)
  regaze train --data data/synth64.h5 --out runs/r64 --config configs/synth64_cpu.json   # the demo's CPU recipe
  regaze train --data data/xgaze128.h5 --out runs/x128 --config configs/xgaze128.json
  regaze train --data data/synth64.h5 --out runs/r64 --resume          # continue after a stop, same config
  regaze train --data data/synth64.h5 --out runs/r64 --resume max_steps=40000   # ... and train longer
  regaze train --data data/synth64.h5 --out runs/no_id identity_swap=false loss.ort=0   # ablations
  torchrun --nproc_per_node=4 -m regaze.cli train --data ... --out ...   # several GPUs / processes
  regaze train --data mine64.h5 --out runs/mine init_from=regaze/reference/synth64/reference.pt   # fine-tune a model

presets (configs/): synth64_cpu.json (synthetic 64 px on a CPU, as `make demo`), synth64_reference.json (the
shipped reference model: the demo's recipe + the training-time estimator's loss), and the GPU recipes
xgaze128.json and xgaze224.json (ETH-XGaze face patches at 128 / 224 px), sted128.json (GazeCapture /
MPIIFaceGaze, ST-ED files): a 22 M-parameter generator, batch 64 / 32 per GPU, bf16 autocast, channels-last,
DataLoader workers streaming pairs from the file; compile=true adds torch.compile.

data larger than data.cache_mb (4096) is read from the file at every step: data.loader_workers=N makes the
pairs in N worker processes per GPU (the same pairs as with 0), ahead of the step (data.prefetch batches each).

the config is, each layer over the one before: TrainConfig defaults; model.image_size = the data's image
size (when no layer names it); with --resume the run's own config.json; --config FILE; key=value overrides.
overrides are TrainConfig fields (regaze/config.py), dotted for nested ones: model.k=64, loss.gen=0.1,
data.min_head_deg=10, target=gaze|head|both|random, cross_swap=false, stop_at_psnr=30.

training-time estimator (loss.guide, loss.guide_random; ST-ED's redirection loss): train one on this data's
training subjects, never the evaluation estimator, and name it with guide_estimator=DIR:
  regaze estimator train --data data/synth64.h5 --out runs/guide64 --seed 1
  regaze train --data data/synth64.h5 --out runs/r64 guide_estimator=runs/guide64 loss.guide=0.1 loss.guide_random=0.1

init_from=RUN_DIR|FILE.pt starts the generator from that model's EMA weights (same model config), with a fresh
discriminator, optimisers and step count; seed=1 then draws other pairs than the first run did.

validation: on the file's validation subjects; a file without a split (raw ETH-XGaze, ST-ED) holds out its
highest subject ids (data.val_subjects, default 5 %, at least 1). best.pt is chosen by val_score, which
includes gaze and head redirections (exact targets on synthetic data); stop_at_psnr is on reconstruction PSNR.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="training data: regaze, ETH-XGaze or ST-ED/FAZE file (see `regaze data inspect`)")
    parser.add_argument("--out", required=True, help="run directory (config, stats.jsonl, checkpoints, grids)")
    parser.add_argument("--config", help="JSON file with TrainConfig fields (see configs/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its latest checkpoint, with the run's own config.json "
                             "(--config and key=value go on top of it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, dotted for nested fields: batch_size=8 loss.ort=0 identity_swap=false model.image_size=128")


def run_from_args(args) -> int:
    from regaze.training.loop import train
    from regaze.training.run_config import train_config

    cfg = train_config(data=args.data, out=args.out, config_file=args.config, overrides=args.overrides, resume=args.resume)
    guide = None
    if cfg.guide_estimator:
        from regaze.evaluation.estimator.store import load_guide_estimator

        guide, _ = load_guide_estimator(cfg.guide_estimator, data=args.data, image_size=cfg.model.image_size)
    train(cfg, data=args.data, out=args.out, resume=args.resume, progress=not args.no_progress, guide=guide)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a redirector on a dataset", description=__doc__,
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_from_args)
