"""Issue 13's learning curve: the target metrics of one training run against its CPU minutes.

    python -m benchmarks.learning_curve --run RUN --data DATA.h5 --estimator EST_DIR [--minutes 10 30 60 120 180]
        [--pairs 300] [--out benchmarks/results/learning_curve.json] [--png docs/learning_curve.png] [--markdown-out FILE]

Each minute mark is mapped to the run's checkpoint RUN/checkpoints/step_XXXXXXX.pt with the last step trained
at or before that time: the elapsed time of a step is interpolated between the log lines of RUN/stats.jsonl
(`elapsed_s`, the training loop's clock; made cumulative over resumes, see read_log_points). Train with a
large `keep_last` so that every checkpoint is still there. A mark past the run's end is reported as not
reached, with the run's last minute; a mark before the first kept checkpoint as having none.

Every mark's checkpoint is measured by the code of the evaluation and of the demo report, nothing new:
`regaze.evaluation.protocol.evaluate_model` on --pairs seeded pairs of held-out subjects (redirection error in
the ST-ED protocol and its ratio to the estimator's floor, disentanglement on the decoder's image, identity
against the source-itself control) and, on synthetic data, `regaze.demo.report_page.exact_redirection_scores`
with the demo report's rows (head-only whole-image PSNR, gaze-only eye-region PSNR of the decoder's image and
of the default eye composite, each beside the exact target blurred by sigma = 1 px). Writes the JSON (machine,
the run's config, one row per mark, the evaluations' summaries), prints a markdown table (--markdown-out
writes it too) and draws the curves as a 2 x 2 grid of plots (--png).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.result_file import write_result

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "learning_curve.json"
PNG = ROOT / "docs" / "learning_curve.png"
MINUTES = (10.0, 30.0, 60.0, 120.0, 180.0)
TARGETS = {"gaze_err_over_floor": 2.0, "head_only_psnr_db": 26.0}  # issue 13: gaze <= 2 x floor, head-only >= 26 dB
TOLERANCE_S = 1e-6
# row key -> path of its mean in an evaluation result (protocol.evaluate_model); "model" rows score the decoder image
EVAL_ROWS = {
    "gaze_err_deg": "summary/redirection/model/st_ed_gaze_err_deg",
    "gaze_head_rel_err_deg": "summary/redirection/model/st_ed_gaze_head_rel_err_deg",
    "head_err_deg": "summary/redirection/model/st_ed_head_err_deg",
    "gaze_err_estimated_sources_deg": "summary/redirection/model_estimated_sources/st_ed_gaze_err_deg",
    "head_err_estimated_sources_deg": "summary/redirection/model_estimated_sources/st_ed_head_err_deg",
    "floor_gaze_err_deg": "summary/floor/gaze_err_deg",
    "floor_head_err_deg": "summary/floor/head_err_deg",
    "gaze_only_head_change_deg": "summary/disentanglement/model/gaze_only_head_change_deg",
    "gaze_only_head_change_exact_render_deg": "summary/disentanglement/exact_render/gaze_only_head_change_deg",
    "head_only_gaze_change_deg": "summary/disentanglement/model/head_only_gaze_change_deg",
    "head_only_gaze_head_rel_change_deg": "summary/disentanglement/model/head_only_gaze_head_rel_change_deg",
    "head_only_gaze_head_rel_change_exact_render_deg":
        "summary/disentanglement/exact_render/head_only_gaze_head_rel_change_deg",
}
# row key -> (demo report row of regaze.demo.report_page.ROWS, score key of exact_redirection_scores)
EXACT_ROWS = {
    "head_only_psnr_db": ("head", "psnr_db"),
    "head_only_blur_1px_psnr_db": ("head", "blur_sigma_1px_psnr_db"),
    "head_only_copy_psnr_db": ("head", "copy_psnr_db"),
    "gaze_only_eye_psnr_db": ("gaze_decoder", "eye_psnr_db"),
    "gaze_only_eye_composite_psnr_db": ("gaze", "eye_psnr_db"),
    "gaze_only_blur_1px_eye_psnr_db": ("gaze", "blur_sigma_1px_eye_psnr_db"),
    "gaze_only_copy_eye_psnr_db": ("gaze", "copy_eye_psnr_db"),
}


def _num(v) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def _above(a, b) -> bool | None:
    return None if a is None or b is None else a > b


# ------------------------------------------------------------------------------ minutes -> checkpoints
def read_log_points(stats_path) -> np.ndarray:
    """RUN/stats.jsonl -> (n, 2) float64 (step, elapsed seconds) of its log lines, steps increasing.

    The loop's clock restarts at 0 in a resumed process, so a line whose elapsed_s is below the previous
    line's starts a new process, whose times are added to the time spent before it; steps a resumed process
    trains again (resumed from a checkpoint older than the last line) keep their first time. Validation
    lines (no elapsed_s) are skipped; so is a last line cut short by a killed process."""
    from regaze.errors import RegazeError

    path = Path(stats_path)
    if not path.is_file():
        raise RegazeError(f"{path}: not found; expected the stats.jsonl that `regaze train` writes into its run directory")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    points, offset, last_raw, last_total, last_step = [], 0.0, -math.inf, 0.0, -1
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                break
            raise RegazeError(f"{path}:{n}: not a JSON object ({e})") from e
        if "elapsed_s" not in record or "step" not in record:
            continue
        raw = float(record["elapsed_s"])
        if raw < last_raw:
            offset = last_total
        last_raw, last_total = raw, offset + raw
        if int(record["step"]) > last_step:
            last_step = int(record["step"])
            points.append((last_step, last_total))
    if not points:
        raise RegazeError(f"{path}: no log line with 'step' and 'elapsed_s'; expected the training loop's stats")
    return np.asarray(points, np.float64)


def elapsed_at(steps, points: np.ndarray) -> np.ndarray:
    """(m,) steps -> (m,) seconds: linear between the log points (step 0 at 0 s), past the last one at the
    rate of the last interval."""
    s = np.concatenate([[0.0], points[:, 0]]) if points[0, 0] > 0 else points[:, 0]
    t = np.concatenate([[0.0], points[:, 1]]) if points[0, 0] > 0 else points[:, 1]
    steps = np.asarray(steps, np.float64)
    out = np.interp(steps, s, t)
    if len(s) > 1:
        rate = (t[-1] - t[-2]) / max(s[-1] - s[-2], 1e-12)  # seconds per step
        out = np.where(steps > s[-1], t[-1] + (steps - s[-1]) * rate, out)
    return out


def map_marks(*, minutes, checkpoints, points: np.ndarray, steps=None) -> list[dict]:
    """Minute marks -> one dict per mark: minutes, status ("ok", "not reached", "no checkpoint"), step,
    checkpoint, checkpoint_minutes (of the step_XXXXXXX.pt with the last step at or before the mark),
    run_end_minutes, run_end_step. `checkpoints`: paths or names; others than step_XXXXXXX.pt are ignored,
    unless `steps` gives each checkpoint's training step (then every one counts)."""
    from regaze.errors import RegazeError
    from regaze.model.pretrained import checkpoint_step

    if steps is None:
        found = sorted((checkpoint_step(Path(c)), str(c)) for c in checkpoints if checkpoint_step(Path(c)) >= 0)
    else:
        found = sorted((int(s), str(c)) for s, c in zip(steps, checkpoints))
    if not found:
        raise RegazeError(f"no step_XXXXXXX.pt among the checkpoints {[str(c) for c in checkpoints]}")
    ckpt_s = elapsed_at([s for s, _ in found], points)
    end_s, end_step = max(float(points[-1, 1]), float(ckpt_s[-1])), max(int(points[-1, 0]), found[-1][0])
    rows = []
    for m in minutes:
        row = {"minutes": float(m), "status": "ok", "step": None, "checkpoint": None, "checkpoint_minutes": None,
               "run_end_minutes": end_s / 60, "run_end_step": end_step}
        before = np.flatnonzero(ckpt_s <= m * 60 + TOLERANCE_S)
        if m * 60 > end_s + TOLERANCE_S:
            row["status"] = "not reached"
        elif not len(before):
            row["status"] = "no checkpoint"
        else:
            i = int(before[-1])
            row.update(step=found[i][0], checkpoint=found[i][1], checkpoint_minutes=float(ckpt_s[i]) / 60)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ the measurements
