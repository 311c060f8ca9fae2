"""`make demo`: the main job end to end on the embedded synthetic data, on whatever machine this is.

    python -m regaze.demo --out runs/demo [--minutes 11] [--subjects 60] [--per-subject 80]

1. render a synthetic 64² dataset with exact labels (train / val / test subjects disjoint);
2. train a small redirector on the CPU (or GPU) within a time budget;
3. redirect held-out test subjects (gaze-only and head-only changes), render the exact ground-truth targets
   and write runs/demo/report.html with image grids and the figures: PSNR to the exact target beside the
   copy-the-source baseline, over the whole image for head changes and over the eye region for gaze changes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from regaze.config import TrainConfig, config_from_dict
from regaze.errors import RegazeError

# A CPU budget of minutes: no GAN term (its D step costs a third of the time and L1 dominates this early),
# small batches at a higher learning rate for more updates in the budget.
DEMO_TRAIN = {
    "model": {"image_size": 64},
    "loss": {"gen": 0.0, "rec_eye": 20.0},  # eye regions x20 in L_R: gaze lives in ~3 % of the pixels
    "batch_size": 8,
    "lr_g": 5e-4,
    "val_every": 500,
    "ckpt_every": 500,
    "log_every": 50,
    "max_steps": 100000,  # the time budget stops it
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regaze.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo", help="output folder (data, run, report.html)")
    parser.add_argument("--minutes", type=float, default=11.0, help="training time budget in minutes")
    parser.add_argument("--subjects", type=int, default=60, help="synthetic subjects (70/15/15 %% train/val/test)")
    parser.add_argument("--per-subject", type=int, default=80, help="images per subject")
    parser.add_argument("--eval-pairs", type=int, default=128, help="test redirections per change type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="retrain even when the run exists")
    args = parser.parse_args(argv)
    try:
        run_demo(out=Path(args.out), minutes=args.minutes, subjects=args.subjects, per_subject=args.per_subject,
                 eval_pairs=args.eval_pairs, seed=args.seed, fresh=args.fresh)
    except RegazeError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    return 0


def run_demo(*, out: Path, minutes: float, subjects: int, per_subject: int, eval_pairs: int, seed: int, fresh: bool) -> dict:
    from regaze.data.synth import write_synthetic_dataset
    from regaze.report import write_demo_report
    from regaze.train import train

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "synth64.h5"
    if not data.exists():
        print(f"[1/3] rendering {subjects} x {per_subject} synthetic faces at 64² -> {data}", file=sys.stderr)
        write_synthetic_dataset(data, subjects=subjects, per_subject=per_subject, size=64, seed=seed)
    else:
        print(f"[1/3] reusing {data}", file=sys.stderr)

    run = out / "run"
    summary_file = run / "summary.json"
    if fresh or not summary_file.exists():
        if fresh and run.exists():
            import shutil

            shutil.rmtree(run)
        cfg = config_from_dict(TrainConfig, {**DEMO_TRAIN, "max_minutes": minutes, "seed": seed})
        print(f"[2/3] training for at most {minutes:g} min -> {run}", file=sys.stderr)
        train(cfg, data=data, out=run, resume=(run / "checkpoints").exists() and any((run / "checkpoints").glob("step_*.pt")))
    else:
        print(f"[2/3] reusing the trained run in {run} (--fresh retrains)", file=sys.stderr)

    print("[3/3] evaluating on held-out subjects against exact target renders", file=sys.stderr)
    report = write_demo_report(run=run, data=data, out=out / "report.html", pairs=eval_pairs, seed=seed)
    print(f"done in {(time.time() - t0) / 60:.1f} min: {out / 'report.html'}", file=sys.stderr)
    for line in report["lines"]:
        print(line)
    return report


if __name__ == "__main__":
    sys.exit(main())
