"""Summaries and the two output files: eval.json (everything, per-pair values included, so that runs
evaluated on the same stored pairs can be compared pair by pair) and eval.md (the tables a reader wants).
Both are written atomically (temporary file + rename)."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["summarize", "write_json_atomic", "write_text_atomic", "render_markdown", "fmt_stat"]


def _stat(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "n": int(len(v))}


def summarize(tree: dict) -> dict:
    """Nested dict of (n,) arrays -> the same nesting with {"mean", "std", "median", "n"} leaves."""
    return {k: summarize(v) if isinstance(v, dict) else _stat(v) for k, v in tree.items()}


def to_lists(tree: dict, *, digits: int = 4) -> dict:
    """Nested dict of arrays -> nested dict of rounded lists (for JSON)."""
    return {k: to_lists(v, digits=digits) if isinstance(v, dict)
            else [round(float(x), digits) if math.isfinite(float(x)) else None for x in np.asarray(v).reshape(-1)]
            for k, v in tree.items()}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o):
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_text_atomic(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


_NUMBER_LIST = re.compile(r"\[\s+((?:-?[\d.eE+-]+|null)(?:,\s+(?:-?[\d.eE+-]+|null))*)\s+\]")


def write_json_atomic(path, obj) -> Path:
    """Indented JSON, NaN written as null, lists of numbers kept on one line."""
    text = json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=1)
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return write_text_atomic(path, text + "\n")


def fmt_stat(s: dict | None, *, digits: int = 2, spread: bool = True) -> str:
    """{"mean", "std", ...} -> "1.23 ± 0.45" (or "—" when absent)."""
    if not s or s.get("n", 0) == 0 or s.get("mean") is None or not math.isfinite(s["mean"]):
        return "—"
    text = f"{s['mean']:.{digits}f}"
    return f"{text} ± {s['std']:.{digits}f}" if spread and s.get("std") is not None else text


def _get(tree: dict, path: str):
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def render_markdown(result: dict) -> str:
    """The human-readable report of an evaluation result (see regaze.evaluation.protocol.evaluate_model)."""
    s = result["summary"]
    md = [f"# Redirection evaluation", ""]
    m, d, e, p = result["model"], result["data"], result["estimator"], result["pairs"]
    md += [f"- model: `{m.get('name')}`" + (f" (step {m['step']})" if m.get("step") is not None else ""),
           f"- data: `{d['path']}` ({d['size']}², held-out split `{d['split']}`, {d['n_held_out_images']} images, "
           f"{p['n_subjects']} subjects)",
           f"- pairs: {p['n']} (seed {p['seed']}, same {p['rule']}), stored in eval.json",
           f"- estimator: `{e['checkpoint']}`, own validation error gaze {fmt_stat({'mean': (e.get('val') or {}).get('gaze_err_deg', float('nan')), 'n': 1}, spread=False)}°, "
           f"head {fmt_stat({'mean': (e.get('val') or {}).get('head_err_deg', float('nan')), 'n': 1}, spread=False)}°", ""]
    if e.get("untrained"):
        md += [f"> **WARNING: the estimator {e['flag']}. Every angle below is meaningless.**", ""]
    if e.get("held_out_subjects_seen_in_training"):
        md += [f"> Warning: {e['held_out_subjects_seen_in_training']} held-out subjects were in the estimator's "
               f"training set; its floor is optimistic.", ""]

    md += ["## Redirection error (degrees, mean ± std over pairs)", "",
           "ST-ED: estimate on the output vs the target label. GazeNeRF: estimate on the output vs estimate on the "
           "real target image. Floor: the estimator on the real target vs its label.", ""]
    rows = []
    for proto, label in (("st_ed", "ST-ED"), ("gazenerf", "GazeNeRF")):
        for what in ("gaze", "head"):
            key = f"{proto}_{what}_err_deg"
            floor = fmt_stat(_get(s, f"floor/{what}_err_deg")) if proto == "st_ed" else "—"
            rows.append([f"{what} ({label})", fmt_stat(_get(s, f"redirection/{key}")),
                         fmt_stat(_get(s, f"copy_source/{key}")), fmt_stat(_get(s, f"exact_render/{key}")), floor])
    md += _table(["", "model", "copy the source", "exact target render", "estimator floor"], rows) + [""]

    md += ["## Disentanglement (degrees)", "",
           "Gaze-only redirection: the estimated head should not move; head-only: the estimated gaze should not move "
           "(change measured against the estimate on the source).", ""]
    rows = [["gaze-only: gaze error to target", fmt_stat(_get(s, "disentanglement/gaze_only_gaze_err_deg")), "—"],
            ["gaze-only: change of estimated head", fmt_stat(_get(s, "disentanglement/gaze_only_head_change_deg")),
             fmt_stat(_get(s, "exact_render/gaze_only_head_change_deg"))],
            ["head-only: head error to target", fmt_stat(_get(s, "disentanglement/head_only_head_err_deg")), "—"],
            ["head-only: change of estimated gaze", fmt_stat(_get(s, "disentanglement/head_only_gaze_change_deg")),
             fmt_stat(_get(s, "exact_render/head_only_gaze_change_deg"))]]
    md += _table(["", "model", "exact target render"], rows) + [""]

    md += ["## Reconstruction (redirected to its own angles)", ""]
    rows = [[name, fmt_stat(_get(s, f"reconstruction/{key}"), digits=dg)] for name, key, dg in
            (("gaze error (°)", "gaze_err_deg", 2), ("head error (°)", "head_err_deg", 2),
             ("PSNR (dB)", "psnr_db", 2), ("SSIM", "ssim", 4), ("L1", "l1", 4))]
    md += _table(["", "model"], rows) + [""]

    if "image_quality" in s:
        md += ["## Image quality against the exact target render (synthetic data)", "",
               "Eye: inside the per-pair eye box (see eval.json notices).", ""]
        rows = []
        for kind in ("full", "gaze_only", "head_only"):
            for name, key, dg in (("PSNR (dB)", "psnr_db", 2), ("SSIM", "ssim", 4), ("L1", "l1", 4),
                                  ("eye PSNR (dB)", "eye_psnr_db", 2), ("eye SSIM", "eye_ssim", 4), ("eye L1", "eye_l1", 4)):
                rows.append([f"{kind.replace('_', '-')} {name}", fmt_stat(_get(s, f"image_quality/{kind}/model/{key}"), digits=dg),
                             fmt_stat(_get(s, f"image_quality/{kind}/copy_source/{key}"), digits=dg)])
        md += _table(["", "model", "copy the source"], rows) + [""]

    ident = result.get("identity") or {}
    md += ["## Identity (cosine of the estimator's identity embedding; see regaze/evaluation/identity.py)", ""]
    rows = [[name, "—" if ident.get(key) is None else f"{ident[key]:.3f}"] for name, key in
            (("output vs source", "output_vs_source"), ("reference: same subject, real target image", "same_subject_reference"),
             ("reference: different subject", "different_subject_reference"),
             ("normalised (1 = like the real target, 0 = like a stranger)", "normalised"),
             ("fraction of outputs closer to the source than a stranger", "closer_than_stranger"),
             ("same, for the real target image", "reference_closer_than_stranger"))]
    if _get(s, "exact_render/identity_vs_source"):
        rows.append(["exact target render vs source", fmt_stat(_get(s, "exact_render/identity_vs_source"), digits=3, spread=False)])
    md += _table(["", "value"], rows) + [""]

    if "lpips" in s or "fid" in s:
        md += ["## Learned metrics", ""]
        rows = []
        if "lpips" in s:
            rows.append(["LPIPS to target (lower is better)", fmt_stat(_get(s, "lpips/model"), digits=4),
                         fmt_stat(_get(s, "lpips/copy_source"), digits=4)])
        if "fid" in s:
            rows.append(["FID outputs vs real targets", fmt_stat(_get(s, "fid/output_vs_real_targets"), spread=False), "—"])
        md += _table(["", "model", "copy the source"], rows) + [""]

    if result.get("notices"):
        md += ["## Notices", ""] + [f"- {n}" for n in result["notices"]] + [""]
    t = result.get("timing", {})
    md += [f"Evaluation time: {t.get('total_s', float('nan')):.1f} s ({t.get('pairs_per_s', float('nan')):.1f} pairs/s)."]
    return "\n".join(md) + "\n"
