"""The demo's report: redirect held-out synthetic subjects and compare with the exact target renders.

Because the synthetic file stores every render parameter, the image a redirection *should* produce can be
rendered exactly (same person, same light, same sensor noise, new angles). Three kinds of change are drawn, in
head coordinates from the data's own labels within its eye-in-head range (regaze/data/pose_range.py), so that
no target puts the eye where no image of the data has it:

- head-only: a new head pose of the data at least 15 deg away that keeps the source's gaze (the eyes keep
  looking at the same point in camera coordinates) within range; scored by PSNR over the whole image;
- gaze-only: a new gaze at least 10 deg away, head kept; scored by PSNR over the eye region, which is exact
  here: the padded bounding box of the pixels where the source and the exact target differ
  (`evaluation.image_quality.eye_boxes`), since only the eyes and lids change. The default output (the
  decoder's eyes pasted into the source) and the decoder's own image are scored in separate rows;
- both: a head change as above, then a gaze change within range of the new head, each at least 10 deg;
  scored over the whole image (the decoder's, since the head moves).

Every row has its references: copying the source, and the exact target blurred by a Gaussian of sigma = 1 px
and 2 px (evaluation/blur_controls.py). PSNR rewards blur; a model counts as sharp only where it beats the
sigma = 1 px row. The page also shows image grids per kind (report_grids.py), angle sweeps of one test person
beside their exact renders (sweeps.py) and, when given, a reference checkpoint scored on the same images.

    report = write_demo_report(run=RUN, data=H5, out=DIR / "report.html", reference=reference_checkpoint())
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import torch

from regaze.data.pose_range import eye_range_deg, sample_gaze_for_head, sample_head_for_gaze
from regaze.errors import RegazeError
from regaze.geometry import angular_error_deg
from regaze.evaluation.blur_controls import BLUR_SIGMAS_PX, SHARP_RULE, blur_key, gaussian_blur_u8
from regaze.evaluation.image_quality import eye_boxes
from regaze.image_metrics import crop_box, psnr_db
from regaze.image_io import save_png, to_u8
from regaze.demo.report_grids import GRID_COLUMNS, write_grids
from regaze.demo.sweeps import sweep_image, sweep_outputs, sweep_targets
from regaze.model.pretrained import REFERENCE_DIR, load_redirector

__all__ = ["MODES", "ROWS", "sample_changes", "exact_redirection_scores", "read_reference_card",
           "reference_title", "write_demo_report"]

MODES = ("head", "gaze", "both")  # what a redirection changes


def sample_changes(*, gaze: np.ndarray, head: np.ndarray, mode: str, rng: np.random.Generator, min_change_deg: float,
                   pool_gaze: np.ndarray, pool_head: np.ndarray, limit_deg: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (gaze, head) targets (n, 2) rad for sources (n, 2): `mode` "head" changes the head only, "gaze" the
    gaze only, "both" the head and then the gaze for the new head, each by >= min_change_deg, drawn from the
    data's labels pool_gaze, pool_head (m, 2) rad so that the gaze stays within `limit_deg` of the face
    direction (default: the pool's own range, eye_range_deg).

    Returns (new_gaze, new_head, feasible (n,) bool): a source whose gaze is far to one side may have no
    head pose of the data that keeps it in range; it is marked infeasible (for "both": where either draw fails)."""
    limit = eye_range_deg(gaze=pool_gaze, head=pool_head) if limit_deg is None else float(limit_deg)
    if mode not in MODES:
        raise RegazeError(f"mode must be one of {MODES}; found {mode!r}")
    new_gaze, new_head = np.asarray(gaze, np.float32).copy(), np.asarray(head, np.float32).copy()
    feasible = np.ones(len(new_gaze), bool)
    if mode in ("head", "both"):  # the camera-frame gaze kept in range of the new face direction ...
        new_head, feasible = sample_head_for_gaze(gaze=gaze, head=head, pool_head=pool_head, limit_deg=limit,
                                                  min_change_deg=min_change_deg, rng=rng)
    if mode in ("gaze", "both"):  # ... then a new gaze, within range of the (new) head
        new_gaze, ok = sample_gaze_for_head(head=new_head, gaze=gaze, pool_gaze=pool_gaze, pool_head=pool_head,
                                            limit_deg=limit, min_change_deg=min_change_deg, rng=rng)
        feasible = feasible & ok
    return new_gaze, new_head, feasible


