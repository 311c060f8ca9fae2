"""Measure the shipped reference model (regaze/reference/synth64/reference.pt, the exported file itself) and
write the figures into its card.json under "metrics", beside issue 13's targets and whether each is met.

    python -m benchmarks.reference_card --data data/synth64_ref.h5 --estimator runs/estimator64 [--pairs 300]

The measurement is the learning curve's (benchmarks/learning_curve.py `measure`: the evaluation protocol on
seeded held-out pairs, and the demo report's exact-render PSNR rows with their sigma = 1 px blur controls), so
the card, the curve and the demo report agree. The estimator must be independent of the model: never its
training-time estimator (the card's guide), which is refused.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.machine import describe

# issue 13's targets: name -> (row key, comparison, bound or the key of the bound)
TARGETS = {
    "gaze error <= 2 x the estimator's floor": ("gaze_err_over_floor", "<=", 2.0),
    "head error <= 2 x the estimator's floor": ("head_err_over_floor", "<=", 2.0),
    "head-only PSNR >= 26 dB": ("head_only_psnr_db", ">=", 26.0),
    "head-only PSNR above the sigma = 1 px blur control": ("head_only_psnr_db", ">", "head_only_blur_1px_psnr_db"),
    "gaze-only eye PSNR (decoder image) above the sigma = 1 px control": ("gaze_only_eye_psnr_db", ">", "gaze_only_blur_1px_eye_psnr_db"),
    "identity within 10 % of the source-itself control": ("identity_ratio", ">=", 0.9),
    "head change on gaze-only <= 1.5 deg": ("gaze_only_head_change_deg", "<=", 1.5),
}


def check_targets(row: dict) -> dict:
    """{target: {"value", "bound", "met"}} for the row of `measure` (met None where a value is missing)."""
    out = {}
    for name, (key, op, bound) in TARGETS.items():
        value = row.get(key)
        limit = row.get(bound) if isinstance(bound, str) else bound
        met = None
        if value is not None and limit is not None:
            met = bool(value <= limit if op == "<=" else value >= limit if op == ">=" else value > limit)
        out[name] = {"value": value, "bound": limit, "met": met}
    return out


def main(argv=None) -> int:
    import torch

    from regaze.data.dataset import open_dataset
    from regaze.errors import RegazeError
    from regaze.evaluation.eval_pairs import held_out_indices
    from regaze.evaluation.estimator.store import load_estimator
    from regaze.evaluation.protocol import load_model
    from regaze.model.pretrained import reference_checkpoint

    from benchmarks.learning_curve import measure

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data with held-out test subjects")
    parser.add_argument("--estimator", type=Path, required=True, help="the independent evaluation estimator")
    parser.add_argument("--pairs", type=int, default=300, help="evaluation pairs (default 300)")
    parser.add_argument("--images", type=int, default=128, help="held-out images of the PSNR rows (default 128)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = reference_checkpoint()
    if ckpt is None:
        raise SystemExit("no shipped reference model: export one first (`regaze model export-reference ...`)")
    card_path = ckpt.parent / "card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    guide = ((card.get("training") or {}).get("config") or {}).get("guide_estimator") or card.get("guide_estimator")
    if guide and Path(guide).resolve() == args.estimator.resolve():
        raise RegazeError(f"{args.estimator} is the reference model's training-time estimator: use an independent one")
    dataset = open_dataset(args.data)
    est, est_info = load_estimator(args.estimator, image_size=dataset.size)
    held_out = held_out_indices(dataset, split="auto")
    model, model_info = load_model(ckpt, dataset=dataset, held_out=held_out[0])
    row, evaluation = measure(model, model_info=model_info, dataset=dataset, estimator=est, estimator_info=est_info,
                              held_out=held_out, pairs=args.pairs, images=args.images, seed=0, batch_size=32,
                              device=torch.device("cpu"), progress=True)
    card["metrics"] = {
        "measured_on": {"data": str(args.data), "split": held_out[1], "pairs": args.pairs, "images": args.images,
                        "estimator": str(args.estimator), "estimator_val": est_info.get("val"),
                        "command": "python -m benchmarks.reference_card " + " ".join(argv or sys.argv[1:]),
                        "machine": describe()},
        "figures": row,
        "targets": check_targets(row),
    }
    tmp = card_path.with_name(".card.json.tmp")
    tmp.write_text(json.dumps(card, indent=2, default=float) + "\n")
    os.replace(tmp, card_path)
    for name, t in card["metrics"]["targets"].items():
        v, b = t["value"], t["bound"]
        print(f"{'MET ' if t['met'] else 'MISS' if t['met'] is False else '----'} {name}: "
              f"{'-' if v is None else f'{v:.3f}'} (bound {'-' if b is None else f'{b:.3f}'})")
    print(f"wrote {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
