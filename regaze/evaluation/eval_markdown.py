"""eval.md: the tables a reader wants from an evaluation result (protocol.evaluate_model), each with its
reference rows beside the model's: copy the source, the exact target render, the estimator's floor, the blur
controls of every image-quality table, the identity measure's controls. The model's rows score the decoder's
image; the eye composite (the decoder's eyes pasted into the source) has rows of its own."""
from __future__ import annotations

from regaze.evaluation.blur_controls import BLUR_SIGMAS_PX, SHARP_RULE, blur_key
from regaze.evaluation.identity import CLEARLY_WORSE_FRACTION
from regaze.evaluation.report import fmt_stat

__all__ = ["render_markdown"]

DECODER = "model: decoder image"
COMPOSITE = "model: eye composite (decoder eyes pasted into the source)"
BLUR_ROWS = [(blur_key(s), f"control: exact target blurred, sigma = {s:g} px") for s in BLUR_SIGMAS_PX]
IMAGE_METRICS = (("PSNR (dB)", "psnr_db", 2), ("SSIM", "ssim", 4), ("L1", "l1", 4),
                 ("eye PSNR (dB)", "eye_psnr_db", 2), ("eye SSIM", "eye_ssim", 4), ("eye L1", "eye_l1", 4))
GAZE_FRAMES = (("gaze, camera frame", "gaze_err_deg"), ("gaze, head-relative", "gaze_head_rel_err_deg"),
               ("head", "head_err_deg"))


def _get(tree: dict, path: str):
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _yes_no(verdict: dict | None) -> str:
    if not verdict:
        return "—"
    return "yes" if all(v is True for v in verdict.values()) else "no"


def _header(result: dict) -> list[str]:
    m, d, e, p = result["model"], result["data"], result["estimator"], result["pairs"]
    val = e.get("val") or {}
    one = lambda key: fmt_stat({"mean": val.get(key, float("nan")), "n": 1}, spread=False)  # noqa: E731
    md = ["# Redirection evaluation", "",
          f"- model: `{m.get('name')}`" + (f" (step {m['step']})" if m.get("step") is not None else ""),
          f"- data: `{d['path']}` ({d['size']}², held-out split `{d['split']}`, {d['n_held_out_images']} images, "
          f"{p['n_subjects']} subjects)",
          f"- pairs: {p['n']} (seed {p['seed']}, same {p['rule']}), stored in eval.json; gaze-only / head-only targets "
          f"drawn in head coordinates within the data's eye-in-head range"
          + (f" ({p['eye_range_deg']:.1f}°)" if p.get("eye_range_deg") is not None else ""),
          f"- estimator: `{e['checkpoint']}`, own validation error gaze {one('gaze_err_deg')}°, head {one('head_err_deg')}°",
          "- every model row scores the decoder's image (`compose=\"decode\"`); the eye composite has rows of its own", ""]
    if e.get("untrained"):
        md += [f"> **WARNING: the estimator {e['flag']}. Every angle below is meaningless.**", ""]
    if e.get("held_out_subjects_seen_in_training"):
        md += [f"> Warning: {e['held_out_subjects_seen_in_training']} held-out subjects were in the estimator's "
               f"training set; its floor is optimistic.", ""]
    return md


def _redirection(s: dict) -> list[str]:
    md = ["## Redirection error (degrees, mean ± std over pairs)", "",
          "ST-ED: estimate on the output vs the target label. GazeNeRF: estimate on the output vs estimate on the "
          "real target image. Gaze in the camera frame and head-relative (in head coordinates: where the eyes point "
          "in the face). Label source angles: the source's labels are given to the model; estimated: the model's "
          "own estimators (m~g, m~h) read them, as `regaze redirect` does by default. Floor: the estimator on the "
          "real target vs its label.", ""]
    rows = []
    for proto, label in (("st_ed", "ST-ED"), ("gazenerf", "GazeNeRF")):
        for what, key in GAZE_FRAMES:
            k = f"{proto}_{key}"
            floor = fmt_stat(_get(s, f"floor/{key}")) if proto == "st_ed" else "—"
            rows.append([f"{what} ({label})"] + [fmt_stat(_get(s, f"redirection/{src}/{k}")) for src in
                                                 ("model", "model_estimated_sources", "copy_source", "exact_render")]
                        + [floor])
    md += _table(["", "model, label source angles", "model, estimated source angles", "copy the source",
                  "exact target render", "estimator floor"], rows)
    md += ["### The model's source-angle estimators (m~g, m~h) on the held-out source images (degrees)", "",
           "What `regaze redirect` uses when no source angles are given; beside, the independent estimator on the "
           "same images.", ""]
    rows = [[what, fmt_stat(_get(s, f"source_estimators/model/{key}")),
             fmt_stat(_get(s, f"source_estimators/independent_estimator/{key}"))] for what, key in GAZE_FRAMES]
    return md + _table(["error to the source's labels", "model's estimators", "independent estimator"], rows)


