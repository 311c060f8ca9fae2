"""One pass over the evaluation pairs: redirect, read with the independent estimator, compare (DESIGN §4).

For each pair (source i, target j of the same held-out subject) the model makes these images from i:
  full         i -> (gaze_j, head_j)              redirection error, identity, image quality
  gaze_only    i -> (in-range gaze, head kept)    disentanglement: how far the estimated head moves
  head_only    i -> (gaze kept, in-range head)    disentanglement: how far the estimated gaze moves
  self         i -> (gaze_i, head_i)              reconstruction (redirecting to its own angles)
  estimated    i -> (gaze_j, head_j) with the source angles left to the model's own estimators (m~g, m~h of the
               IAD), as `regaze redirect` does by default; the angles it used are compared with i's labels
Every row scores the decoder's image (`compose="decode"`). The eye composite (`compose="eyes"`: the decoder's
eyes pasted into the source), the default output of a gaze-only change, is scored in its own rows
(`eye_composite`) for gaze-only and reconstruction: it keeps the source outside the eyes, so scoring it as
the model would make every variant look disentangled. The gaze-only and head-only targets are drawn in head
coordinates within the data's range (eval_pairs.in_range_targets); infeasible rows are NaN and left out.

Errors, in degrees (readings.py; gaze in the camera frame and head-relative):
  ST-ED protocol      estimate(output) vs the target label
  GazeNeRF protocol   estimate(output) vs estimate(real target image)
  floor               estimate(real target) vs its label: no model can be read better than this
  copy_source         the same comparisons with the source image as the "output" (the do-nothing level)
On synthetic data the exact targets are rendered (image_quality.py), the same readings of the exact renders
give the evaluation's own floor for every row (`exact_render`), and every image-quality table carries the
blur controls (blur_controls.py). Identity is scored against a gallery of the person with three controls
(identity_controls.py).

`model` is anything with `redirect(images, gaze=, head=, source_gaze=, source_head=, compose=) -> (images,
{"gaze", "head": source angles used})`, images float (B, 3, S, S) in [-1, 1]; a left-out target (None) keeps
that angle, a left-out source angle is the model's own estimate. The estimator only reads.
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict

import numpy as np
import torch

from regaze.errors import RegazeError
from regaze.evaluation.estimator.network import estimate, to_model_input
from regaze.evaluation.baselines import default_renderer, is_synthetic
from regaze.evaluation.blur_controls import blur_control_metrics, blur_key, gaussian_blur_u8, BLUR_SIGMAS_PX
from regaze.evaluation.eval_pairs import in_range_targets
from regaze.evaluation.identity import cosine
from regaze.evaluation.identity_controls import gallery_indices, gallery_references, mean_face_pool, mean_faces_at_pose
from regaze.evaluation.image_quality import eye_boxes, full_and_eye_metrics, optional_metrics, probe_gaze, whole_image_metrics
from regaze.evaluation.readings import err_deg, gaze_only_rows, head_only_rows, label_rows, redirection_rows

__all__ = ["evaluate_pairs", "nest", "OUTPUT_KINDS"]

OUTPUT_KINDS = ("full", "gaze_only", "head_only", "self")


def _redirect(model, x: torch.Tensor, *, gaze, head, source_gaze, source_head, compose: str, device):
    """-> (images float (b, 3, S, S) on the CPU, {"gaze", "head": (b, 2) float64 rad} the source angles the
    model used, or None when it reports none)."""
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)  # noqa: E731
    result = model.redirect(x.to(device), gaze=t(gaze), head=t(head), source_gaze=t(source_gaze),
                            source_head=t(source_head), compose=compose)
    out, used = result if isinstance(result, tuple) else (result, None)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
        raise RegazeError(f"model.redirect should return images shaped like its input {tuple(x.shape)}; "
                          f"got {type(out).__name__} {getattr(out, 'shape', '')}")
    if isinstance(used, dict) and all(isinstance(used.get(k), torch.Tensor) for k in ("gaze", "head")):
        used = {k: used[k].detach().double().cpu().numpy().reshape(-1, 2) for k in ("gaze", "head")}
    else:
        used = None
    return out.detach().float().clamp(-1, 1).cpu(), used


def nest(flat: dict[str, np.ndarray]) -> dict:
    """{"a/b/c": v} -> {"a": {"b": {"c": v}}}."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


