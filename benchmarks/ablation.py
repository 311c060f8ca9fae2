"""The ablation of issue 6: the full method against the same training without cross swap, without identity
swap and without the orthogonality loss — same data, same step budget, same seeded evaluation pairs, same
independent estimator. Writes benchmarks/results/ablation.json and benchmarks/ablation.md.

    python -m benchmarks.ablation --data runs/demo/synth64.h5 --estimator runs/estimator64 [--steps 2000]
    python -m benchmarks.ablation ... --variants full no_ort      # train + evaluate some (e.g. one per core)
    python -m benchmarks.ablation ... --report-only               # the table from the runs present

Each variant trains into RUN_ROOT/NAME (resumed if it stopped early) with the demo's 64-px recipe plus the
variant's switch, for a fixed number of steps (not minutes: a step budget is the same budget whatever else
the machine is doing), then `regaze evaluate` writes RUN_ROOT/NAME/eval.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULTS = Path(__file__).parent / "results" / "ablation.json"
TABLE = Path(__file__).parent / "ablation.md"
VARIANTS = {  # name -> (TrainConfig overrides, what it removes)
    "full": ({}, "the method: cross swap, identity swap, L_ort"),
    "no_cross_swap": ({"cross_swap": False}, "whole-image redirection to the other's angles, no feature swap (claim 5 off)"),
    "no_identity_swap": ({"identity_swap": False}, "Z_id not exchanged within the pair (claim 6 off)"),
    "no_ort": ({"loss": {"ort": 0.0}}, "λ5 = 0 (no orthogonality loss)"),
}
# (label, path in eval.json's summary, unit, better)
COLUMNS = [
    ("gaze err (ST-ED)", ("redirection", "st_ed_gaze_err_deg"), "°", "lower"),
    ("head err (ST-ED)", ("redirection", "st_ed_head_err_deg"), "°", "lower"),
    ("head change, gaze-only", ("disentanglement", "gaze_only_head_change_deg"), "°", "lower"),
    ("gaze change, head-only", ("disentanglement", "head_only_gaze_change_deg"), "°", "lower"),
    ("PSNR full", ("image_quality", "full", "model", "psnr_db"), "dB", "higher"),
    ("PSNR head-only", ("image_quality", "head_only", "model", "psnr_db"), "dB", "higher"),
    ("eye PSNR gaze-only", ("image_quality", "gaze_only", "model", "eye_psnr_db"), "dB", "higher"),
    ("identity cos", ("identity", "output_vs_source"), "", "higher"),
]


def _get(summary: dict, path: tuple) -> float | None:
    node = summary
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node["mean"] if isinstance(node, dict) else node


def run_variant(name: str, *, data: Path, estimator: Path, root: Path, steps: int, pairs: int, threads: int,
                evaluate: bool = True) -> dict | None:
    from regaze.config import TrainConfig, config_from_dict
    from regaze.demo.job import DEMO_TRAIN
    from regaze.evaluation.protocol import evaluate_run
    from regaze.training.loop import train

    overrides, _ = VARIANTS[name]
    merged = json.loads(json.dumps(DEMO_TRAIN))
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    cfg = config_from_dict(TrainConfig, {**merged, "max_steps": steps, "max_minutes": 0, "threads": threads, "seed": 0})
    out = root / name
    done = (out / "eval.json").exists() and json.loads((out / "eval.json").read_text()).get("model", {}).get("step") == steps
    if not done:
        resume = (out / "checkpoints").exists() and any((out / "checkpoints").glob("step_*.pt"))
        print(f"[ablation] {name}: training {steps} steps -> {out}", file=sys.stderr)
        if not (resume and _latest_step(out) >= steps):
            train(cfg, data=data, out=out, resume=resume)
        if not evaluate:
            return None
        evaluate_run(run=out, data=data, estimator=estimator, n_pairs=pairs, which="latest", progress=True)
    return json.loads((out / "eval.json").read_text())


def _latest_step(run: Path) -> int:
    steps = sorted(run.glob("checkpoints/step_*.pt"))
    return int(steps[-1].stem.split("_")[1]) if steps else 0


def report(*, root: Path, steps: int, data: Path, estimator: Path, pairs: int, note: str = "") -> dict:
    rows = {}
    for name in VARIANTS:
        path = root / name / "eval.json"
        if path.exists():
            ev = json.loads(path.read_text())
            rows[name] = {"step": ev["model"].get("step"),
                          **{label: _get(ev["summary"], p) for label, p, _, _ in COLUMNS},
                          "floor_gaze_deg": _get(ev["summary"], ("floor", "gaze_err_deg")),
                          "floor_head_deg": _get(ev["summary"], ("floor", "head_err_deg"))}
    result = {"benchmark": "ablation", "data": str(data), "estimator": str(estimator), "steps": steps, "pairs": pairs,
              "recipe": "regaze.demo.job.DEMO_TRAIN + the variant's switch, seed 0", "machine": describe(), "variants": rows,
              "note": note}
    write_result(RESULTS, result)
    TABLE.write_text(render_markdown(result))
    return result


def render_markdown(result: dict) -> str:
    machine = result["machine"]
    head = "| variant | what it removes | " + " | ".join(f"{c[0]} ({c[2]}, {c[3]})" if c[2] else f"{c[0]} ({c[3]})" for c in COLUMNS) + " |"
    lines = [
        "# Ablation (issue 6)", "",
        f"Each variant: {result['steps']} training steps of `regaze.demo.job.DEMO_TRAIN` (64 px, batch 8) on "
        f"`{result['data']}`, seed 0, then `regaze evaluate` on {result['pairs']} seeded pairs of held-out subjects with the "
        f"estimator `{result['estimator']}`. Machine: {machine.get('cpu')} ({machine.get('cpu_count')} cores), "
        f"torch {machine.get('torch')}, no GPU.", "",
        "Reproduce: `python -m benchmarks.ablation --data DATA --estimator EST --steps N` (see the module docstring).", "",
        head, "|" + "---|" * (len(COLUMNS) + 2),
    ]
    for name, row in result["variants"].items():
        cells = [("—" if row[c[0]] is None else f"{row[c[0]]:.3f}" if c[0] == "identity cos" else f"{row[c[0]]:.2f}") for c in COLUMNS]
        lines.append(f"| {name} | {VARIANTS[name][1]} | " + " | ".join(cells) + " |")
    floors = {n: (r["floor_gaze_deg"], r["floor_head_deg"]) for n, r in result["variants"].items()}
    if floors:
        g, h = next(iter(floors.values()))
        if g is not None:
            lines += ["", f"Estimator floor on the real targets (the best any model can score): gaze {g:.2f}°, head {h:.2f}°."]
    if result.get("note"):
        lines += ["", f"Note: {result['note']}"]
    missing = [n for n in VARIANTS if n not in result["variants"]]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/demo/synth64.h5"), help="synthetic 64-px file (default: the demo's)")
    parser.add_argument("--estimator", type=Path, default=Path("runs/estimator64"), help="estimator directory")
    parser.add_argument("--root", type=Path, default=Path("runs/ablation"), help="where the variants' runs go")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per variant (default 2000)")
    parser.add_argument("--pairs", type=int, default=300, help="evaluation pairs (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1: one variant per core)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), help="train + evaluate only these")
    parser.add_argument("--report-only", action="store_true", help="only collect the table from the runs present")
    parser.add_argument("--train-only", action="store_true", help="train the variants, evaluate later")
    parser.add_argument("--note", default="", help="a remark printed under the table (conditions of the run)")
    args = parser.parse_args(argv)
    if not args.report_only:
        for name in args.variants or list(VARIANTS):
            run_variant(name, data=args.data, estimator=args.estimator, root=args.root, steps=args.steps,
                        pairs=args.pairs, threads=args.threads, evaluate=not args.train_only)
        if args.train_only:
            return 0
    result = report(root=args.root, steps=args.steps, data=args.data, estimator=args.estimator, pairs=args.pairs,
                    note=args.note)
    print(TABLE.read_text())
    return 0 if result["variants"] else 1


if __name__ == "__main__":
    sys.exit(main())
