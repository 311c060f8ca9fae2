"""The demo's report: redirect held-out synthetic subjects and compare with the exact target renders.

Because the synthetic file stores every render parameter, the image a redirection *should* produce can be
rendered exactly (same person, same light, same sensor noise, new angles). Two kinds of change are drawn, in
head coordinates from the data's own labels within its eye-in-head range (regaze/data/pose_range.py), so that
no target puts the eye where no image of the data has it:

- head-only: a new head pose of the data at least `min_head_change_deg` away that keeps the source's gaze (the
  eyes keep looking at the same point in camera coordinates) within range; scored by PSNR over the whole image;
- gaze-only: a new gaze at least `min_gaze_change_deg` away, head kept; scored by PSNR over the eye region,
  which is exact here: the padded bounding box of the pixels where the source and the exact target differ
  (`evaluation.image_quality.eye_boxes`), since only the eyes and lids change. The default output (the
  decoder's eyes pasted into the source) and the decoder's own image are scored in separate rows.

Every row has its references: copying the source, and the exact target blurred by a Gaussian of sigma = 1 px
and 2 px (evaluation/blur_controls.py). PSNR rewards blur; a model counts as sharp only where it beats the
sigma = 1 px row.
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
from regaze.image_io import save_png, tile, to_u8
from regaze.model.pretrained import load_redirector

__all__ = ["sample_changes", "exact_redirection_scores", "write_demo_report"]


def sample_changes(*, gaze: np.ndarray, head: np.ndarray, mode: str, rng: np.random.Generator, min_change_deg: float,
                   pool_gaze: np.ndarray, pool_head: np.ndarray, limit_deg: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (gaze, head) targets (n, 2) rad for sources (n, 2): `mode` "head" changes the head only, "gaze" the
    gaze only, by >= min_change_deg, drawn from the data's labels pool_gaze, pool_head (m, 2) rad so that the
    gaze stays within `limit_deg` of the face direction (default: the pool's own range, eye_range_deg).

    Returns (new_gaze, new_head, feasible (n,) bool): a source whose gaze is far to one side may have no
    head pose of the data that keeps it in range; it is marked infeasible."""
    limit = eye_range_deg(gaze=pool_gaze, head=pool_head) if limit_deg is None else float(limit_deg)
    if mode == "head":
        new_head, ok = sample_head_for_gaze(gaze=gaze, head=head, pool_head=pool_head, limit_deg=limit,
                                            min_change_deg=min_change_deg, rng=rng)
        return np.asarray(gaze, np.float32).copy(), new_head, ok
    if mode == "gaze":
        new_gaze, ok = sample_gaze_for_head(head=head, gaze=gaze, pool_gaze=pool_gaze, pool_head=pool_head,
                                            limit_deg=limit, min_change_deg=min_change_deg, rng=rng)
        return new_gaze, np.asarray(head, np.float32).copy(), ok
    raise RegazeError(f"mode must be 'head' or 'gaze'; found {mode!r}")