@torch.no_grad()
def evaluate_pairs(model, *, dataset, estimator, pairs: dict, batch_size: int = 32, device="cpu",
                   renderer=None, exact_targets: bool | None = None, optional: bool = True,
                   progress: bool = True) -> dict:
    """Run every measurement on `pairs` (eval_pairs.sample_pairs, with or without in_range_targets' arrays,
    which are drawn here when absent) -> {"per_pair": nested dict of (n,) arrays, "notices": [str],
    "timing": {...}, "synthetic": bool, "render_check": {...} or None, "targets": in_range_targets' dict}.

    exact_targets: render exact targets (None = when the data are synthetic); renderer defaults to the
    synthetic renderer. optional: try LPIPS / FID (only with local packages and weights).
    """
    from tqdm import tqdm

    if not dataset.has_gaze_labels:
        raise RegazeError(f"{dataset.path}: has no gaze labels; redirection error needs labelled targets")
    synthetic = is_synthetic(dataset) if exact_targets is None else bool(exact_targets)
    if synthetic and not is_synthetic(dataset):
        raise RegazeError(f"{dataset.path}: exact targets need 'synth_identity' and 'synth_session' arrays")
    if synthetic:
        renderer = renderer or default_renderer()
    lpips_metric, fid_metric, notices = optional_metrics(device=device, enabled=optional)
    if not synthetic:
        notices.append("PSNR / SSIM / L1 to exact targets skipped: the data are not synthetic "
                       "(no 'synth_identity' / 'synth_session' arrays)")
    source, target, other = pairs["source"], pairs["target"], pairs.get("other")
    seed = int(pairs.get("seed", 0))
    targets = {k: pairs[k] for k in ("gaze_only_gaze", "gaze_only_feasible", "head_only_head", "head_only_feasible",
                                     "eye_range_deg") if k in pairs}
    if len(targets) < 5:
        targets = in_range_targets(gaze=dataset.gaze, head=dataset.head, source=source, seed=seed)
    if other is None:
        notices.append("identity: one held-out subject only, no different-subject control")

    # ---- identity: each subject's gallery embeddings, and the pool the mean faces are drawn from (read once)
    t0 = time.time()
    subject = np.asarray(dataset.subject)
    gallery = gallery_indices(subject=subject, subjects=subject[source], seed=seed)
    gallery_emb = {s: estimate(estimator, dataset.read_images(idx))["embedding"] for s, idx in gallery.items()}
    pool = mean_face_pool(n_images=len(dataset), seed=seed)
    pool_images = dataset.read_images(pool)  # (P, S, S, 3)

    acc: dict[str, list] = defaultdict(list)
    timing = defaultdict(float)
    timing["identity_setup_s"] = time.time() - t0
    render_check = None
    fallbacks = 0
    has_estimates = False

    def add(prefix: str, rows: dict, mask: np.ndarray | None = None) -> None:
        for name, value in rows.items():
            value = np.asarray(value, np.float64)
            acc[f"{prefix}/{name}"].append(value if mask is None else np.where(mask, value, np.nan))

    t_start = time.time()
    bar = tqdm(range(0, len(source), batch_size), desc="evaluate", unit="batch", disable=not progress, file=sys.stderr)
    for start in bar:
        sl = slice(start, start + batch_size)
        s_idx, t_idx = source[sl], target[sl]
        xs_u8, xt_u8 = dataset.read_images(s_idx), dataset.read_images(t_idx)  # (b, S, S, 3)
        gs, hs = dataset.gaze[s_idx], dataset.head[s_idx]  # (b, 2) rad
        gt, ht = dataset.gaze[t_idx], dataset.head[t_idx]
        g1, h1 = targets["gaze_only_gaze"][sl], targets["head_only_head"][sl]  # (b, 2) in-range single-factor targets
        g_ok, h_ok = targets["gaze_only_feasible"][sl], targets["head_only_feasible"][sl]  # (b,)
        xs, xt = to_model_input(xs_u8), to_model_input(xt_u8)  # (b, 3, S, S)

        # ---- the model's outputs: the decoder's image for every row, the eye composite for its own rows
        t0 = time.time()
        labels = dict(source_gaze=gs, source_head=hs, device=device)
        run = lambda compose, **kw: _redirect(model, xs, compose=compose, **kw)[0]  # noqa: E731
        outs = {"full": run("decode", gaze=gt, head=ht, **labels),
                "gaze_only": run("decode", gaze=g1, head=None, **labels),
                "head_only": run("decode", gaze=None, head=h1, **labels),
                "self": run("decode", gaze=gs, head=hs, **labels)}
        composite = {"gaze_only": run("eyes", gaze=g1, head=None, **labels),
                     "self": run("eyes", gaze=gs, head=hs, **labels)}
        out_est, used = _redirect(model, xs, gaze=gt, head=ht, source_gaze=None, source_head=None,
                                  compose="decode", device=device)
        timing["redirect_s"] += time.time() - t0

        # ---- estimator readings
        t0 = time.time()
        est_s, est_t = estimate(estimator, xs), estimate(estimator, xt)
        est = {k: estimate(estimator, v) for k, v in outs.items()}
        est_c = {k: estimate(estimator, v) for k, v in composite.items()}
        est_o = estimate(estimator, dataset.read_images(other[sl])) if other is not None else None
        mean_faces = mean_faces_at_pose(pool_images=pool_images, pool_gaze=dataset.gaze[pool],
                                        pool_head=dataset.head[pool], pool_subject=subject[pool], gaze=gt, head=ht,
                                        subject=subject[s_idx])  # (b, S, S, 3) the data set's mean face at the target pose
        est_m = estimate(estimator, mean_faces)
        timing["estimate_s"] += time.time() - t0

        # ---- angles: redirection, the model's own source estimators, floor, reconstruction, disentanglement
        add("redirection/model", redirection_rows(est["full"], gaze=gt, head=ht, real=est_t))
        add("redirection/copy_source", redirection_rows(est_s, gaze=gt, head=ht, real=est_t))
        if used is not None:
            has_estimates = True
            add("redirection/model_estimated_sources",
                redirection_rows(estimate(estimator, out_est), gaze=gt, head=ht, real=est_t))
            add("source_estimators/model", label_rows(used, gaze=gs, head=hs))
        add("source_estimators/independent_estimator", label_rows(est_s, gaze=gs, head=hs))
        add("floor", label_rows(est_t, gaze=gt, head=ht))
        for name, images, reading in (("model", outs["self"], est["self"]),
                                      ("eye_composite", composite["self"], est_c["self"])):
            add(f"reconstruction/{name}", {**label_rows(reading, gaze=gs, head=hs), **whole_image_metrics(images, xs_u8)})
        for key, rows in blur_control_metrics(xs_u8, None).items():
            add(f"reconstruction/{key}", rows)
        for name, r_gaze, r_head in (("model", est["gaze_only"], est["head_only"]), ("copy_source", est_s, est_s)):
            add(f"disentanglement/{name}", gaze_only_rows(r_gaze, gaze=g1, head=hs, source=est_s), g_ok)
            add(f"disentanglement/{name}", head_only_rows(r_head, gaze=gs, head=h1, source=est_s), h_ok)
        add("disentanglement/eye_composite", gaze_only_rows(est_c["gaze_only"], gaze=g1, head=hs, source=est_s), g_ok)

        # ---- identity: every image against the gallery of the source's person (identity_controls.py)
        refs = gallery_references(gallery=gallery, embeddings=gallery_emb, subject=subject, source=s_idx, target=t_idx)
        ident = {"model": est["full"], "source_itself": est_s, "real_target": est_t, "mean_face_target_pose": est_m}
        if est_o is not None:
            ident["different_subject_same_pose"] = est_o
            o_gaze, o_head = dataset.gaze[other[sl]], dataset.head[other[sl]]  # (b, 2) rad
            add("identity_controls", {"stranger_pose_gap_deg": err_deg(o_gaze, gt) + err_deg(o_head, ht)})
        add("identity", {k: cosine(r["embedding"], refs) for k, r in ident.items()})

        # ---- exact targets (synthetic): image quality against them, blur controls, the evaluation's own floor
        reference = xt  # what LPIPS compares with when there is no exact target
        if synthetic:
            t0 = time.time()
            identity_params = dataset.read_array("synth_identity", s_idx)
            sess = dataset.read_array("synth_session", s_idx)

            def rend(g, h):
                try:
                    return renderer(identity=identity_params, session=sess, head=h, gaze=g, size=dataset.size)
                except (ValueError, TypeError, KeyError) as e:  # parameters from another generator version
                    raise RegazeError(f"{dataset.path}: cannot re-render exact targets from the stored "
                                      f"'synth_identity' / 'synth_session' ({type(e).__name__}: {e})") from e

            exact = {"full": rend(gt, ht), "gaze_only": rend(g1, hs), "head_only": rend(gs, h1)}
            boxes, masks = {}, {"full": None, "gaze_only": g_ok, "head_only": h_ok}
            for kind, (g, h) in (("full", (gt, ht)), ("gaze_only", (g1, hs)), ("head_only", (gs, h1))):
                boxes[kind], fb = eye_boxes(exact[kind], rend(probe_gaze(g), h))  # the eyes at that head pose
                fallbacks += int(fb.sum())
            if render_check is None:
                diff = np.abs(rend(gs, hs).astype(np.int16) - xs_u8.astype(np.int16))
                render_check = {"max_abs_diff_levels": int(diff.max()), "images_checked": int(len(s_idx))}
                if diff.max() > 0:
                    notices.append(f"the stored render parameters do not reproduce the stored source images "
                                   f"exactly (max difference {int(diff.max())} levels): exact targets are approximate")
            timing["render_s"] += time.time() - t0
            t0 = time.time()
            for kind in ("full", "gaze_only", "head_only"):
                add(f"image_quality/{kind}/model", full_and_eye_metrics(outs[kind], exact[kind], boxes[kind]), masks[kind])
                add(f"image_quality/{kind}/copy_source", full_and_eye_metrics(xs_u8, exact[kind], boxes[kind]), masks[kind])
                for key, rows in blur_control_metrics(exact[kind], boxes[kind]).items():
                    add(f"image_quality/{kind}/{key}", rows, masks[kind])
            add("image_quality/gaze_only/eye_composite",
                full_and_eye_metrics(composite["gaze_only"], exact["gaze_only"], boxes["gaze_only"]), g_ok)
            timing["image_metrics_s"] += time.time() - t0
            est_x = {k: estimate(estimator, v) for k, v in exact.items()}
            add("redirection/exact_render", redirection_rows(est_x["full"], gaze=gt, head=ht, real=est_t))
            add("disentanglement/exact_render", gaze_only_rows(est_x["gaze_only"], gaze=g1, head=hs, source=est_s), g_ok)
            add("disentanglement/exact_render", head_only_rows(est_x["head_only"], gaze=gs, head=h1, source=est_s), h_ok)
            add("identity", {"exact_render": cosine(est_x["full"]["embedding"], refs)})
            reference = to_model_input(exact["full"])

        # ---- optional learned metrics (with the blur controls when the exact target is known)
        if lpips_metric is not None:
            rows = {"model": lpips_metric(outs["full"], reference), "copy_source": lpips_metric(xs, reference)}
            if synthetic:
                rows.update({blur_key(s): lpips_metric(to_model_input(gaussian_blur_u8(exact["full"], sigma_px=s)),
                                                       reference) for s in BLUR_SIGMAS_PX})
            add("lpips", rows)
        if fid_metric is not None:
            fid_metric.update("output", outs["full"])
            fid_metric.update("real", xt)

    bar.close()
    per_pair = {k: np.concatenate(v) for k, v in acc.items()}
    if fid_metric is not None:
        per_pair["fid/output_vs_real_targets"] = np.array([fid_metric.compute()])
    if not has_estimates:
        notices.append("source-angle estimators: the model reports no source angles of its own; "
                       "redirection with estimated source angles not measured")
    n_g, n_h = int(targets["gaze_only_feasible"].sum()), int(targets["head_only_feasible"].sum())
    notices.append(f"gaze-only / head-only targets drawn in head coordinates within the data's eye-in-head range "
                   f"({targets['eye_range_deg']:.1f} deg): {n_g} / {n_h} of {len(source)} pairs feasible, the "
                   f"others left out of those rows")
    if synthetic:
        notices.append(f"eye region: per-pair box of the pixels a gaze change alters (fixed eye band used for "
                       f"{fallbacks} of {3 * len(source)} boxes)")
    total = time.time() - t_start
    timing = {**{k: round(v, 3) for k, v in timing.items()}, "total_s": round(total, 3),
              "pairs_per_s": round(len(source) / max(total, 1e-9), 2)}
    return {"per_pair": nest(per_pair), "notices": notices, "timing": timing, "synthetic": synthetic,
            "render_check": render_check, "eye_box_fallbacks": fallbacks, "targets": targets}