def _disentanglement(s: dict) -> list[str]:
    md = ["## Disentanglement (degrees)", "",
          "Gaze-only: the estimated head should not move; head-only: the camera-frame gaze is kept, so the estimated "
          "gaze should not move and its head-relative error should be 0. A head-relative change of 0 in a head-only "
          "change means the gaze followed the head.", ""]
    sources = (("model", DECODER), ("eye_composite", COMPOSITE), ("copy_source", "copy the source"),
               ("exact_render", "exact target render"))
    gaze_only = [[label] + [fmt_stat(_get(s, f"disentanglement/{src}/gaze_only_{k}")) for k in
                            ("gaze_err_deg", "gaze_head_rel_err_deg", "head_change_deg")] for src, label in sources]
    md += _table(["gaze-only", "gaze error, camera frame", "gaze error, head-relative", "change of estimated head"],
                 gaze_only)
    head_only = [[label] + [fmt_stat(_get(s, f"disentanglement/{src}/head_only_{k}")) for k in
                            ("head_err_deg", "gaze_change_deg", "gaze_head_rel_err_deg", "gaze_head_rel_change_deg")]
                 for src, label in sources if src != "eye_composite"]
    return md + _table(["head-only", "head error", "change of estimated gaze, camera frame",
                        "gaze error, head-relative", "head-relative gaze change from the source"], head_only)


def _reconstruction(s: dict, sharp: dict) -> list[str]:
    md = ["## Reconstruction (redirected to its own angles)", "",
          "The target is the source itself, so the blur controls are the source blurred.", ""]
    cols = (("gaze (°)", "gaze_err_deg", 2), ("gaze head-rel (°)", "gaze_head_rel_err_deg", 2),
            ("head (°)", "head_err_deg", 2), ("PSNR (dB)", "psnr_db", 2), ("SSIM", "ssim", 4), ("L1", "l1", 4))
    rows = []
    for row, label in (("model", DECODER), ("eye_composite", COMPOSITE), *BLUR_ROWS):
        verdict = _yes_no(sharp.get(f"reconstruction/{row}")) if row in ("model", "eye_composite") else ""
        rows.append([label] + [fmt_stat(_get(s, f"reconstruction/{row}/{k}"), digits=dg) for _, k, dg in cols] + [verdict])
    return md + _table([""] + [c[0] for c in cols] + ["sharp (beats sigma = 1 px)"], rows)


def _image_quality(s: dict, sharp: dict, sharp_rows: dict) -> list[str]:
    md = ["## Image quality against the exact target render (synthetic data)", "",
          f"Eye: inside the per-pair eye box (see eval.json notices). {SHARP_RULE}", ""]
    rows = []
    for kind in ("full", "gaze_only", "head_only"):
        node = s["image_quality"].get(kind) or {}
        for row, label in (("model", DECODER), ("eye_composite", COMPOSITE), ("copy_source", "copy the source"), *BLUR_ROWS):
            if row not in node:
                continue
            verdict = _yes_no(sharp.get(f"image_quality/{kind}/{row}")) if row in ("model", "eye_composite") else ""
            rows.append([f"{kind.replace('_', '-')}: {label}"]
                        + [fmt_stat(_get(node, f"{row}/{k}"), digits=dg) for _, k, dg in IMAGE_METRICS] + [verdict])
    md += _table([""] + [m[0] for m in IMAGE_METRICS] + ["sharp (beats sigma = 1 px)"], rows)
    return md + [_sharp_sentence(sharp_rows), ""]


