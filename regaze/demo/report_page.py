"""The demo's report: redirect held-out synthetic subjects and compare with the exact target renders.

Because the synthetic file stores every render parameter, the image a redirection *should* produce can be
rendered exactly (same person, same light, same sensor noise, new angles). Two kinds of change are drawn:

- head-only: a new head pose at least `min_head_change_deg` away, gaze label kept (the eyes keep looking at
  the same point in camera coordinates); scored by PSNR over the whole image;
- gaze-only: a new gaze at least `min_gaze_change_deg` away, head kept; scored by PSNR over the eye region,
  which is exact here: the padded bounding box of the pixels where the source and the exact target differ
  (`evaluation.image_quality.eye_boxes`), since only the eyes and lids change.

Both are compared with the copy-the-source baseline (PSNR of the unchanged source against the target).
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from regaze.geometry import angular_error_deg
from regaze.evaluation.image_quality import eye_boxes
from regaze.image_metrics import crop_box, psnr_db
from regaze.image_io import save_png, tile, to_u8
from regaze.model.pretrained import load_redirector

__all__ = ["sample_changes", "exact_redirection_scores", "write_demo_report"]

HEAD_RANGE_DEG = (30.0, 45.0)  # |pitch|, |yaw| of drawn head targets: the synthetic training range
GAZE_FROM_HEAD_MAX_DEG = 35.0  # gaze stays this close to the head direction: the eyeball range of the renderer


def _uniform_angles(rng, n: int, *, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    return np.radians(np.stack([rng.uniform(-pitch_deg, pitch_deg, n), rng.uniform(-yaw_deg, yaw_deg, n)], 1))


def sample_changes(*, gaze: np.ndarray, head: np.ndarray, mode: str, rng: np.random.Generator,
                   min_change_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (gaze, head) targets (n, 2) rad for sources (n, 2): `mode` "head" changes the head only, "gaze" the
    gaze only, by >= min_change_deg, keeping the gaze within GAZE_FROM_HEAD_MAX_DEG of the head direction.

    Returns (new_gaze, new_head, feasible (n,) bool): a source whose gaze is far to one side may have no
    head pose in range that keeps its gaze inside the eyeball's range; it is marked infeasible."""
    new_gaze, new_head = gaze.copy(), head.copy()
    todo = np.arange(len(gaze))
    for _ in range(1000):
        if not len(todo):
            break
        if mode == "head":
            cand = _uniform_angles(rng, len(todo), pitch_deg=HEAD_RANGE_DEG[0], yaw_deg=HEAD_RANGE_DEG[1])
            ok = (angular_error_deg(cand, head[todo]) >= min_change_deg) & (angular_error_deg(gaze[todo], cand) <= GAZE_FROM_HEAD_MAX_DEG)
            new_head[todo[ok]] = cand[ok]
        else:
            cand = head[todo] + _uniform_angles(rng, len(todo), pitch_deg=GAZE_FROM_HEAD_MAX_DEG, yaw_deg=GAZE_FROM_HEAD_MAX_DEG)
            ok = (angular_error_deg(cand, gaze[todo]) >= min_change_deg) & (angular_error_deg(cand, head[todo]) <= GAZE_FROM_HEAD_MAX_DEG)
            new_gaze[todo[ok]] = cand[ok]
        todo = todo[~ok]
    feasible = np.ones(len(gaze), bool)
    feasible[todo] = False
    return new_gaze.astype(np.float32), new_head.astype(np.float32), feasible


