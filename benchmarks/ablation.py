"""Five studies, each variant against the same training with one thing changed — same data, an equal budget,
the same seeded evaluation pairs, the same independent estimator:
- `--study patent` (issue 6): the full method against no cross swap, no identity swap, no orthogonality loss;
- `--study levers` (issue 13): the demo recipe against the quality levers (warping decoder, full-resolution
  stage, latent consistency, the training-time estimator's redirection loss, GAN after a warm-up);
- `--study demo_levers` (issue 13, levers 5 and 6): today's demo recipe at other generator widths and batch
  sizes, and with Z_g rotated by head-relative gaze; `--study demo_width_10min`: its winner again at 10 CPU minutes;
- `--study demo_warp_refine` (issue 13): today's demo recipe with and without the warp's full-resolution refinement.
- `--study demo_edge` (issue 13): today's demo recipe with and without the image-gradient loss (loss.edge).
- `--study demo_convex` (issue 13): today's demo recipe with bilinear or convex upsampling of the warp.
- `--study demo_cosine` (issue 13): today's demo recipe at a constant learning rate or a cosine decay over the budget,
  and with a longer EMA of the weights.
- `--study demo_guide` (issue 13): today's demo recipe with the training-time estimator's loss at the reference
  model's weight and at a smaller one (the reference misses identity; the guide trades identity for gaze).
Writes benchmarks/results/<study>.json (ablation.json for patent) and benchmarks/ablation.md
with every study's table.

    python -m benchmarks.ablation --data runs/demo/synth64.h5 --estimator runs/estimator64 --cpu-minutes 4 --seeds 0 1 2
    python -m benchmarks.ablation ... --variants full no_ort      # train + evaluate some (e.g. one per core)
    python -m benchmarks.ablation ... --report-only               # the table from the runs present
    python -m benchmarks.ablation --study levers --root runs/levers --guide runs/guide64 --cpu-minutes 4 --seeds 0 1
    python -m benchmarks.ablation --study demo_levers --root runs/demo_levers --cpu-minutes 4 --seeds 0 1
    python -m benchmarks.ablation --study demo_width_10min --root runs/demo_width_10min --cpu-minutes 10 --seeds 0 1
    python -m benchmarks.ablation --study demo_warp_refine --root runs/demo_warp_refine --cpu-minutes 10 --seeds 0 1
    python -m benchmarks.ablation --study demo_edge --root runs/demo_edge --cpu-minutes 10 --seeds 0 1
    python -m benchmarks.ablation --study demo_convex --root runs/demo_convex --cpu-minutes 10 --seeds 0 1
    python -m benchmarks.ablation --study demo_cosine --root runs/demo_cosine --cpu-minutes 10 --seeds 0 1
    python -m benchmarks.ablation --study demo_guide --root runs/demo_cosine --guide runs/guide64 --cpu-minutes 10 --seeds 0 1

Each variant and seed trains into RUN_ROOT/NAME/seed_S (resumed if it stopped early) with the demo's 64-px
recipe plus the variant's switch, for an equal budget: `--cpu-minutes M` stops each run after M minutes of
its own process's CPU time (the training loop's clock is replaced by time.process_time, so another job on
the machine does not shorten a run's budget; one thread per run), or `--steps N` for an equal step count.
Then `regaze evaluate` writes RUN_ROOT/NAME/seed_S/eval.json (again when an older evaluation format wrote
it). The table gives the mean ± std over the seeds. The table scores the decoder's image; the eye composite has its own columns, and
the exact target blurred by sigma = 1 px and 2 px gives reference rows: a variant is sharp only above the 1 px row.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULTS = {"patent": Path(__file__).parent / "results" / "ablation.json",
           "levers": Path(__file__).parent / "results" / "levers.json",
           "demo_levers": Path(__file__).parent / "results" / "demo_levers.json",
           "demo_width_10min": Path(__file__).parent / "results" / "demo_width_10min.json",
           "demo_warp_refine": Path(__file__).parent / "results" / "demo_warp_refine.json",
           "demo_edge": Path(__file__).parent / "results" / "demo_edge.json",
           "demo_convex": Path(__file__).parent / "results" / "demo_convex.json",
           "demo_cosine": Path(__file__).parent / "results" / "demo_cosine.json",
           "demo_guide": Path(__file__).parent / "results" / "demo_guide.json"}
TABLE = Path(__file__).parent / "ablation.md"
VARIANTS = {  # name -> (TrainConfig overrides, what it removes)
    "full": ({}, "the method: cross swap, identity swap, L_ort"),
    "no_cross_swap": ({"cross_swap": False}, "whole-image redirection to the other's angles, no feature swap (claim 5 off; "
                                           "identity from the other image, identity swap on)"),
    "no_identity_swap": ({"identity_swap": False}, "Z_id not exchanged within the pair (claim 6 off)"),
    "no_ort": ({"loss": {"ort": 0.0}}, "λ5 = 0 (no orthogonality loss)"),
}
# The base of both studies: the demo's 64 px CPU recipe as it was before issue 13 (the patent's pure decoder),
# kept here so the tables stay reproducible when the demo's recipe changes.
BASE_RECIPE = {
    "model": {"image_size": 64},
    "loss": {"gen": 0.0, "rec_eye": 20.0},
    "batch_size": 8,
    "lr_g": 5e-4,
    "val_every": 500,
    "ckpt_every": 500,
    "log_every": 50,
    "max_steps": 100000,
}
WARP = {"model": {"decoder_mode": "warp"}}
GUIDE = {"loss": {"guide": 0.2, "guide_random": 0.2}}  # guide_estimator: --guide
LEVERS = {  # name -> (TrainConfig overrides, what it changes); each against "recipe" at the same CPU budget
    "recipe": ({}, "the demo recipe before issue 13 (the patent's pure decoder)"),
    "warp": (WARP, "warping decoder (flow + blend mask over the image whose identity it decodes)"),
    "warp_full_res": ({"model": {"decoder_mode": "warp", "decoder_full_res": 16}}, "warp + a 16-channel stage at full resolution"),
    "warp_latent": ({**WARP, "loss": {"latent": 0.1}}, "warp + latent consistency (λ 0.1)"),
    "warp_guide": ({**WARP, **GUIDE}, "warp + training-time estimator loss on pairs and random targets (λ 0.2 each)"),
    "pure_guide": (GUIDE, "the pure decoder + the training-time estimator loss (λ 0.2 each)"),
    "warp_latent_guide": ({**WARP, "loss": {"latent": 0.1, "guide": 0.05, "guide_random": 0.05}},
                          "warp + latent consistency (λ 0.1) + the training-time estimator loss at λ 0.05 each"),
    "warp_gan": ({**WARP, "loss": {"gen": 0.05}, "gan_start_step": 300}, "warp + GAN (λ2 0.05) after 300 warm-up steps"),
}
# Levers 5 and 6 of issue 13 on top of the demo's recipe as it was (warp + latent consistency): the
# generator's width and the batch size (at 64 px the widths are min(channel_max, channel_base // r) at
# r = 4, 8, 16, 32), and Z_g rotated by head-relative gaze (model.gaze_frame).
DEMO_RECIPE = {**WARP, "loss": {"latent": 0.1}}
DEMO_LEVERS = {
    "demo": (DEMO_RECIPE, "the demo's recipe before this study: warp + latent (λ 0.1), batch 8, channel_base 1536 / max 256"),
    "demo_batch4": ({**DEMO_RECIPE, "batch_size": 4}, "batch 4"),
    "demo_batch16": ({**DEMO_RECIPE, "batch_size": 16}, "batch 16"),
    "demo_narrow": ({"model": {"decoder_mode": "warp", "channel_base": 768, "channel_max": 128}, "loss": {"latent": 0.1}},
                    "half the generator's width (channel_base 768 / max 128): the demo's recipe since"),
    "demo_wide": ({"model": {"decoder_mode": "warp", "channel_base": 3072, "channel_max": 512}, "loss": {"latent": 0.1}},
                  "twice the generator's width (channel_base 3072 / max 512)"),
    "demo_head_gaze": ({"model": {"decoder_mode": "warp", "gaze_frame": "head"}, "loss": {"latent": 0.1}},
                       "Z_g rotated by head-relative gaze (model.gaze_frame head)"),
}
STUDIES = {"patent": (VARIANTS, "Ablation of the patent's parts (issue 6)", "what it removes"),
           "levers": (LEVERS, "Quality levers (issue 13)", "what it changes"),
           "demo_levers": (DEMO_LEVERS, "Width, batch size and head-relative gaze on the demo's recipe (issue 13, levers 5 and 6)",
                           "what it changes"),
           # the winner of the 4-minute width study against the demo's recipe again, at the demo's budget
           "demo_width_10min": ({k: DEMO_LEVERS[k] for k in ("demo", "demo_narrow")},
                                "Half the generator's width at the demo's budget (issue 13, lever 5, 10 CPU minutes)",
                                "what it changes"),
           # issue 13: the head-only error of the warping decoder lies on edges the first warp misplaces
           "demo_warp_refine": ({"demo_narrow": DEMO_LEVERS["demo_narrow"],
                                 "demo_refine": ({"model": {**DEMO_LEVERS["demo_narrow"][0]["model"], "decoder_warp_refine": 32},
                                                  "loss": {"latent": 0.1}},
                                                 "+ the full-resolution flow and mask refinement (32 channels)")},
                                "A full-resolution refinement of the warp on the demo's recipe (issue 13, 10 CPU minutes)",
                                "what it changes"),
           # issue 13: the same edges, through the loss instead of the architecture (no cost per step)
           "demo_edge": ({"demo_narrow": DEMO_LEVERS["demo_narrow"],
                          "demo_edge": ({"model": DEMO_LEVERS["demo_narrow"][0]["model"], "loss": {"latent": 0.1, "edge": 1.0}},
                                        "+ the image-gradient loss L_E (loss.edge 1.0) on the pair reconstructions")},
                         "An edge (image-gradient) loss on the demo's recipe (issue 13, 10 CPU minutes)",
                         "what it changes"),
           # issue 13: the flow's edges at full resolution for the price of one small conv at S/2
           "demo_convex": ({"demo_narrow": DEMO_LEVERS["demo_narrow"],
                            "demo_convex": ({"model": {**DEMO_LEVERS["demo_narrow"][0]["model"], "decoder_warp_upsample": "convex"},
                                             "loss": {"latent": 0.1}},
                                            "+ convex (RAFT-style) upsampling of the flow and mask to full resolution")},
                           "Convex upsampling of the warp on the demo's recipe (issue 13, 10 CPU minutes)",
                           "what it changes"),
           # issue 13: the learning curve gains ~0.5 dB per doubling of CPU time at a constant lr; an anneal
           # to the end of the budget is the usual way to take the last of it (the budget is known in advance)
           "demo_cosine": ({"demo_narrow": DEMO_LEVERS["demo_narrow"],
                            "demo_cosine": ({**DEMO_LEVERS["demo_narrow"][0], "lr_schedule": "cosine", "lr_final": 0.05},
                                            "+ a cosine decay of the learning rates to 5 % at the end of the budget"),
                            "demo_cosine_hi": ({**DEMO_LEVERS["demo_narrow"][0], "lr_g": 1e-3, "lr_schedule": "cosine", "lr_final": 0.05},
                                               "+ the same decay from twice the learning rate (lr_g 1e-3)"),
                            "demo_lr_hi": ({**DEMO_LEVERS["demo_narrow"][0], "lr_g": 1e-3},
                                           "twice the learning rate (lr_g 1e-3), constant: the control of demo_cosine_hi"),
                            "demo_ema999": ({**DEMO_LEVERS["demo_narrow"][0], "ema_decay": 0.999},
                                            "the evaluated EMA of the weights over ~1,000 steps instead of ~200 (ema_decay 0.999)")},
                           "A cosine learning-rate decay over the budget on the demo's recipe (issue 13, 10 CPU minutes)",
                           "what it changes"),
           # issue 13: the reference model (guide λ 0.05) misses identity by 0.013 with gaze at 1.39x its floor (the
           # target allows 2x): what a smaller guide weight buys back, at equal CPU time
           "demo_guide": ({"demo_narrow": DEMO_LEVERS["demo_narrow"],
                           "demo_guide05": ({**DEMO_LEVERS["demo_narrow"][0], "loss": {"latent": 0.1, "guide": 0.05, "guide_random": 0.05}},
                                            "+ the training-time estimator's loss on pairs and random targets, λ 0.05 each (the reference's)"),
                           "demo_guide02": ({**DEMO_LEVERS["demo_narrow"][0], "loss": {"latent": 0.1, "guide": 0.02, "guide_random": 0.02}},
                                            "+ the same loss at λ 0.02 each")},
                          "The training-time estimator's loss weight on the demo's recipe (issue 13, 10 CPU minutes)",
                          "what it changes")}
# (label, path in eval.json, unit, better). Every model column scores the decoder's image; the eye composite
# (the decoder's eyes pasted into the source, the default output of a gaze-only change) has its own column.
COLUMNS = [
    ("gaze err (ST-ED)", ("summary", "redirection", "model", "st_ed_gaze_err_deg"), "°", "lower"),
    ("gaze err head-relative (ST-ED)", ("summary", "redirection", "model", "st_ed_gaze_head_rel_err_deg"), "°", "lower"),
    ("head err (ST-ED)", ("summary", "redirection", "model", "st_ed_head_err_deg"), "°", "lower"),
    ("gaze err, estimated source angles", ("summary", "redirection", "model_estimated_sources", "st_ed_gaze_err_deg"), "°", "lower"),
    ("head change, gaze-only", ("summary", "disentanglement", "model", "gaze_only_head_change_deg"), "°", "lower"),
    ("head change, gaze-only eye composite", ("summary", "disentanglement", "eye_composite", "gaze_only_head_change_deg"), "°", "lower"),
    ("gaze change, head-only", ("summary", "disentanglement", "model", "head_only_gaze_change_deg"), "°", "lower"),
    ("PSNR full", ("summary", "image_quality", "full", "model", "psnr_db"), "dB", "higher"),
    ("PSNR head-only", ("summary", "image_quality", "head_only", "model", "psnr_db"), "dB", "higher"),
    ("eye PSNR gaze-only", ("summary", "image_quality", "gaze_only", "model", "eye_psnr_db"), "dB", "higher"),
    ("eye PSNR gaze-only eye composite", ("summary", "image_quality", "gaze_only", "eye_composite", "eye_psnr_db"), "dB", "higher"),
    ("identity (normalised)", ("identity", "normalised"), "", "higher"),
]
IMAGE_COLUMNS = {c[0] for c in COLUMNS if c[1][:2] == ("summary", "image_quality")}
BLUR_ROWS = ("blur_sigma_1px", "blur_sigma_2px")  # the reference rows: the exact target blurred (blur_controls.py)


def _get(ev: dict, path: tuple) -> float | None:
    node = ev
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node["mean"] if isinstance(node, dict) else node


def _blur_row(ev: dict, control: str) -> dict:
    """The image-quality columns of one blur control (the same targets for every variant: same pairs)."""
    return {label: _get(ev, path[:3] + (control,) + path[4:]) for label, path, _, _ in COLUMNS if label in IMAGE_COLUMNS}


def variant_recipe(*, study: str, name: str) -> dict:
    """BASE_RECIPE with the variant's overrides merged in (one level deep: `model`, `loss`, ... are merged)."""
    overrides, _ = STUDIES[study][0][name]
    merged = json.loads(json.dumps(BASE_RECIPE))
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def run_variant(name: str, *, data: Path, estimator: Path, root: Path, steps: int, cpu_minutes: float, seed: int,
                pairs: int, threads: int, evaluate: bool = True, study: str = "patent", guide: Path | None = None) -> dict | None:
    import time

    import regaze.training.loop as loop
    from regaze.config import TrainConfig, config_from_dict
    from regaze.evaluation.protocol import EVAL_FORMAT_VERSION, evaluate_run

    merged = variant_recipe(study=study, name=name)
    budget = {"max_steps": 10**7, "max_minutes": cpu_minutes} if cpu_minutes else {"max_steps": steps, "max_minutes": 0}
    uses_guide = bool(merged.get("loss", {}).get("guide") or merged.get("loss", {}).get("guide_random"))
    if uses_guide:
        if guide is None:
            raise SystemExit(f"variant {name} needs --guide DIR (a training-time estimator trained on {data}'s training subjects)")
        merged["guide_estimator"] = str(guide)
    cfg = config_from_dict(TrainConfig, {**merged, **budget, "threads": threads, "seed": seed})
    out = root / name / f"seed_{seed}"
    ev = json.loads((out / "eval.json").read_text()) if (out / "eval.json").exists() else {}
    trained = (out / "summary.json").exists() and (cpu_minutes or _latest_step(out) >= steps)
    done = trained and ev.get("eval_format_version") == EVAL_FORMAT_VERSION
    if not done:
        if not trained:
            resume = (out / "checkpoints").exists() and any((out / "checkpoints").glob("step_*.pt"))
            what = f"{cpu_minutes:g} CPU minutes" if cpu_minutes else f"{steps} steps"
            print(f"[ablation] {name} seed {seed}: training {what} -> {out}", file=sys.stderr)
            loop.clock = time.process_time if cpu_minutes else time.monotonic  # the budget is this process's CPU time
            guide_model = None
            if uses_guide:
                from regaze.evaluation.estimator.store import load_guide_estimator

                guide_model, _ = load_guide_estimator(guide, data=data, image_size=cfg.model.image_size)
            loop.train(cfg, data=data, out=out, resume=resume, guide=guide_model)
        if not evaluate:
            return None
        evaluate_run(run=out, data=data, estimator=estimator, n_pairs=pairs, which="latest", progress=True)
    return json.loads((out / "eval.json").read_text())