def _sharp_sentence(sharp: dict) -> str:
    """{"table/kind/row": sharp on every metric} -> one sentence."""
    yes = [k for k, v in sharp.items() if v]
    if not sharp:
        return "Sharpness: no model row to judge."
    if not yes:
        return ("Sharpness: the model is sharp nowhere: every one of its rows is at or below the exact target "
                "blurred by sigma = 1 px on some metric.")
    names = ", ".join(k.replace("image_quality/", "").replace("/model", " (decoder image)")
                      .replace("/eye_composite", " (eye composite)").replace("_", "-") for k in yes)
    return f"Sharpness: the model beats the sigma = 1 px blur control on every metric only in: {names}."


def _identity(ident: dict, s: dict) -> list[str]:
    sc = ident.get("scores") or {}
    md = ["## Identity (cosine of the estimator's identity embedding to a gallery of the source's person)", "",
          "Reference: the mean embedding of other images of the source's subject (regaze/evaluation/identity_controls.py). "
          "Controls: the source itself must score best, a different subject at the target's pose clearly worse, the "
          "data set's mean face at the target's pose worse than the source.", ""]
    rows = [[label, "—" if sc.get(key) is None else f"{sc[key]:.3f}"] for label, key in (
        ("model: decoder image", "model"), ("control: the source image itself", "source_itself"),
        ("control: different subject, same pose", "different_subject_same_pose"),
        ("control: mean face of the data set, target pose", "mean_face_target_pose"),
        ("reference: real target image", "real_target"), ("reference: exact target render", "exact_render"))]
    for label, key in (("normalised (1 = like the source photo, 0 = like a stranger at the same pose)", "normalised"),
                       ("fraction of outputs closer to the person than the stranger", "closer_than_stranger"),
                       ("same, for the source image", "source_closer_than_stranger")):
        rows.append([label, "—" if ident.get(key) is None else f"{ident[key]:.3f}"])
    md += _table(["", "value"], rows)
    gap = _get(s, "identity_controls/stranger_pose_gap_deg")
    if gap:
        md += [f"The stranger's pose is {fmt_stat(gap, spread=False)}° (gaze + head angle) from the target's on average.", ""]
    checks = ident.get("checks") or {}
    words = {"source_scores_best": "the source scores best",
             "different_subject_clearly_worse": f"the stranger scores below the source in >= "
                                                f"{CLEARLY_WORSE_FRACTION:.0%} of pairs",
             "mean_face_worse_than_source": "the mean face scores below the source"}
    if not checks:
        return md + ["The identity controls could not be run (one held-out subject); the number above has no reference.", ""]
    passed = [words[k] for k, v in checks.items() if v]
    failed = [words[k] for k, v in checks.items() if not v]
    if ident.get("controls_pass"):
        return md + [f"The measure passes its controls ({'; '.join(passed)}).", ""]
    return md + [f"**The measure fails its controls** (not: {'; '.join(failed)}): do not trust the identity "
                 f"numbers of this evaluation.", ""]


def _learned(s: dict) -> list[str]:
    if "lpips" not in s and "fid" not in s:
        return []
    md = ["## Learned metrics", ""]
    rows = []
    if "lpips" in s:
        for row, label in (("model", DECODER), ("copy_source", "copy the source"), *BLUR_ROWS):
            if row in s["lpips"]:
                rows.append([f"LPIPS to target (lower is better): {label}", fmt_stat(_get(s, f"lpips/{row}"), digits=4)])
    if "fid" in s:
        rows.append(["FID outputs vs real targets", fmt_stat(_get(s, "fid/output_vs_real_targets"), spread=False)])
    return md + _table(["", "value"], rows)


def render_markdown(result: dict) -> str:
    """The human-readable report of an evaluation result (see regaze.evaluation.protocol.evaluate_model)."""
    s = result["summary"]
    sharp = (result.get("sharpness") or {}).get("rows", {})  # {"table/kind/row": {metric: beats sigma = 1 px}}
    md = _header(result) + _redirection(s) + _disentanglement(s) + _reconstruction(s, sharp)
    if "image_quality" in s:
        md += _image_quality(s, sharp, (result.get("sharpness") or {}).get("sharp", {}))
    md += _identity(result.get("identity") or {}, s) + _learned(s)
    if result.get("notices"):
        md += ["## Notices", ""] + [f"- {n}" for n in result["notices"]] + [""]
    t = result.get("timing", {})
    md += [f"Evaluation time: {t.get('total_s', float('nan')):.1f} s ({t.get('pairs_per_s', float('nan')):.1f} pairs/s)."]
    return "\n".join(md) + "\n"