def _box_psnr(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.array([psnr_db(crop_box(a[i : i + 1], box), crop_box(b[i : i + 1], box))[0] for i, box in enumerate(boxes)])


@torch.no_grad()
def exact_redirection_scores(model, dataset, indices: np.ndarray, *, mode: str, min_change_deg: float,
                             seed: int, batch_size: int = 32, compose: str = "auto") -> dict:
    """Redirect dataset[indices] (`mode` as in sample_changes; `compose` as in Redirector.redirect) and score
    against the exact renders.

    Returns per-image arrays: indices (n,), source, output, target uint8 (n, S, S, 3); psnr_db, copy_psnr_db and,
    for every blur control, blur_sigma_{s}px_psnr_db (the exact target blurred, against itself); the same with
    eye_ for mode "gaze" (inside the eye box); head_change_deg, gaze_change_deg and change_deg (the one that
    changes; for "both" the smaller of the two, so every mode has change_deg >= min_change_deg).
    """
    from regaze.data.synth import render

    rng = np.random.default_rng(seed)
    new_gaze, new_head, feasible = sample_changes(gaze=dataset.gaze[indices], head=dataset.head[indices], mode=mode,
                                                  rng=rng, min_change_deg=min_change_deg, pool_gaze=dataset.gaze,
                                                  pool_head=dataset.head)
    indices, new_gaze, new_head = indices[feasible], new_gaze[feasible], new_head[feasible]
    gaze, head = dataset.gaze[indices], dataset.head[indices]
    source = dataset.read_images(indices)  # (n, S, S, 3)
    target = render(identity=dataset.read_array("synth_identity", indices), session=dataset.read_array("synth_session", indices),
                    head=new_head, gaze=new_gaze, size=dataset.size)  # (n, S, S, 3)
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    outputs = []
    for start in range(0, len(indices), batch_size):
        sl = slice(start, start + batch_size)
        x = torch.from_numpy(source[sl]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        t = lambda a: torch.from_numpy(a[sl]).to(device)  # noqa: E731
        kw = {} if mode == "head" else {"gaze": t(new_gaze)}  # an angle left out is kept
        if mode != "gaze":
            kw["head"] = t(new_head)
        out, _ = model.redirect(x, source_gaze=t(gaze), source_head=t(head), compose=compose, **kw)
        outputs.append(to_u8(out))
    output = np.concatenate(outputs)
    scores = {"indices": indices, "source": source, "output": output, "target": target,
              "psnr_db": psnr_db(output, target), "copy_psnr_db": psnr_db(source, target)}
    blurred = {blur_key(s): gaussian_blur_u8(target, sigma_px=s) for s in BLUR_SIGMAS_PX}  # the controls
    for key, images in blurred.items():
        scores[f"{key}_psnr_db"] = psnr_db(images, target)
    if mode == "gaze":
        boxes, _ = eye_boxes(source, target)
        scores["eye_psnr_db"] = _box_psnr(output, target, boxes)
        scores["copy_eye_psnr_db"] = _box_psnr(source, target, boxes)
        for key, images in blurred.items():
            scores[f"{key}_eye_psnr_db"] = _box_psnr(images, target, boxes)
    scores["head_change_deg"] = angular_error_deg(new_head, head)  # (n,)
    scores["gaze_change_deg"] = angular_error_deg(new_gaze, gaze)  # (n,)
    scores["change_deg"] = {"head": scores["head_change_deg"], "gaze": scores["gaze_change_deg"],
                            "both": np.minimum(scores["head_change_deg"], scores["gaze_change_deg"])}[mode]
    return scores


def _figure(scores: dict, *, mode: str, min_deg: float, output: str) -> dict:
    """One row of the report: the model's PSNR in the scored region beside copy-the-source and the blur controls."""
    eye = "eye_" if mode == "gaze" else ""
    mean = lambda key: float(np.mean(scores[key]))  # noqa: E731
    fig = {"n": int(len(scores["indices"])), "min_change_deg": min_deg, "mean_change_deg": mean("change_deg"),
           "mean_head_change_deg": mean("head_change_deg"), "mean_gaze_change_deg": mean("gaze_change_deg"),
           "region": "eye region" if eye else "whole image", "output": output,
           "model_psnr_db": mean(f"{eye}psnr_db"), "copy_source_psnr_db": mean(f"copy_{eye}psnr_db"),
           "whole_image_model_psnr_db": mean("psnr_db"), "whole_image_copy_psnr_db": mean("copy_psnr_db")}
    fig["gain_db"] = fig["model_psnr_db"] - fig["copy_source_psnr_db"]
    for sigma in BLUR_SIGMAS_PX:
        fig[f"{blur_key(sigma)}_psnr_db"] = mean(f"{blur_key(sigma)}_{eye}psnr_db")
    fig["sharp"] = bool(fig["model_psnr_db"] > fig[f"{blur_key(BLUR_SIGMAS_PX[0])}_psnr_db"])
    return fig


def _line(label: str, f: dict, *, mode: str) -> str:
    blur = ", ".join(f"{s:g} px {f[f'{blur_key(s)}_psnr_db']:.2f} dB" for s in BLUR_SIGMAS_PX)
    verdict = "sharp" if f["sharp"] else f"NOT sharp (below the exact target blurred by {BLUR_SIGMAS_PX[0]:g} px)"
    change = (f">= {f['min_change_deg']:g} deg each, head mean {f['mean_head_change_deg']:.1f} deg, gaze mean "
              f"{f['mean_gaze_change_deg']:.1f} deg" if mode == "both"
              else f">= {f['min_change_deg']:g} deg, mean {f['mean_change_deg']:.1f} deg")
    return (f"{label} ({change}), {f['region']}: "
            f"model {f['model_psnr_db']:.2f} dB vs copy-the-source {f['copy_source_psnr_db']:.2f} dB "
            f"(gain {f['gain_db']:+.2f} dB); exact target blurred: {blur}; {verdict}")


ROWS = {  # figure key -> (mode, minimum change in degrees, compose, label, what the output is)
    "head": ("head", 15.0, "auto", "head-only", "decoder image"),
    "gaze": ("gaze", 10.0, "auto", "gaze-only", "decoder eyes pasted into the source (the default output)"),
    "gaze_decoder": ("gaze", 10.0, "decode", "gaze-only, decoder image", "decoder image (compose='decode')"),
    "both": ("both", 10.0, "auto", "gaze and head", "decoder image (the head changes, so 'auto' decodes)"),
}


def read_reference_card(checkpoint) -> dict:
    """The JSON card beside a reference checkpoint (checkpoint.parent / "card.json", as `regaze model
    export-reference` writes it) -> its dict; {} where there is none or it is not a JSON object. The card only
    describes the model, so a missing or broken one costs the report a sentence, not the evaluation."""
    try:
        card = json.loads((Path(checkpoint).parent / "card.json").read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def _card_value(card: dict, *keys: str, kind: type | tuple = (str, int, float)):
    """The first of `keys` ("a" or "a/b" for card["a"]["b"]) whose value is of `kind` (bools never count as
    numbers), else None: cards of several exporter versions name the same fact differently."""
    for key in keys:
        value = card
        for part in key.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


def reference_title(*, card: dict, shipped: bool) -> str:
    """"reference model (shipped, trained on synthetic faces for N CPU minutes)", with what the card knows."""
    minutes = _card_value(card, "training_minutes", "training/elapsed_minutes", kind=(int, float))
    device = _card_value(card, "device", "training/device", kind=str) or "CPU"
    trained = (f"trained on synthetic faces for {minutes:g} {device} minutes" if minutes is not None
               else "trained on synthetic faces; training time not recorded")
    return f"reference model ({'shipped' if shipped else 'given'}, {trained})"


def _reference_description(*, info: dict, card: dict) -> str:
    """Plain-text facts of the reference checkpoint: path and step, and the card's data, command, data seed,
    note and metrics (numbers and strings, one level of nesting)."""
    parts = [f"checkpoint {info['checkpoint']} (step {info['step']})"]
    for label, keys in (("trained on", ("trained_on",)), ("training command", ("command", "training/command")),
                        ("stopped by", ("training/stop_reason",)), ("data seed", ("data_seed",)), ("note", ("note",))):
        value = _card_value(card, *keys)
        if value is not None:
            parts.append(f"{label}: {value}")
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    flat = [(k, v) for k, v in metrics.items() if not isinstance(v, dict)]
    flat += [(f"{k}/{k2}", v2) for k, v in metrics.items() if isinstance(v, dict) for k2, v2 in v.items()]
    shown = [f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
             for k, v in flat if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    if shown:
        parts.append("card metrics: " + ", ".join(shown[:12]))
    else:
        parts.append("no measured figures on its card" if card else "no card.json beside it")
    return "; ".join(parts) + "."


def _evaluate(model, dataset, chosen: np.ndarray, *, seed: int, folder: Path, prefix: str, sweep: dict) -> dict:
    """Every ROWS row, the grids and the sweep of one model -> {"figures", "lines", "grids", "sweep"}."""
    figures, scores = {}, {}
    for key, (mode, min_deg, compose, _, output) in ROWS.items():
        scores[key] = exact_redirection_scores(model, dataset, chosen, mode=mode, min_change_deg=min_deg,
                                               seed=seed + 1, compose=compose)
        figures[key] = _figure(scores[key], mode=mode, min_deg=min_deg, output=output)
    outputs = sweep_outputs(model, sweep=sweep)
    save_png(folder / f"{prefix}sweep.png", sweep_image(sweep=sweep, outputs=outputs))
    return {"figures": figures, "lines": [_line(ROWS[k][3], f, mode=ROWS[k][0]) for k, f in figures.items()],
            "grids": write_grids(folder, scores=scores, prefix=prefix),
            "sweep": {"png": f"{prefix}sweep.png",
                      "psnr_db": {k: [float(v) for v in o["psnr_db"]] for k, o in outputs.items()}}}


def write_demo_report(*, run, data, out, pairs: int = 128, seed: int = 0, reference=None) -> dict:
    """Score the run's EMA generator on test subjects; write report.html, PNG grids, sweep.png and report.json.

    reference: a checkpoint (file or run directory, e.g. model.pretrained.reference_checkpoint()) whose model
    is scored on the same images and angles and shown beside the run's; None leaves it out."""
    from regaze.data.dataset import open_dataset

    out = Path(out)
    folder = out.parent
    dataset = open_dataset(data)
    model, info = load_redirector(run, which="best")
    if reference is not None:  # loaded first: a reference that does not fit fails before the long part
        ref_model, ref_info = load_redirector(reference, which="best")
        if ref_model.config.image_size != dataset.size:
            raise RegazeError(f"reference model {ref_info['checkpoint']} works on {ref_model.config.image_size}² "
                              f"images; the demo data {data} has {dataset.size}²")
    test = dataset.split_indices("test")
    chosen = np.sort(np.random.default_rng(seed).choice(test, size=min(pairs, len(test)), replace=False))
    sweep = sweep_targets(dataset=dataset)
    result = _evaluate(model, dataset, chosen, seed=seed, folder=folder, prefix="", sweep=sweep)
    report = {"checkpoint": info["checkpoint"], "step": info["step"], "data": str(data), "test_images": int(len(chosen)),
              "figures": result["figures"], "lines": result["lines"] + [SHARP_RULE], "grids": result["grids"],
              "sweep": {**result["sweep"], **_sweep_facts(sweep)}}
    if reference is not None:
        card = read_reference_card(ref_info["checkpoint"])
        shipped = Path(ref_info["checkpoint"]).resolve().parent == REFERENCE_DIR.resolve()
        report["reference"] = {"checkpoint": ref_info["checkpoint"], "step": ref_info["step"], "card": card,
                               "title": reference_title(card=card, shipped=shipped),
                               "description": _reference_description(info=ref_info, card=card),
                               **_evaluate(ref_model, dataset, chosen, seed=seed, folder=folder, prefix="reference_",
                                           sweep=sweep)}
    tmp = folder / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, folder / "report.json")
    _write_html(out, report=report, run=Path(run))
    return report


def _sweep_facts(sweep: dict) -> dict:
    """The JSON side of sweep_targets: which image, and every row's angles in degrees."""
    deg = lambda a: np.degrees(a).round(2).tolist()  # noqa: E731
    return {"index": sweep["index"], "subject": sweep["subject"], "eye_range_deg": sweep["limit_deg"],
            "source_gaze_deg": deg(sweep["gaze"]), "source_head_deg": deg(sweep["head"]),
            "rows": {k: {"label": r["label"], "moved": r["moved"], "values_deg": r["values_deg"].tolist(),
                         "gaze_deg": deg(r["gaze"]), "head_deg": deg(r["head"])} for k, r in sweep["rows"].items()}}


def _change_cell(f: dict, *, mode: str) -> str:
    if mode == "both":
        return f"head {f['mean_head_change_deg']:.1f}, gaze {f['mean_gaze_change_deg']:.1f}"
    return f"{f['mean_change_deg']:.1f}"


def _figures_table(figures: dict) -> str:
    blur_heads = "".join(f"<th>exact target blurred {s:g} px (dB)</th>" for s in BLUR_SIGMAS_PX)
    rows = "".join(
        f"<tr><td>{html.escape(ROWS[k][3])}</td><td>{f['n']}</td><td>{_change_cell(f, mode=ROWS[k][0])}</td>"
        f"<td>{f['region']}</td>"
        f"<td>{f['model_psnr_db']:.2f}</td><td>{f['copy_source_psnr_db']:.2f}</td><td>{f['gain_db']:+.2f}</td>"
        + "".join(f"<td>{f[f'{blur_key(s)}_psnr_db']:.2f}</td>" for s in BLUR_SIGMAS_PX)
        + f"<td>{'yes' if f['sharp'] else '<b>no</b>'}</td></tr>"
        for k, f in figures.items())
    return (f"<table><tr><th>change</th><th>images</th><th>mean change (deg)</th><th>scored on</th><th>model PSNR (dB)</th>"
            f"<th>copy-the-source PSNR (dB)</th><th>gain (dB)</th>{blur_heads}<th>sharp</th></tr>{rows}</table>")


def _side_by_side(report: dict) -> str:
    """The run's model and the reference model, row by row, beside the sigma = 1 px control."""
    control = f"{blur_key(BLUR_SIGMAS_PX[0])}_psnr_db"
    ref = report["reference"]["figures"]
    rows = "".join(f"<tr><td>{html.escape(ROWS[k][3])}</td><td>{f['region']}</td><td>{f['model_psnr_db']:.2f}</td>"
                   f"<td>{ref[k]['model_psnr_db']:.2f}</td><td>{f[control]:.2f}</td></tr>"
                   for k, f in report["figures"].items() if k in ref)
    return (f"<table><tr><th>change</th><th>scored on</th><th>this run's model (dB)</th><th>reference model (dB)</th>"
            f"<th>exact target blurred {BLUR_SIGMAS_PX[0]:g} px (dB)</th></tr>{rows}</table>")


def _grids_html(grids: dict, *, level: str = "h2", who: str = "") -> str:
    text = {"head": ("Head-only redirection", "The head moves; the eyes keep looking at the same point."),
            "gaze": ("Gaze-only redirection", "Scores: the eye region (the changed pixels' box); the decoder's "
                     "whole image is the row \"gaze-only, decoder image\"."),
            "both": ("Gaze and head together", "A new head pose, then a new gaze within the eyes' range of it; "
                     "scored on the decoder's whole image.")}
    parts = []
    for key, name in grids.items():
        title, note = text[key]
        width = 8 * len(GRID_COLUMNS[key])
        parts.append(f"<{level}>{who}{title}</{level}><p>Columns: {html.escape(' | '.join(GRID_COLUMNS[key]))}. "
                     f"{html.escape(note)}</p><img src=\"{html.escape(name)}\" style=\"width:{width}em\">")
    return "\n".join(parts)


def _sweep_html(sweep: dict, *, png: str, psnr: dict, level: str = "h2", who: str = "") -> str:
    """The sweep image with a table that names its rows: the model's outputs, then the exact renders."""
    rows = []
    for n, (key, row) in enumerate(sweep["rows"].items()):
        label = html.escape(row["label"])
        angles = ", ".join(f"({round(p)}, {round(y)})" for p, y in row[f"{row['moved']}_deg"])
        scores = ", ".join(f"{v:.1f}" for v in psnr[key])
        rows.append(f"<tr><td>{2 * n + 1}</td><td>{label}: source, then the model</td>"
                    f"<td>{row['moved']} (pitch, yaw) {angles}</td><td>{scores}</td></tr>"
                    f"<tr><td>{2 * n + 2}</td><td>{label}: exact target render</td><td></td><td></td></tr>")
    g, h = sweep["source_gaze_deg"], sweep["source_head_deg"]
    width = 4 * (1 + max(len(r["values_deg"]) for r in sweep["rows"].values()))  # 4 em per 64 px tile
    return (f"<{level}>{who}Angle sweeps of one held-out person</{level}><p>Test subject {sweep['subject']}, image "
            f"{sweep['index']} (gaze ({round(g[0])}, {round(g[1])}) deg, head ({round(h[0])}, {round(h[1])}) deg). "
            f"Each sweep moves one angle, the others kept (a head sweep keeps the gaze in camera coordinates); gazes "
            f"beyond the data's eye range ({sweep['eye_range_deg']:.0f} deg from the face direction) are pulled back "
            f"to it. Under each row of the model's outputs lie the exact renders at the same angles.</p>"
            f"<table><tr><th>row</th><th>shows</th><th>angles (deg)</th><th>PSNR to the exact render (dB)</th></tr>"
            f"{''.join(rows)}</table><img src=\"{html.escape(png)}\" style=\"width:{width}em\">")


def _reference_html(report: dict) -> str:
    ref, who = report["reference"], "Reference model: "
    return (f"<h2>{html.escape(ref['title'][0].upper() + ref['title'][1:])}</h2><p>{html.escape(ref['description'])} "
            f"Scored on the same test images, targets and angles as the model this demo trained.</p>"
            f"{_side_by_side(report)}{_figures_table(ref['figures'])}{_grids_html(ref['grids'], level='h3', who=who)}"
            f"{_sweep_html(report['sweep'], png=ref['sweep']['png'], psnr=ref['sweep']['psnr_db'], level='h3', who=who)}")


def _write_html(path: Path, *, report: dict, run: Path) -> None:
    stats_grids = sorted((run / "grids").glob("step_*.png"))
    latest = os.path.relpath(stats_grids[-1], path.parent) if stats_grids else None
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>regaze demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .8em;text-align:right}}
img{{image-rendering:pixelated;width:24em}}</style></head><body>
<h1>regaze demo report</h1>
<p>Checkpoint <code>{html.escape(report['checkpoint'])}</code> (step {report['step']}), data <code>{html.escape(report['data'])}</code>.
Held-out test subjects only; targets are exact renders of the same synthetic person, light and noise at new angles the
data could contain (drawn in head coordinates within the data's eye-in-head range).</p>
{_figures_table(report['figures'])}
<p>{html.escape(SHARP_RULE)} The blurred rows are the exact target itself blurred by a Gaussian of that sigma, at the
image's resolution: a model below the 1 px row has lost the detail a 1 px blur removes, whatever its gain over copying.</p>
{_grids_html(report['grids'])}
{_sweep_html(report['sweep'], png=report['sweep']['png'], psnr=report['sweep']['psnr_db'])}
{_reference_html(report) if 'reference' in report else ''}
{f'<h2>Training grid (validation subjects)</h2><p>source | gaze yaw -30..30 deg | head yaw -30..30 deg</p><img src="{latest}" style="width:48em">' if latest else ''}
</body></html>
"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
