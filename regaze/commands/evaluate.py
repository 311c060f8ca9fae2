"""`regaze evaluate`: redirection error, disentanglement, image quality and identity of a trained model on
held-out subjects, and (`regaze evaluate downstream`) the value of its samples for training an estimator."""
from __future__ import annotations

import argparse

EPILOG = """what it measures (eval.json holds every number and the pairs; eval.md the tables):
  redirection error   an independent estimator (`regaze estimator train`) reads the redirected image;
                      ST-ED protocol: vs the target label; GazeNeRF protocol: vs its reading of the real
                      target image; gaze in the camera frame and head-relative (in head coordinates);
                      beside: the estimator's floor on real targets and the copy-the-source level, and the
                      same redirection with the model's own source-angle estimators (what `regaze redirect`
                      does by default) with their error on the held-out sources
  disentanglement     gaze-only redirection -> change of estimated head, and the reverse
  reconstruction      redirection to the source's own angles
  image quality       synthetic data: PSNR / SSIM / L1 (whole and eye region) to the exact target render,
                      with the exact target blurred by sigma = 1 and 2 px as reference rows: a model counts
                      as sharp only where it beats the 1 px row (PSNR rewards blur)
  identity            cosine of the estimator's identity embedding to a gallery of the person, with three
                      controls: the source itself (best), another subject at the same pose (clearly worse),
                      the data set's mean face at the target pose (worse than the source)
  LPIPS / FID         only when `lpips` / `pytorch_fid` and their weights are already installed
Every row scores the decoder's image (compose="decode"); the eye composite (the decoder's eyes pasted into
the source, the default output of a gaze-only change) is scored in rows of its own.
Pairs (source i, target j) are two images of one held-out subject (same session when the data has them),
drawn with --seed: the same seed gives the same pairs, so runs compare pair by pair. Gaze-only and head-only
targets are drawn in head coordinates within the data's own eye-in-head range.
--run also takes baseline:copy (the source unchanged) and baseline:oracle (synthetic data: the exact target).

examples:
  regaze evaluate --run runs/r64 --data data/synth64.h5 --estimator runs/estimator64
  regaze evaluate --run baseline:oracle --data data/synth64.h5 --estimator runs/estimator64 --out runs/oracle
  regaze evaluate downstream --data data/synth64.h5 --run runs/r64 --out runs/r64/downstream
"""

EPILOG_DOWNSTREAM = """(a) restricted: --subjects training subjects, only images within a narrow range (gaze and head at most
--gaze-max-deg / --head-max-deg from frontal; by default the median distance of the training labels);
(b) the same plus --per-source redirected samples per image, to (gaze, head) labels drawn from the whole
training split. An estimator is trained on each, with the same number of steps, for every --seeds value;
both are tested on all held-out subjects over the full range. Writes downstream.json and downstream.md.

examples:
  regaze evaluate downstream --data data/synth64.h5 --run runs/r64 --out runs/r64/downstream
  regaze evaluate downstream --data data/synth64.h5 --run baseline:oracle --out runs/oracle_downstream
  regaze evaluate downstream --data data/synth64.h5 --write-restricted data/restricted.h5
  regaze evaluate downstream --data data/synth64.h5 --augmented data/restricted_aug.h5 --out runs/ds_file
"""


def _evaluate(args) -> int:
    import torch

    from regaze.dist import pick_device
    from regaze.errors import RegazeError
    from regaze.evaluation.protocol import evaluate_run

    if args.run is None or args.data is None or args.estimator is None:
        raise RegazeError("regaze evaluate needs --run, --data and --estimator (or the `downstream` subcommand)")
    if args.pairs < 1 or args.batch_size < 1:
        raise RegazeError("--pairs and --batch-size must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    evaluate_run(run=args.run, data=args.data, estimator=args.estimator, out=args.out, n_pairs=args.pairs,
                 seed=args.seed, split=args.split, pair_rule=args.pair_rule, which=args.which,
                 batch_size=args.batch_size, device=pick_device(args.device),
                 allow_untrained_estimator=args.allow_untrained_estimator,
                 max_val_error_deg=args.max_val_error_deg, optional=not args.no_learned_metrics,
                 progress=not args.quiet)
    return 0