def _latest_step(run: Path) -> int:
    steps = sorted(run.glob("checkpoints/step_*.pt"))
    return int(steps[-1].stem.split("_")[1]) if steps else 0


def _mean_std(values: list) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(vals)}


def report(*, root: Path, steps: int, cpu_minutes: float, seeds: list[int], data: Path, estimator: Path, pairs: int,
           note: str = "", study: str = "patent") -> dict:
    rows, references = {}, {}
    for name in STUDIES[study][0]:
        runs = []
        for seed in seeds:
            path = root / name / f"seed_{seed}" / "eval.json"
            if path.exists():
                ev = json.loads(path.read_text())
                sharp = (ev.get("sharpness") or {}).get("sharp", {})
                runs.append({"seed": seed, "step": ev["model"].get("step"),
                             **{label: _get(ev, p) for label, p, _, _ in COLUMNS},
                             "sharp_rows": sorted(k for k, v in sharp.items() if v),
                             "identity_controls_pass": (ev.get("identity") or {}).get("controls_pass"),
                             "floor_gaze_deg": _get(ev, ("summary", "floor", "gaze_err_deg")),
                             "floor_head_deg": _get(ev, ("summary", "floor", "head_err_deg"))})
                if not references:
                    references = {control: _blur_row(ev, control) for control in BLUR_ROWS}
        if runs:
            rows[name] = {**{label: _mean_std([r[label] for r in runs]) for label, _, _, _ in COLUMNS},
                          "steps": _mean_std([r["step"] for r in runs]),
                          "sharp_rows": sorted(set.intersection(*[set(r["sharp_rows"]) for r in runs])),
                          "identity_controls_pass": all(r["identity_controls_pass"] is not False for r in runs),
                          "floor_gaze_deg": runs[0]["floor_gaze_deg"], "floor_head_deg": runs[0]["floor_head_deg"],
                          "runs": runs}
    budget = f"{cpu_minutes:g} CPU minutes (process time, 1 thread)" if cpu_minutes else f"{steps} steps"
    result = {"benchmark": "ablation", "study": study, "data": str(data), "estimator": str(estimator), "budget": budget,
              "seeds": seeds, "pairs": pairs, "recipe": "benchmarks.ablation.BASE_RECIPE (the demo recipe before issue 13) + the variant's switch",
              "machine": describe(), "variants": rows, "references": references, "note": note}
    write_result(RESULTS[study], result)
    write_tables()
    return result