def _box_psnr(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.array([psnr_db(crop_box(a[i : i + 1], box), crop_box(b[i : i + 1], box))[0] for i, box in enumerate(boxes)])


@torch.no_grad()
def exact_redirection_scores(model, dataset, indices: np.ndarray, *, mode: str, min_change_deg: float,
                             seed: int, batch_size: int = 32, compose: str = "auto") -> dict:
    """Redirect dataset[indices] (gaze-only or head-only; `compose` as in Redirector.redirect) and score
    against the exact renders.

    Returns per-image arrays (source, output, target uint8; psnr_db, copy_psnr_db; eye-box figures for
    mode "gaze") and their means.
    """
    from regaze.data.synth import render

    rng = np.random.default_rng(seed)
    new_gaze, new_head, feasible = sample_changes(gaze=dataset.gaze[indices], head=dataset.head[indices], mode=mode,
                                                  rng=rng, min_change_deg=min_change_deg)
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
    if mode == "gaze":
        boxes, _ = eye_boxes(source, target)
        scores["eye_psnr_db"] = _box_psnr(output, target, boxes)
        scores["copy_eye_psnr_db"] = _box_psnr(source, target, boxes)
    scores["change_deg"] = angular_error_deg(new_head, head) if mode == "head" else angular_error_deg(new_gaze, gaze)
    return scores


def write_demo_report(*, run, data, out, pairs: int = 128, seed: int = 0) -> dict:
    """Score the run's EMA generator on test subjects; write report.html, PNG grids and report.json."""
    from regaze.data.dataset import open_dataset

    out = Path(out)
    folder = out.parent
    dataset = open_dataset(data)
    model, info = load_redirector(run, which="best")
    test = dataset.split_indices("test")
    chosen = np.sort(np.random.default_rng(seed).choice(test, size=min(pairs, len(test)), replace=False))
    figures, grids = {}, {}
    for mode, min_deg in (("head", 15.0), ("gaze", 10.0)):
        s = exact_redirection_scores(model, dataset, chosen, mode=mode, min_change_deg=min_deg, seed=seed + 1)
        key = "psnr_db" if mode == "head" else "eye_psnr_db"
        decoded = None  # gaze-only: the default output pastes the decoder's eyes into the source; score both
        if mode == "gaze":
            decoded = exact_redirection_scores(model, dataset, chosen, mode=mode, min_change_deg=min_deg,
                                               seed=seed + 1, compose="decode")
        figures[mode] = {
            "n": int(len(s["indices"])),
            "min_change_deg": min_deg,
            "mean_change_deg": float(np.mean(s["change_deg"])),
            "region": "whole image" if mode == "head" else "eye region",
            "model_psnr_db": float(np.mean(s[key])),
            "copy_source_psnr_db": float(np.mean(s["copy_" + key])),
            "gain_db": float(np.mean(s[key]) - np.mean(s["copy_" + key])),
            "whole_image_model_psnr_db": float(np.mean(s["psnr_db"])),
            "whole_image_copy_psnr_db": float(np.mean(s["copy_psnr_db"])),
            "output": "decoder image" if mode == "head" else "decoder eyes pasted into the source (compose='eyes')",
        }
        if decoded is not None:
            figures[mode]["decoder_image_psnr_db"] = float(np.mean(decoded[key]))
            figures[mode]["decoder_image_whole_psnr_db"] = float(np.mean(decoded["psnr_db"]))
        rows = [[s["source"][i], s["output"][i]] + ([decoded["output"][i]] if decoded is not None else []) + [s["target"][i]]
                for i in range(min(8, len(s["indices"])))]
        grids[mode] = f"{mode}_only.png"
        save_png(folder / grids[mode], tile(rows))
    lines = [f"{m}-only (>= {f['min_change_deg']:g} deg, mean {f['mean_change_deg']:.1f} deg), {f['region']}: "
             f"model {f['model_psnr_db']:.2f} dB vs copy-the-source {f['copy_source_psnr_db']:.2f} dB "
             f"(gain {f['gain_db']:+.2f} dB)"
             + (f"; the decoder's whole image alone: {f['decoder_image_psnr_db']:.2f} dB" if "decoder_image_psnr_db" in f else "")
             for m, f in figures.items()]
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
    rows = "".join(
        f"<tr><td>{m}-only</td><td>{f['n']}</td><td>{f['mean_change_deg']:.1f}</td><td>{f['region']}</td>"
        f"<td>{f['model_psnr_db']:.2f}</td><td>{f['copy_source_psnr_db']:.2f}</td><td>{f['gain_db']:+.2f}</td></tr>"
        for m, f in report["figures"].items())
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>regaze demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .8em;text-align:right}}
img{{image-rendering:pixelated;width:24em}}</style></head><body>
<h1>regaze demo report</h1>
<p>Checkpoint <code>{html.escape(report['checkpoint'])}</code> (step {report['step']}), data <code>{html.escape(report['data'])}</code>.
Held-out test subjects only; targets are exact renders of the same synthetic person, light and noise at the new angles.</p>
<table><tr><th>change</th><th>images</th><th>mean change (deg)</th><th>scored on</th><th>model PSNR (dB)</th>
<th>copy-the-source PSNR (dB)</th><th>gain (dB)</th></tr>{rows}</table>
<h2>Head-only redirection</h2><p>Columns: source | redirected | exact target.</p><img src="{grids['head']}">
<h2>Gaze-only redirection</h2><p>Columns: source | redirected (the decoder's eyes pasted into the source, the default
for gaze-only changes) | the decoder's whole image | exact target. Scores: the eye region (the changed pixels' box);
the decoder's whole image scores {report['figures']['gaze'].get('decoder_image_psnr_db', float('nan')):.2f} dB there.</p>
<img src="{grids['gaze']}" style="width:32em">
{f'<h2>Training grid (validation subjects)</h2><p>source | gaze yaw -30..30 deg | head yaw -30..30 deg</p><img src="{latest}" style="width:48em">' if latest else ''}
</body></html>
"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