def _mean_at(tree: dict, path: str) -> float | None:
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return _num(node.get("mean")) if isinstance(node, dict) else _num(node)


def exact_rows(model, dataset, held_out: np.ndarray, *, images: int, seed: int, batch_size: int) -> dict:
    """The demo report's image-quality rows on `images` held-out images (synthetic data only, else None)."""
    from regaze.demo.report_page import ROWS, exact_redirection_scores
    from regaze.evaluation.baselines import is_synthetic

    if not is_synthetic(dataset):
        return {key: None for key in EXACT_ROWS}
    chosen = np.sort(np.random.default_rng(seed).choice(held_out, size=min(images, len(held_out)), replace=False))
    scores = {}
    for name in dict.fromkeys(row for row, _ in EXACT_ROWS.values()):
        mode, min_deg, compose, _, _ = ROWS[name]
        scores[name] = exact_redirection_scores(model, dataset, chosen, mode=mode, min_change_deg=min_deg,
                                                seed=seed + 1, compose=compose, batch_size=batch_size)
    out = {key: _num(np.mean(scores[row][score])) if len(scores[row][score]) else None
           for key, (row, score) in EXACT_ROWS.items()}
    out["head_only_images"] = int(len(scores["head"]["indices"]))
    out["gaze_only_images"] = int(len(scores["gaze"]["indices"]))
    return out