def _downstream(args) -> int:
    from dataclasses import replace

    import torch

    from regaze.dist import pick_device
    from regaze.errors import RegazeError
    from regaze.evaluation.estimator.network import EstimatorConfig
    from regaze.evaluation.downstream import (DownstreamConfig, downstream_experiment, restricted_indices,
                                              write_restricted)

    if args.threads:
        torch.set_num_threads(args.threads)
    base = DownstreamConfig()
    cfg = DownstreamConfig(n_subjects=args.subjects, gaze_max_deg=args.gaze_max_deg, head_max_deg=args.head_max_deg,
                           range_quantile=args.range_quantile, per_source=args.per_source, seeds=tuple(args.seeds),
                           estimator=EstimatorConfig(width=args.width),
                           train=replace(base.train, epochs=args.epochs, batch_size=args.batch_size))
    if args.write_restricted:
        from regaze.data.dataset import open_dataset

        ds = open_dataset(args.data)
        idx, info = restricted_indices(ds, train_idx=ds.split_indices("train"), cfg=cfg)
        write_restricted(ds, idx, args.write_restricted)
        print(f"wrote the restricted set ({info['n_images']} images of subjects {info['subjects']}, gaze <= "
              f"{info['gaze_max_deg']:.1f}°, head <= {info['head_max_deg']:.1f}°) to {args.write_restricted}")
        return 0
    if args.out is None:
        raise RegazeError("regaze evaluate downstream needs --out DIR (or --write-restricted FILE)")
    downstream_experiment(data=args.data, augmented=args.augmented, run=args.run, out=args.out, config=cfg,
                          which=args.which, device=pick_device(args.device), progress=not args.quiet)
    return 0


def _common(p) -> None:
    p.add_argument("--which", choices=("best", "latest"), default="best", help="checkpoint of a run directory (default best)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a trained redirector (eval.json + eval.md); `downstream` subcommand",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="run directory, checkpoint .pt, baseline:copy or baseline:oracle")
    p.add_argument("--data", help="labelled dataset with held-out subjects (test split, else val)")
    p.add_argument("--estimator", help="estimator directory from `regaze estimator train`")
    p.add_argument("--out", help="output directory for eval.json and eval.md (default: the run directory)")
    p.add_argument("--pairs", type=int, default=500, help="number of (source, target) pairs (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs (default 0)")
    p.add_argument("--split", choices=("auto", "test", "val", "all"), default="auto",
                   help="held-out images: auto = test split, else val; all = the whole file (default auto)")
    p.add_argument("--pair-rule", choices=("auto", "session", "subject"), default="auto",
                   help="pair within a session when the data has sessions (auto, default) or within a subject")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per batch (default 32)")
    p.add_argument("--max-val-error-deg", type=float, default=10.0,
                   help="refuse an estimator whose recorded validation error is above this (default 10)")
    p.add_argument("--allow-untrained-estimator", action="store_true",
                   help="evaluate even with an unvalidated or inaccurate estimator (results are flagged)")
    p.add_argument("--no-learned-metrics", action="store_true", help="do not try LPIPS / FID")
    _common(p)
    p.set_defaults(func=_evaluate)

    sub = p.add_subparsers(dest="evaluate_command", metavar="SUBCOMMAND")
    d = sub.add_parser("downstream", help="estimator trained on a restricted set without / with redirected samples",
                       description="Train a gaze estimator on (a) a restricted set and (b) the same plus redirected "
                                   "samples; report both errors on held-out subjects over several seeds.",
                       epilog=EPILOG_DOWNSTREAM, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--data", dest="ds_data", required=True, help="labelled dataset with a train split and held-out subjects")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--run", dest="ds_run", help="model making the samples: run dir, checkpoint, baseline:copy, baseline:oracle")
    src.add_argument("--augmented", help="regaze file of samples generated from the restricted set")
    d.add_argument("--out", dest="ds_out", help="output directory for downstream.json and downstream.md")
    d.add_argument("--write-restricted", metavar="FILE", help="only write the restricted set (a) to FILE and exit")
    d.add_argument("--subjects", type=int, default=10, help="training subjects in the restricted set (default 10)")
    d.add_argument("--gaze-max-deg", type=float, default=0.0, help="restricted gaze range from frontal (0 = quantile)")
    d.add_argument("--head-max-deg", type=float, default=0.0, help="restricted head range from frontal (0 = quantile)")
    d.add_argument("--range-quantile", type=float, default=0.5,
                   help="default ranges: this quantile of the training labels' distance from frontal (default 0.5)")
    d.add_argument("--per-source", type=int, default=2, help="redirected samples per restricted image (default 2)")
    d.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    d.add_argument("--epochs", type=int, default=30, help="passes over the augmented arm; both arms get that many steps (default 30)")
    d.add_argument("--batch-size", dest="ds_batch_size", type=int, default=64, help="estimator batch size (default 64)")
    d.add_argument("--width", type=int, default=32, help="estimator width (default 32)")
    _common(d)
    d.set_defaults(func=_downstream_args)


def _downstream_args(args) -> int:
    """Map the subcommand's own destinations (kept apart from the parent's options) and run it."""
    args.data, args.run, args.out, args.batch_size = args.ds_data, args.ds_run, args.ds_out, args.ds_batch_size
    return _downstream(args)
