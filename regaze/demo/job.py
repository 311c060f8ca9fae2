"""`make demo`: the main job end to end on the embedded synthetic data, on whatever machine this is.

    regaze demo --out runs/demo [--minutes 10] [--subjects 60] [--per-subject 80]     # `make demo`

1. render a synthetic 64² dataset with exact labels (train / val / test subjects disjoint);
2. train a small redirector on the CPU (or GPU) within a time budget;
3. redirect held-out test subjects (gaze-only, head-only and both together), render the exact ground-truth
   targets and write runs/demo/report.html with image grids, angle sweeps of one test person and the figures:
   PSNR to the exact target beside the copy-the-source baseline and the blurred-target controls, over the whole
   image for head changes and over the eye region for gaze changes; the shipped reference model beside this
   run's where the install has one (model.pretrained.reference_checkpoint).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from regaze.config import TrainConfig, config_from_dict
from regaze.errors import RegazeError

# A CPU budget of minutes: no GAN term (its D step costs a third of the time and L1 dominates this early),
# small batches at a higher learning rate for more updates in the budget. The warping decoder and latent
# consistency won issue 13's lever study at equal CPU time (benchmarks/ablation.md: head-only PSNR +3 dB,
# identity 0.43 -> 0.76, head error equal); the training-time estimator's loss (the reference model's recipe,
# configs/synth64_reference.json) needs an estimator trained first, which a 10-minute budget cannot spare.
DEMO_TRAIN = {
    # half the default width (channel_base 768 / max 128): 2.2-2.3x the steps, so at 10 CPU minutes it beats the
    # default width on every column (benchmarks/ablation.md, demo_width_10min), and in this job's own conditions
    # on all but gaze error and head-only leakage (docs/RESULTS.md)
    "model": {"image_size": 64, "decoder_mode": "warp", "channel_base": 768, "channel_max": 128},
    "loss": {"gen": 0.0, "rec_eye": 20.0, "latent": 0.1},  # eye regions x20 in L_R: gaze lives in ~3 % of the pixels
    "batch_size": 8,
    "lr_g": 5e-4,
    "val_every": 500,
    "ckpt_every": 500,
    "log_every": 50,
    "max_steps": 100000,  # the time budget stops it
}


def run_demo(*, out: Path, minutes: float, subjects: int, per_subject: int, eval_pairs: int, seed: int, fresh: bool) -> dict:
    from regaze.data.synth import write_synthetic_dataset
    from regaze.demo.report_page import write_demo_report
    from regaze.training.loop import train

    import torch

    t0 = time.time()
    threads = free_cores()
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "synth64.h5"
    run = out / "run"
    if data.exists() and not renders_match(data):
        print(f"[1/3] {data} was rendered by another version of the renderer: rendering it again and retraining",
              file=sys.stderr)
        data.unlink()
        fresh = True
    if not data.exists():
        print(f"[1/3] rendering {subjects} x {per_subject} synthetic faces at 64² -> {data}", file=sys.stderr)
        write_synthetic_dataset(data, subjects=subjects, per_subject=per_subject, size=64, seed=seed)
    else:
        print(f"[1/3] reusing {data}", file=sys.stderr)

    summary_file = run / "summary.json"
    changed = [] if fresh or not summary_file.exists() else recipe_changes(run / "config.json")
    if changed:
        print(f"[2/3] {run} was trained with another recipe ({'; '.join(changed)}): training it again", file=sys.stderr)
        fresh = True
    if fresh or not summary_file.exists():
        if fresh and run.exists():
            import shutil

            shutil.rmtree(run)
        cfg = config_from_dict(TrainConfig, {**DEMO_TRAIN, "max_minutes": minutes, "seed": seed, "threads": threads})
        print(f"[2/3] training for at most {minutes:g} min on {threads} thread(s) -> {run}", file=sys.stderr)
        train(cfg, data=data, out=run, resume=(run / "checkpoints").exists() and any((run / "checkpoints").glob("step_*.pt")))
    else:
        print(f"[2/3] reusing the trained run in {run} (--fresh retrains)", file=sys.stderr)

    from regaze.model.pretrained import reference_checkpoint

    reference = reference_checkpoint()  # the shipped model, scored beside this run's (None: not in this install)
    print("[3/3] evaluating on held-out subjects against exact target renders"
          + (f" (and the reference model {reference})" if reference else ""), file=sys.stderr)
    report = write_demo_report(run=run, data=data, out=out / "report.html", pairs=eval_pairs, seed=seed,
                               reference=reference)
    print(f"done in {(time.time() - t0) / 60:.1f} min: {out / 'report.html'}", file=sys.stderr)
    for line in report["lines"]:
        print(line)
    for line in report.get("reference", {}).get("lines", []):
        print(f"reference model: {line}")
    return report


def recipe_changes(config_file: Path) -> list[str]:
    """What the run's saved config says differently from today's DEMO_TRAIN ("loss.latent: 0.0 -> 0.1", ...), so
    that a demo run trained by an older regaze is trained again rather than reported as today's recipe. A
    missing or unreadable config counts as changed."""
    import json

    try:
        saved = config_from_dict(TrainConfig, json.loads(Path(config_file).read_text())).to_dict()
    except (OSError, ValueError, RegazeError) as e:
        return [f"no readable {Path(config_file).name} ({type(e).__name__})"]
    wanted = config_from_dict(TrainConfig, DEMO_TRAIN).to_dict()
    changes = []
    for key, value in DEMO_TRAIN.items():
        if key in ("max_steps", "max_minutes"):
            continue
        for sub in (value if isinstance(value, dict) else {None: value}):
            have = saved[key] if sub is None else saved[key][sub]
            want = wanted[key] if sub is None else wanted[key][sub]
            if have != want:
                changes.append(f"{key if sub is None else f'{key}.{sub}'}: {have!r} -> {want!r}")
    return changes


def free_cores(*, window_s: float = 1.0) -> int:
    """CPU threads worth using now: the cores minus what other processes keep busy (at least 1).

    On a small machine that is already busy, torch's default of one thread per core makes every step wait for
    the thread that shares a core with the other job: measured on the 2-core machine with one other busy
    process, training steps took up to 3 s instead of 0.25 s (docs/RESULTS.md, demo section). The load
    is sampled from /proc/stat over `window_s` while this process sleeps; elsewhere all cores are used."""
    cores = os.cpu_count() or 1

    def busy_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]  # user nice system idle iowait irq softirq ...
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values) - idle, sum(values)

    try:
        b0, t0 = busy_total()
        time.sleep(window_s)
        b1, t1 = busy_total()
    except (OSError, ValueError, IndexError):
        return cores
    busy_cores = cores * (b1 - b0) / max(1, t1 - t0)
    return max(1, min(cores, round(cores - busy_cores)))


def renders_match(path: Path, *, n: int = 4) -> bool:
    """Does this version of the renderer reproduce the first `n` stored images of a synthetic file exactly?"""
    from regaze.data.dataset import open_dataset
    from regaze.data.synth import render

    ds = open_dataset(path)
    idx = np.arange(min(n, len(ds)))
    try:
        again = render(identity=ds.read_array("synth_identity", idx), session=ds.read_array("synth_session", idx),
                       head=ds.head[idx], gaze=ds.gaze[idx], size=ds.size)
    except (KeyError, ValueError, TypeError, RegazeError):  # parameters of another generator version
        return False
    return bool(np.array_equal(again, ds.read_images(idx)))