def measure(model, *, model_info: dict | None = None, dataset, estimator, estimator_info: dict, held_out: tuple, pairs: int, images: int, seed: int,
            batch_size: int, device, progress: bool = False) -> tuple[dict, dict]:
    """One checkpoint's targets -> (row values, its evaluation's {"model", "summary", "identity", "sharpness",
    "notices", "timing"})."""
    from regaze.evaluation.protocol import evaluate_model

    t0 = time.time()
    result = evaluate_model(model, dataset=dataset, estimator=estimator, estimator_info=estimator_info,
                            model_info=model_info, n_pairs=pairs, seed=seed, held_out=held_out,
                            batch_size=batch_size, device=device, optional=False, progress=progress)
    row = {key: _mean_at(result, path) for key, path in EVAL_ROWS.items()}
    row["gaze_err_over_floor"] = _ratio(row["gaze_err_deg"], row["floor_gaze_err_deg"])
    row["head_err_over_floor"] = _ratio(row["head_err_deg"], row["floor_head_err_deg"])
    identity = result.get("identity") or {}
    scores = identity.get("scores") or {}
    row.update(identity_model=_num(scores.get("model")), identity_source_itself=_num(scores.get("source_itself")),
               identity_normalised=_num(identity.get("normalised")), identity_controls_pass=identity.get("controls_pass"))
    row["identity_ratio"] = _ratio(row["identity_model"], row["identity_source_itself"])
    row.update(exact_rows(model, dataset, held_out[0], images=images, seed=seed, batch_size=batch_size))
    # sharp: above the exact target blurred by sigma = 1 px (blur_controls.SHARP_RULE, on PSNR alone here)
    row["head_only_sharp"] = _above(row["head_only_psnr_db"], row["head_only_blur_1px_psnr_db"])
    for key in ("gaze_only_eye_psnr_db", "gaze_only_eye_composite_psnr_db"):
        row[key.replace("psnr_db", "sharp")] = _above(row[key], row["gaze_only_blur_1px_eye_psnr_db"])
    row["eval_s"] = round(time.time() - t0, 1)
    return row, {k: result[k] for k in ("model", "summary", "identity", "sharpness", "notices", "timing")}


def continuation_start(prior: dict, *, config: dict) -> tuple[dict, dict]:
    """A run that started from another run's end weights (config["init_from"]) and that run's learning-curve
    result `prior` -> ({mark minutes: prior row} of the marks it measured, the start: {"checkpoint": init_from,
    "step": the earlier run's last step, "seconds": its last second})."""
    from regaze.errors import RegazeError

    init = config.get("init_from")
    if not init:
        raise RegazeError("--continues: this run has no init_from, so it does not continue another run's weights")
    rows = prior.get("rows") or []
    if not rows or not all("run_end_minutes" in r for r in rows):
        raise RegazeError("--continues: expected a learning-curve result (rows with run_end_minutes)")
    start = {"checkpoint": str(init), "step": int(max(r["run_end_step"] for r in rows)),
             "seconds": 60.0 * float(max(r["run_end_minutes"] for r in rows))}
    return {float(r["minutes"]): r for r in rows if r["status"] != "not reached"}, start


