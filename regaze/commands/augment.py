"""`regaze augment`: enlarge a labelled dataset with redirected copies of its images. See
regaze/augment/augmentation.py. With --estimator this layer loads the independent estimator (evaluation/,
which augment/ never imports) and hands `augment` a plain `read_angles` callable."""
from __future__ import annotations

import argparse

EPILOG = """examples:
  regaze augment --run runs/r64 --data data/synth64.h5 --out data/synth64_aug.h5 --per-image 4
  regaze augment --data data/synth64.h5 --out data/synth64_aug_ref.h5 --per-image 4   # the shipped reference model
  regaze augment --run runs/x128 --data xgaze128.h5 --out aug.h5 --per-image 8 --targets uniform \\
                 --gaze-range 40,50 --head-range 30,45 --change gaze --include-source
  regaze augment --run runs/r64 --data synth64.h5 --out grid.h5 --targets grid --change head --per-image 9
  regaze augment --run runs/r64 --data synth64.h5 --out checked.h5 --estimator runs/estimator64 --max-residual-deg 8
  regaze augment --run runs/r64 --data unsplit.h5 --out all.h5 --split all     # every subject, by choice
  torchrun --nproc_per_node=4 -m regaze.cli augment --run-dir runs/x128 --data xgaze128.h5 --out aug.h5 --per-image 8
    (under torchrun write --run-dir: torchrun reads a bare --run as an abbreviation of its own --run-path)

targets: kde     = the input's own joint (gaze, head) label distribution, in head coordinates: a random label
                   row (gaze relative to the head, head) plus Gaussian noise with Scott's bandwidth (4-D KDE);
                   --change gaze composes its head-relative gaze with the source's head;
         uniform = uniform in the ranges; grid = a lattice over the ranges (--grid-steps values per angle).
in range: every target keeps the gaze within the data's own eye-in-head range of the face direction (the
99.5 % quantile of the labels' gaze-to-face angle; --eye-range DEG to set it) and inside the ranges. kde and
uniform draws outside are redrawn; targets still outside, and lattice points outside, are left out, never
written; the counts are in the output's attributes (augment_left_out_of_range, augment_planned_images).
ranges (degrees): 'P,Y' means |pitch| <= P and |yaw| <= Y; 'PMIN,PMAX,YMIN,YMAX' is explicit; the default
is the range of the selected sources' own labels (where the model has seen data). Valid: |pitch| <= 90,
|yaw| <= 180. --change gaze keeps the source's head label (and head feature), --change head its gaze.

sources: the input's train split (attributes subjects_train or split=train) by default: augmenting validation
or test subjects leaks them into evaluation. --split all augments every image (an explicit choice).

labels: face_gaze / face_head_pose are the requested target angles. --estimator DIR (an independent
estimator, `regaze estimator train`) reads every written image back and stores estimated_gaze,
estimated_head (rad) and residual_gaze_deg, residual_head_deg per sample; --max-residual-deg X leaves out
redirected samples whose gaze or head residual exceeds X (source copies are kept). `regaze data inspect OUT`
prints the residual distribution.

Resumable: a killed run (even SIGKILL) continues where it stopped when the same command is run again;
finished chunks live in OUT.parts/ until the final merge, and OUT appears only when complete. Running the
same command on a complete OUT does nothing; other arguments need --force. The same --seed gives the same
file whatever the number of processes (the targets of a sample depend only on the seed and its source).
The images must already be at the model's size (convert with `regaze data convert --size`).

model: --run RUN_DIR (or a checkpoint .pt) when given; else the reference model shipped with regaze
(regaze/reference/synth64/reference.pt, 64 px, trained on synthetic faces only: for real data train your
own with `regaze train`); else runs/demo/run (`make demo`) in the working directory. A notice on stderr says
which; the output's checkpoint and checkpoint_sha256 attributes record the file used.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--run", "--run-dir", dest="run", default=None,
                        help="training run directory (or a checkpoint .pt file); spell it --run-dir under torchrun "
                             "(default: the shipped reference model, trained on synthetic faces; without one, "
                             "runs/demo/run from `make demo`)")
    parser.add_argument("--which", choices=("best", "latest"), default="best",
                        help="checkpoint of the run directory to use (default best)")
    parser.add_argument("--data", required=True, help="labelled input dataset (regaze, ETH-XGaze or ST-ED/FAZE layout)")
    parser.add_argument("--out", required=True, help="output .h5 file (regaze layout)")
    parser.add_argument("--per-image", type=int, default=4, metavar="K", help="new images per source image (default 4)")
    parser.add_argument("--targets", choices=("kde", "uniform", "grid"), default="kde",
                        help="how target angles are chosen (default kde)")
    parser.add_argument("--change", choices=("gaze", "head", "both"), default="both",
                        help="which angles change (default both)")
    parser.add_argument("--gaze-range", metavar="DEG", help="gaze target range in degrees: 'P,Y' or 'PMIN,PMAX,YMIN,YMAX'")
    parser.add_argument("--head-range", metavar="DEG", help="head target range in degrees: 'P,Y' or 'PMIN,PMAX,YMIN,YMAX'")
    parser.add_argument("--grid-steps", type=int, default=0, metavar="N",
                        help="grid targets: values per changed angle (default: the fewest giving >= K points)")
    parser.add_argument("--include-source", action="store_true", help="also copy each source image (change_mode 0)")
    parser.add_argument("--split", choices=("train", "val", "test", "all"), default="train",
                        help="augment this split's subjects (the input's subjects_* attributes; default train: "
                             "augmenting val/test subjects leaks into evaluation); all = every image")
    parser.add_argument("--eye-range", type=float, default=None, metavar="DEG",
                        help="largest angle between a target gaze and its face direction, degrees "
                             "(default: the data's own range, the 99.5%% quantile of its labels)")
    parser.add_argument("--estimator", metavar="DIR",
                        help="independent estimator (regaze estimator train): store its reading of every written "
                             "image and the residual to the label (degrees)")
    parser.add_argument("--max-residual-deg", type=float, default=None, metavar="X",
                        help="with --estimator: leave out redirected samples whose gaze or head residual exceeds X degrees")
    parser.add_argument("--allow-untrained-estimator", action="store_true",
                        help="use an estimator without a (good) validation record; flagged in the provenance")
    parser.add_argument("--source-angles", choices=("labels", "estimated"), default="labels",
                        help="current angles the rotation starts from: the input's labels (default) or the "
                             "model's auxiliary estimates")
    parser.add_argument("--seed", type=int, default=0, help="seed of the target draws (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--chunk-size", type=int, default=1024,
                        help="images per part file, the unit of resumption and of sharding (default 1024)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--compression", choices=("lzf", "gzip", "none"), default="lzf",
                        help="HDF5 compression of the output (default lzf)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing OUT and discard OUT.parts of another augmentation")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--targets-from", metavar="FILE",
                        help="draw targets from FILE's labels (its train split if it has one) instead of the input's, "
                             "and take FILE's label range as the default ranges: widen a narrow dataset")
    parser.add_argument("--compose", choices=("auto", "decode", "eyes"), default="auto",
                        help="auto (default): gaze-only changes paste the model's eye regions into the source image "
                             "(nothing else moves); head changes are the decoder's whole image. decode: always the decoder's image")


def estimator_reader(path, *, device: str, allow_untrained: bool):
    """Load the independent estimator at `path` -> (read_angles(images_u8 (n, S, S, 3)) -> {"gaze", "head":
    (n, 2) rad}, its plain-data description for the output's provenance)."""
    import json
    import os

    from regaze.checkpoint import file_sha256
    from regaze.dist import pick_device
    from regaze.evaluation.estimator.network import estimate
    from regaze.evaluation.estimator.store import load_estimator

    est, info = load_estimator(path, allow_untrained=allow_untrained)
    est.to(pick_device(device, local_rank=int(os.environ.get("LOCAL_RANK", "0"))))  # torchrun: this rank's GPU

    def read_angles(images_u8):
        out = estimate(est, images_u8)
        return {"gaze": out["gaze"], "head": out["head"]}

    description = {"checkpoint": os.path.abspath(info["checkpoint"]), "sha256": file_sha256(info["checkpoint"]),
                   "image_size": int(info["config"]["image_size"]),
                   "val": json.loads(json.dumps(info["val"], default=float)), "flag": info["flag"]}
    return read_angles, description


def run_from_args(args) -> int:
    import os
    import sys

    from regaze.augment.augmentation import augment, check_device
    from regaze.augment.targets import parse_range_deg
    from regaze.errors import RegazeError
    from regaze.model.pretrained import resolve_run

    gaze_range = None if args.gaze_range is None else parse_range_deg(args.gaze_range, name="--gaze-range")
    head_range = None if args.head_range is None else parse_range_deg(args.head_range, name="--head-range")
    if args.max_residual_deg is not None and args.estimator is None:
        raise RegazeError("--max-residual-deg needs --estimator DIR (the estimator that reads the images)")
    run, notice = resolve_run(args.run)
    if notice and os.environ.get("RANK", "0") == "0":  # torchrun: once, not once per process
        print(notice, file=sys.stderr)
    read_angles, estimator_info = None, None
    if args.estimator is not None:
        check_device(args.device)
        read_angles, estimator_info = estimator_reader(args.estimator, device=args.device,
                                                       allow_untrained=args.allow_untrained_estimator)
    augment(run=run, data=args.data, out=args.out, per_image=args.per_image, targets=args.targets,
            change=args.change, gaze_range_rad=gaze_range, head_range_rad=head_range, eye_range_deg=args.eye_range,
            include_source=args.include_source, grid_steps=args.grid_steps, split=args.split,
            source_angles=args.source_angles, seed=args.seed, batch_size=args.batch_size, chunk_size=args.chunk_size,
            which=args.which, device=args.device, threads=args.threads, compression=args.compression,
            force=args.force, progress=not args.quiet, compose=args.compose, targets_from=args.targets_from,
            read_angles=read_angles, estimator_info=estimator_info, max_residual_deg=args.max_residual_deg)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "augment", help="add redirected copies of a dataset's images, with labels and provenance",
        description="Re-render every source image K times with new gaze and/or head angles and write a labelled\n"
                    "regaze-layout file with per-image provenance (source_index, sample_k, change_mode, checkpoint).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run_from_args)