def write_tables() -> None:
    """benchmarks/ablation.md: the table of every study whose results file exists."""
    parts = []
    for study in STUDIES:
        if RESULTS[study].exists():
            result = json.loads(RESULTS[study].read_text())
            parts.append(render_markdown({"study": study, **result}))
    TABLE.write_text("\n".join(parts))


def render_markdown(result: dict) -> str:
    machine = result["machine"]
    variants, title, change = STUDIES[result.get("study", "patent")]
    head = f"| variant | {change} | " + " | ".join(f"{c[0]} ({c[2]}, {c[3]})" if c[2] else f"{c[0]} ({c[3]})" for c in COLUMNS) + " |"
    # every model column scores the decoder's image (compose="decode"); the eye composite has its own column
    lines = [
        f"# {title}", "",
        f"Each variant: {result['budget']} of `benchmarks.ablation.BASE_RECIPE` (the demo's recipe before issue 13: 64 px, "
        f"batch 8, pure decoder, no GAN) plus the variant's switch on "
        f"`{result['data']}` per seed (seeds {', '.join(map(str, result['seeds']))}; mean ± std over them), then "
        f"`regaze evaluate` of the last checkpoint on {result['pairs']} seeded pairs of held-out subjects with the "
        f"estimator `{result['estimator']}`. Every model column scores the decoder's image (compose=\"decode\"); the "
        f"eye composite has its own columns. Machine: {machine.get('cpu')} ({machine.get('cpu_count')} cores), "
        f"torch {machine.get('torch')}, no GPU.", "",
        f"Reproduce: `python -m benchmarks.ablation --study {result.get('study', 'patent')} --data DATA --estimator EST "
        "--cpu-minutes M --seeds ...` (see the module docstring).", "",
        head, "|" + "---|" * (len(COLUMNS) + 2),
    ]
    cell = lambda label, v: "—" if v is None else f"{v:.3f}" if label.startswith("identity") else f"{v:.2f}"  # noqa: E731

    def stat(label, v):  # {"mean", "std", "n"} -> "mean ± std"
        if not isinstance(v, dict):
            return cell(label, v)
        return f"{cell(label, v['mean'])} ± {cell(label, v['std'])}" if v["n"] > 1 else cell(label, v["mean"])

    for name, row in result["variants"].items():
        cells = [stat(c[0], row.get(c[0])) for c in COLUMNS]
        lines.append(f"| {name} | {variants[name][1]} | " + " | ".join(cells) + " |")
    for control, ref in (result.get("references") or {}).items():
        sigma = control.removeprefix("blur_sigma_").removesuffix("px")
        cells = [cell(c[0], ref.get(c[0])) if c[0] in IMAGE_COLUMNS else "" for c in COLUMNS]
        lines.append(f"| reference: exact target blurred, sigma = {sigma} px | the same targets, blurred | "
                     + " | ".join(cells) + " |")
    if result["variants"]:
        sharp = {n: r.get("sharp_rows") or [] for n, r in result["variants"].items()}
        lines += ["", "A model counts as sharp only where it beats the sigma = 1 px reference row (PSNR and SSIM above "
                  "it, L1 below it, whole image and eye box); PSNR alone rewards blur. Sharp rows: "
                  + "; ".join(f"{n}: {', '.join(v) if v else 'none'}" for n, v in sharp.items()) + "."]
        failed = [n for n, r in result["variants"].items() if r.get("identity_controls_pass") is False]
        lines += ["", "Identity: cosine to a gallery of the person, normalised between a stranger at the same pose (0) "
                  "and the source photo (1); " + (f"the measure FAILS its controls in {', '.join(failed)}."
                                                  if failed else "the measure passes its controls in every variant.")]
    floors = {n: (r["floor_gaze_deg"], r["floor_head_deg"]) for n, r in result["variants"].items()}
    if floors:
        g, h = next(iter(floors.values()))
        if g is not None:
            lines += ["", f"Estimator floor on the real targets (the best any model can score): gaze {g:.2f}°, head {h:.2f}°."]
    if result.get("note"):
        lines += ["", f"Note: {result['note']}"]
    missing = [n for n in variants if n not in result["variants"]]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/demo/synth64.h5"), help="synthetic 64-px file (default: the demo's)")
    parser.add_argument("--estimator", type=Path, default=Path("runs/estimator64"), help="estimator directory")
    parser.add_argument("--root", type=Path, default=Path("runs/ablation"), help="where the variants' runs go")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per run when --cpu-minutes is not given")
    parser.add_argument("--cpu-minutes", type=float, default=0.0, help="CPU minutes (process time) per run: the equal budget")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per variant (default 0)")
    parser.add_argument("--pairs", type=int, default=300, help="evaluation pairs (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1: one variant per core)")
    parser.add_argument("--study", choices=sorted(STUDIES), default="patent",
                        help="patent: the patent's parts (issue 6); levers: issue 13's quality levers (default patent)")
    parser.add_argument("--guide", type=Path, help="training-time estimator for the levers that use loss.guide "
                                                   "(`regaze estimator train` on --data; never --estimator)")
    parser.add_argument("--variants", nargs="+", choices=sorted({n for study in STUDIES.values() for n in study[0]}), help="train + evaluate only these")
    parser.add_argument("--report-only", action="store_true", help="only collect the table from the runs present")
    parser.add_argument("--train-only", action="store_true", help="train the variants, evaluate later")
    parser.add_argument("--note", default="", help="a remark printed under the table (conditions of the run)")
    args = parser.parse_args(argv)
    variants = STUDIES[args.study][0]
    unknown = sorted(set(args.variants or []) - set(variants))
    if unknown:
        parser.error(f"--variants {unknown} are not in the {args.study!r} study: {sorted(variants)}")
    if args.guide is not None and args.guide.resolve() == args.estimator.resolve():
        parser.error("--guide must not be the evaluation --estimator: the evaluation estimator never enters a loss")
    if not args.report_only:
        for seed in args.seeds:
            for name in args.variants or list(variants):
                run_variant(name, data=args.data, estimator=args.estimator, root=args.root, steps=args.steps,
                            cpu_minutes=args.cpu_minutes, seed=seed, pairs=args.pairs, threads=args.threads,
                            evaluate=not args.train_only, study=args.study, guide=args.guide)
        if args.train_only:
            return 0
    result = report(root=args.root, steps=args.steps, cpu_minutes=args.cpu_minutes, seeds=args.seeds, data=args.data,
                    estimator=args.estimator, pairs=args.pairs, note=args.note, study=args.study)
    print(TABLE.read_text())
    return 0 if result["variants"] else 1


if __name__ == "__main__":
    sys.exit(main())