def learning_curve(*, run, data, estimator, minutes=MINUTES, pairs: int = 300, images: int = 128, seed: int = 0,
                   split: str = "auto", batch_size: int = 32, device="cpu", max_val_error_deg: float = 10.0,
                   allow_untrained_estimator: bool = False, progress: bool = True, continues: dict | None = None) -> dict:
    """Map the marks to checkpoints, measure each checkpoint once -> the result dict (rows in mark order).

    continues: the learning-curve result of the run whose end weights this run started from (init_from): the
    minutes continue from that run's end, its own marks keep their rows, and init_from counts as a checkpoint
    at that minute."""
    from regaze.data.dataset import open_dataset
    from regaze.errors import RegazeError
    from regaze.evaluation.eval_pairs import held_out_indices
    from regaze.evaluation.estimator.store import load_estimator
    from regaze.evaluation.protocol import load_model
    from regaze.model.pretrained import checkpoint_step

    run = Path(run)
    if not (run / "config.json").is_file():
        raise RegazeError(f"{run}: no config.json; expected a run directory written by `regaze train`")
    config = json.loads((run / "config.json").read_text())
    checkpoints = sorted((run / "checkpoints").glob("step_*.pt"), key=checkpoint_step)
    points = read_log_points(run / "stats.jsonl")
    steps = [checkpoint_step(c) for c in checkpoints]
    if continues is not None:  # this run started from the weights the earlier run ended with (init_from)
        prior_rows, start = continuation_start(continues, config=config)
        checkpoints, steps = [start["checkpoint"], *checkpoints], [start["step"], *(s + start["step"] for s in steps)]
        points = np.concatenate([[[start["step"], start["seconds"]]], points + [start["step"], start["seconds"]]])
    rows = map_marks(minutes=minutes, checkpoints=checkpoints, points=points, steps=steps)
    if continues is not None:  # the marks the earlier run reached keep its measurement
        for i, row in enumerate(rows):
            if row["minutes"] * 60 <= start["seconds"] + TOLERANCE_S and row["minutes"] in prior_rows:
                rows[i] = {**prior_rows[row["minutes"]], "measured_by": "earlier run",
                           "run_end_minutes": row["run_end_minutes"], "run_end_step": row["run_end_step"]}
    if not any(r["status"] == "ok" for r in rows):
        raise RegazeError(f"{run}: no checkpoint at or before any of the marks {list(minutes)} min "
                          f"(statuses: {[r['status'] for r in rows]}); train with a larger keep_last")
    dataset = open_dataset(data)
    if not dataset.has_gaze_labels:
        raise RegazeError(f"{data}: has no gaze labels; the learning curve needs labelled held-out images")
    est, est_info = load_estimator(estimator, max_val_error_deg=max_val_error_deg,
                                   allow_untrained=allow_untrained_estimator, image_size=dataset.size, device=device)
    guide = config.get("guide_estimator")  # as `regaze evaluate` refuses it: it was in a loss of this run
    if guide and Path(guide).resolve() in {Path(estimator).resolve(), Path(est_info["checkpoint"]).resolve(),
                                           Path(est_info["checkpoint"]).resolve().parent}:
        raise RegazeError(f"{estimator} is the training-time estimator of this run (its guide_estimator); "
                          f"measure with an independent one")
    held_out = held_out_indices(dataset, split=split)
    measured, evaluations = {}, {}
    for row in rows:
        if row["status"] != "ok" or row.get("measured_by") == "earlier run":
            print(f"[learning_curve] {row['minutes']:g} min: {row.get('measured_by') or row['status']}", file=sys.stderr)
            continue
        if row["step"] not in measured:
            print(f"[learning_curve] {row['minutes']:g} min -> step {row['step']} "
                  f"({row['checkpoint_minutes']:.1f} min): evaluating", file=sys.stderr, flush=True)
            model, model_info = load_model(row["checkpoint"], dataset=dataset, held_out=held_out[0], device=device)
            measured[row["step"]], evaluations[str(row["step"])] = measure(
                model, model_info=model_info, dataset=dataset, estimator=est, estimator_info=est_info, held_out=held_out, pairs=pairs,
                images=images, seed=seed, batch_size=batch_size, device=device, progress=progress)
        row.update(measured[row["step"]])
    first = next(r for r in rows if r["status"] == "ok" and r.get("measured_by") != "earlier run")
    for row in rows:  # every row has every key; a mark without a checkpoint has None
        row.update({k: None for k in first if k not in row})
    references = {k: first.get(k) for k in ("floor_gaze_err_deg", "floor_head_err_deg", "head_only_blur_1px_psnr_db",
                                            "head_only_copy_psnr_db", "gaze_only_blur_1px_eye_psnr_db",
                                            "gaze_only_copy_eye_psnr_db", "gaze_only_head_change_exact_render_deg",
                                            "head_only_gaze_head_rel_change_exact_render_deg")}
    return {"benchmark": "learning_curve",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "run": str(run), "data": str(data), "estimator": {k: v for k, v in est_info.items() if k != "train_subjects"},
            "clock": "elapsed_s of RUN/stats.jsonl (the training loop's clock), cumulative over resumes"
                     + ("" if continues is None else f", after the {start['seconds'] / 60:.1f} minutes of the earlier run "
                        f"{continues.get('run')} whose end weights this run started from (init_from)"),
            "continues": None if continues is None else {
                "run": continues.get("run"), "created": continues.get("created"), "start": start,
                "estimator": (continues.get("estimator") or {}).get("checkpoint"),
                "rule": "marks at or before the earlier run's end keep its measurement (measured_by: earlier run); "
                        "later marks are this run's checkpoints on this run's clock plus the earlier run's minutes"},
            "pairs": pairs, "report_images": images, "seed": seed, "split": held_out[1], "targets": TARGETS,
            "references": references, "config": config, "machine": describe(),
            "rows": rows, "evaluations": evaluations}