def _box_psnr(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.array([psnr_db(crop_box(a[i : i + 1], box), crop_box(b[i : i + 1], box))[0] for i, box in enumerate(boxes)])


@torch.no_grad()
def exact_redirection_scores(model, dataset, indices: np.ndarray, *, mode: str, min_change_deg: float,
                             seed: int, batch_size: int = 32, compose: str = "auto") -> dict:
    """Redirect dataset[indices] (gaze-only or head-only; `compose` as in Redirector.redirect) and score
    against the exact renders.

    Returns per-image arrays: source, output, target uint8; psnr_db, copy_psnr_db and, for every blur control,
    blur_sigma_{s}px_psnr_db (the exact target blurred, against itself); the same with eye_ for mode "gaze"
    (inside the eye box); change_deg.
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
        kw = {"head": t(new_head)} if mode == "head" else {"gaze": t(new_gaze)}
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
    scores["change_deg"] = angular_error_deg(new_head, head) if mode == "head" else angular_error_deg(new_gaze, gaze)
    return scores


def _figure(scores: dict, *, mode: str, min_deg: float, output: str) -> dict:
    """One row of the report: the model's PSNR in the scored region beside copy-the-source and the blur controls."""
    eye = "eye_" if mode == "gaze" else ""
    mean = lambda key: float(np.mean(scores[key]))  # noqa: E731
    fig = {"n": int(len(scores["indices"])), "min_change_deg": min_deg, "mean_change_deg": mean("change_deg"),
           "region": "eye region" if eye else "whole image", "output": output,
           "model_psnr_db": mean(f"{eye}psnr_db"), "copy_source_psnr_db": mean(f"copy_{eye}psnr_db"),
           "whole_image_model_psnr_db": mean("psnr_db"), "whole_image_copy_psnr_db": mean("copy_psnr_db")}
    fig["gain_db"] = fig["model_psnr_db"] - fig["copy_source_psnr_db"]
    for sigma in BLUR_SIGMAS_PX:
        fig[f"{blur_key(sigma)}_psnr_db"] = mean(f"{blur_key(sigma)}_{eye}psnr_db")
    fig["sharp"] = bool(fig["model_psnr_db"] > fig[f"{blur_key(BLUR_SIGMAS_PX[0])}_psnr_db"])
    return fig


def _line(label: str, f: dict) -> str:
    blur = ", ".join(f"{s:g} px {f[f'{blur_key(s)}_psnr_db']:.2f} dB" for s in BLUR_SIGMAS_PX)
    verdict = "sharp" if f["sharp"] else f"NOT sharp (below the exact target blurred by {BLUR_SIGMAS_PX[0]:g} px)"
    return (f"{label} (>= {f['min_change_deg']:g} deg, mean {f['mean_change_deg']:.1f} deg), {f['region']}: "
            f"model {f['model_psnr_db']:.2f} dB vs copy-the-source {f['copy_source_psnr_db']:.2f} dB "
            f"(gain {f['gain_db']:+.2f} dB); exact target blurred: {blur}; {verdict}")


ROWS = {  # figure key -> (mode, minimum change in degrees, compose, label, what the output is)
    "head": ("head", 15.0, "auto", "head-only", "decoder image"),
    "gaze": ("gaze", 10.0, "auto", "gaze-only", "decoder eyes pasted into the source (the default output)"),
    "gaze_decoder": ("gaze", 10.0, "decode", "gaze-only, decoder image", "decoder image (compose='decode')"),
}


def write_demo_report(*, run, data, out, pairs: int = 128, seed: int = 0) -> dict:
    """Score the run's EMA generator on test subjects; write report.html, PNG grids and report.json."""
    from regaze.data.dataset import open_dataset

    out = Path(out)
    folder = out.parent
    dataset = open_dataset(data)
    model, info = load_redirector(run, which="best")
    test = dataset.split_indices("test")
    chosen = np.sort(np.random.default_rng(seed).choice(test, size=min(pairs, len(test)), replace=False))
    figures, scores = {}, {}
    for key, (mode, min_deg, compose, _, output) in ROWS.items():
        scores[key] = exact_redirection_scores(model, dataset, chosen, mode=mode, min_change_deg=min_deg,
                                               seed=seed + 1, compose=compose)
        figures[key] = _figure(scores[key], mode=mode, min_deg=min_deg, output=output)
    grids = {"head": "head_only.png", "gaze": "gaze_only.png"}
    head, gaze, decoded = scores["head"], scores["gaze"], scores["gaze_decoder"]
    save_png(folder / grids["head"], tile([[head["source"][i], head["output"][i], head["target"][i]]
                                           for i in range(min(8, len(head["indices"])))]))
    save_png(folder / grids["gaze"], tile([[gaze["source"][i], gaze["output"][i], decoded["output"][i], gaze["target"][i]]
                                           for i in range(min(8, len(gaze["indices"])))]))
    lines = [_line(ROWS[k][3], f) for k, f in figures.items()] + [SHARP_RULE]
    report = {"checkpoint": info["checkpoint"], "step": info["step"], "data": str(data), "test_images": int(len(chosen)),
              "figures": figures, "lines": lines}
    tmp = folder / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, folder / "report.json")
    _write_html(out, report=report, grids=grids, run=Path(run))
    return report


def _write_html(path: Path, *, report: dict, grids: dict, run: Path) -> None:
    stats_grids = sorted((run / "grids").glob("step_*.png"))
    latest = os.path.relpath(stats_grids[-1], path.parent) if stats_grids else None
    blur_heads = "".join(f"<th>exact target blurred {s:g} px (dB)</th>" for s in BLUR_SIGMAS_PX)
    rows = "".join(
        f"<tr><td>{html.escape(ROWS[k][3])}</td><td>{f['n']}</td><td>{f['mean_change_deg']:.1f}</td><td>{f['region']}</td>"
        f"<td>{f['model_psnr_db']:.2f}</td><td>{f['copy_source_psnr_db']:.2f}</td><td>{f['gain_db']:+.2f}</td>"
        + "".join(f"<td>{f[f'{blur_key(s)}_psnr_db']:.2f}</td>" for s in BLUR_SIGMAS_PX)
        + f"<td>{'yes' if f['sharp'] else '<b>no</b>'}</td></tr>"
        for k, f in report["figures"].items())
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>regaze demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .8em;text-align:right}}
img{{image-rendering:pixelated;width:24em}}</style></head><body>
<h1>regaze demo report</h1>
<p>Checkpoint <code>{html.escape(report['checkpoint'])}</code> (step {report['step']}), data <code>{html.escape(report['data'])}</code>.
Held-out test subjects only; targets are exact renders of the same synthetic person, light and noise at new angles the
data could contain (drawn in head coordinates within the data's eye-in-head range).</p>
<table><tr><th>change</th><th>images</th><th>mean change (deg)</th><th>scored on</th><th>model PSNR (dB)</th>
<th>copy-the-source PSNR (dB)</th><th>gain (dB)</th>{blur_heads}<th>sharp</th></tr>{rows}</table>
<p>{html.escape(SHARP_RULE)} The blurred rows are the exact target itself blurred by a Gaussian of that sigma, at the
image's resolution: a model below the 1 px row has lost the detail a 1 px blur removes, whatever its gain over copying.</p>
<h2>Head-only redirection</h2><p>Columns: source | redirected | exact target.</p><img src="{grids['head']}">
<h2>Gaze-only redirection</h2><p>Columns: source | redirected (the decoder's eyes pasted into the source, the default
for gaze-only changes) | the decoder's whole image | exact target. Scores: the eye region (the changed pixels' box);
the decoder's image is the row "gaze-only, decoder image" above.</p>
<img src="{grids['gaze']}" style="width:32em">
{f'<h2>Training grid (validation subjects)</h2><p>source | gaze yaw -30..30 deg | head yaw -30..30 deg</p><img src="{latest}" style="width:48em">' if latest else ''}
</body></html>
"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