# ------------------------------------------------------------------------------------ table and plot
def _f(v, fmt: str, unit: str = "") -> str:
    return "—" if v is None else f"{v:{fmt}}{unit}"


def render_markdown(result: dict) -> str:
    """The learning curve as a markdown table, one row per mark, with the references and targets under it."""
    ref, cfg = result["references"], result.get("config") or {}
    head = ["CPU minutes", "checkpoint (step, minute)", "gaze err (× floor)", "head err (× floor)",
            "head-only PSNR", "gaze-only eye PSNR: decoder / composite", "identity: model / source (normalised)",
            "head change, gaze-only", "head-rel. gaze change, head-only"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        if r["status"] != "ok":
            why = (f"not reached (the run ended at {r['run_end_minutes']:.1f} min, step {r['run_end_step']})"
                   if r["status"] == "not reached" else "no checkpoint kept at or before this mark")
            lines.append(f"| {r['minutes']:g} | {why} |" + " |" * (len(head) - 2))
            continue
        earlier = " †" if r.get("measured_by") == "earlier run" else ""
        lines.append("| " + " | ".join([
            f"{r['minutes']:g}", f"{r['step']} ({r['checkpoint_minutes']:.1f} min){earlier}",
            f"{_f(r['gaze_err_deg'], '.2f', '°')} ({_f(r['gaze_err_over_floor'], '.2f', '×')})",
            f"{_f(r['head_err_deg'], '.2f', '°')} ({_f(r['head_err_over_floor'], '.2f', '×')})",
            _f(r["head_only_psnr_db"], ".2f", " dB"),
            f"{_f(r['gaze_only_eye_psnr_db'], '.2f')} / {_f(r['gaze_only_eye_composite_psnr_db'], '.2f', ' dB')}",
            f"{_f(r['identity_ratio'], '.3f')} ({_f(r['identity_normalised'], '.3f')})",
            _f(r["gaze_only_head_change_deg"], ".2f", "°"), _f(r["head_only_gaze_head_rel_change_deg"], ".2f", "°")]) + " |")
    lines.append("| reference | | " + " | ".join([
        f"floor {_f(ref['floor_gaze_err_deg'], '.2f', '°')}; target ≤ {TARGETS['gaze_err_over_floor']:g}× floor",
        f"floor {_f(ref['floor_head_err_deg'], '.2f', '°')}",
        f"target ≥ {TARGETS['head_only_psnr_db']:g} dB; exact target blurred σ = 1 px "
        f"{_f(ref['head_only_blur_1px_psnr_db'], '.2f', ' dB')}; copy {_f(ref['head_only_copy_psnr_db'], '.2f', ' dB')}",
        f"blurred σ = 1 px {_f(ref['gaze_only_blur_1px_eye_psnr_db'], '.2f', ' dB')}; "
        f"copy {_f(ref['gaze_only_copy_eye_psnr_db'], '.2f', ' dB')}",
        "the source itself: 1 (1)", f"exact render {_f(ref['gaze_only_head_change_exact_render_deg'], '.2f', '°')}",
        f"exact render {_f(ref['head_only_gaze_head_rel_change_exact_render_deg'], '.2f', '°')}"]) + " |")
    machine, model = result["machine"], cfg.get("model") or {}
    return "\n".join([
        "# Learning curve", "",
        f"Run `{result['run']}` ({model.get('image_size', '?')} px, batch {cfg.get('batch_size', '?')}, "
        f"max_minutes {cfg.get('max_minutes', '?')}), each mark's last checkpoint at or before it (minutes: "
        f"{result['clock']}). Data `{result['data']}`, held-out split `{result['split']}`: redirection error "
        f"(ST-ED, camera frame), disentanglement and identity on {result['pairs']} seeded pairs (seed "
        f"{result['seed']}) read by the estimator `{result['estimator'].get('checkpoint')}`; PSNR against exact "
        f"renders on {result['report_images']} images with the demo report's rows (head-only: whole image, "
        f"change ≥ 15°; gaze-only: eye region, change ≥ 10°). Every model column scores the decoder's image "
        f"except the composite (the decoder's eyes pasted into the source, the default gaze-only output). "
        f"Identity: cosine to a gallery of the person, the model's over the source image's (normalised: 0 = a "
        f"stranger at the same pose, 1 = the source). Machine: {machine.get('cpu')} ({machine.get('cpu_count')} "
        f"cores), torch {machine.get('torch')}, {machine.get('torch_threads')} threads.", "",
        *lines, "",
        *([] if not result.get("continues") else [
            f"† measured on the earlier run `{result['continues']['run']}` ({result['continues']['created']}, "
            f"estimator `{result['continues']['estimator']}`), whose end weights this run continued from "
            f"(init_from: fresh optimisers); the other rows are this run's checkpoints.", ""]),
        "Reproduce: `python -m benchmarks.learning_curve --run RUN --data DATA --estimator EST` "
        "(benchmarks/learning_curve.py).", ""])


def plot(result: dict, *, panel=(640, 400)) -> np.ndarray:
    """The 2 x 2 grid of curves against CPU minutes -> (H, W, 3) uint8."""
    from regaze.image_io import tile
    from regaze.image_plot import TARGET_COLOUR, line_plot, text_panel

    ok = [r for r in result["rows"] if r["status"] == "ok"]
    ref = result["references"]

    def curve(key: str) -> list:
        return [(r["checkpoint_minutes"], r[key]) for r in ok if r.get(key) is not None]

    def panel_of(title: str, y_label: str, series: dict, *, targets: dict, references: dict) -> np.ndarray:
        """Targets dashed red, references (floor, controls) dashed grey; an absent quantity leaves a note."""
        series = {k: v for k, v in series.items() if v}
        if not series:
            return text_panel(title=title, text="not measured", size=panel)
        lines = {k: v for k, v in {**targets, **references}.items() if v is not None}
        return line_plot(series=series, x_label="CPU minutes of training", y_label=y_label, title=title, hlines=lines,
                         hline_colours={k: TARGET_COLOUR for k in targets}, size=panel)

    floor_g, floor_h = ref["floor_gaze_err_deg"], ref["floor_head_err_deg"]
    twice = lambda v: None if v is None else TARGETS["gaze_err_over_floor"] * v  # noqa: E731
    own = "model, its own source-angle estimates"
    panels = [
        panel_of("gaze redirection error (ST-ED, camera frame)", "degrees",
                 {"model": curve("gaze_err_deg"), own: curve("gaze_err_estimated_sources_deg")},
                 targets={"target: 2 x estimator floor": twice(floor_g)}, references={"estimator floor": floor_g}),
        panel_of("head redirection error (ST-ED)", "degrees",
                 {"model": curve("head_err_deg"), own: curve("head_err_estimated_sources_deg")},
                 targets={}, references={"2 x estimator floor": twice(floor_h), "estimator floor": floor_h}),
        panel_of("head-only PSNR, whole image (decoder image)", "PSNR (dB)", {"model": curve("head_only_psnr_db")},
                 targets={"target": TARGETS["head_only_psnr_db"]},
                 references={"exact target blurred, sigma = 1 px": ref["head_only_blur_1px_psnr_db"],
                             "copy the source": ref["head_only_copy_psnr_db"]}),
        panel_of("identity: cosine to the person's gallery", "model / source image",
                 {"model / source itself": curve("identity_ratio"),
                  "normalised (0 stranger, 1 source)": curve("identity_normalised")},
                 targets={}, references={"the source itself": 1.0}),
    ]
    return tile([panels[:2], panels[2:]], pad=4)


# ------------------------------------------------------------------------------------ command line
def _read_prior(path: Path | None) -> dict | None:
    from regaze.errors import RegazeError

    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RegazeError(f"--continues {path}: not a readable learning-curve JSON ({e})") from e


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run", type=Path, required=True, help="run directory of `regaze train` (large keep_last)")
    parser.add_argument("--data", type=Path, required=True, help="labelled data with held-out subjects (synthetic for PSNR)")
    parser.add_argument("--estimator", type=Path, required=True, help="estimator directory (`regaze estimator train`)")
    parser.add_argument("--minutes", type=float, nargs="+", default=list(MINUTES), help="CPU-minute marks (default 10 30 60 120 180)")
    parser.add_argument("--pairs", type=int, default=300, help="evaluation pairs per mark (default 300)")
    parser.add_argument("--images", type=int, default=128, help="held-out images of the exact-render PSNR rows (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs and images (default 0)")
    parser.add_argument("--split", choices=("auto", "test", "val", "all"), default="auto", help="held-out images (default auto)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per batch (default 32)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max-val-error-deg", type=float, default=10.0, help="refuse an estimator above this (default 10)")
    parser.add_argument("--allow-untrained-estimator", action="store_true", help="evaluate with an unvalidated estimator")
    parser.add_argument("--continues", type=Path, help="learning-curve JSON of the run whose end weights RUN started "
                        "from (init_from): minutes continue from its end and its marks keep its rows")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result JSON (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--png", type=Path, default=PNG, help=f"the plots (default {PNG.relative_to(ROOT)})")
    parser.add_argument("--markdown-out", type=Path, help="also write the markdown table to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    import torch

    from regaze.dist import pick_device
    from regaze.errors import RegazeError
    from regaze.evaluation.report import write_text_atomic
    from regaze.image_io import save_png

    try:
        bad = [m for m in args.minutes if not (math.isfinite(m) and m > 0)]
        if bad or args.pairs < 1 or args.images < 1 or args.batch_size < 1:
            raise RegazeError(f"--minutes must be > 0 and --pairs, --images, --batch-size >= 1; got minutes "
                              f"{args.minutes}, pairs {args.pairs}, images {args.images}, batch size {args.batch_size}")
        if args.threads:
            torch.set_num_threads(args.threads)
        result = learning_curve(run=args.run, data=args.data, estimator=args.estimator, minutes=args.minutes,
                                pairs=args.pairs, images=args.images, seed=args.seed, split=args.split,
                                batch_size=args.batch_size, device=pick_device(args.device),
                                max_val_error_deg=args.max_val_error_deg,
                                allow_untrained_estimator=args.allow_untrained_estimator, progress=not args.quiet,
                                continues=_read_prior(args.continues))
    except RegazeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result["png"] = str(args.png)
    # NaN -> null: the file stays strict JSON
    write_result(args.out, json.loads(json.dumps(result, default=str), parse_constant=lambda _: None))
    save_png(args.png, plot(result))
    table = render_markdown(result)
    if args.markdown_out:
        write_text_atomic(args.markdown_out, table)
    print(table)
    print(f"wrote {args.out} and {args.png}" + (f" and {args.markdown_out}" if args.markdown_out else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
