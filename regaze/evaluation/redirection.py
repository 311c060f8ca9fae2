"""One pass over the evaluation pairs: redirect, read with the independent estimator, compare (DESIGN §4).

For each pair (source i, target j of the same held-out subject) the model makes four images from i:
  full       i -> (gaze_j, head_j)          redirection error, identity, image quality
  gaze_only  i -> (gaze_j, head kept)       disentanglement: how far the estimated head moves
  head_only  i -> (gaze kept, head_j)       disentanglement: how far the estimated gaze moves
  self       i -> (gaze_i, head_i)          reconstruction (redirecting to its own angles)
Source angles are always i's labels. The estimator reads the outputs and the real i, j and a stranger image.

Errors, in degrees (angular_error_deg):
  ST-ED protocol      estimate(output) vs the target label
  GazeNeRF protocol   estimate(output) vs estimate(real target image)
  floor               estimate(real target) vs its label: no model can be read better than this
  copy_source         the same comparisons with the source image as the "output" (the do-nothing level)
On synthetic data the exact targets are rendered (image_quality.py) and the same readings of the exact
renders give the evaluation's own floor for every row (`exact_render`).

`model` is anything with `redirect(images, gaze=, head=, source_gaze=, source_head=) -> (images, ...)`,
images float (B, 3, S, S) in [-1, 1]; a left-out target (None) keeps that angle. The estimator only reads.
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
from regaze.evaluation.identity import cosine
from regaze.evaluation.image_quality import eye_boxes, full_and_eye_metrics, optional_metrics, probe_gaze
from regaze.geometry import angular_error_deg
from regaze.image_metrics import l1, psnr_db, ssim

__all__ = ["evaluate_pairs", "nest"]

OUTPUT_KINDS = ("full", "gaze_only", "head_only", "self")


def _err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return angular_error_deg(np.asarray(a, np.float64), np.asarray(b, np.float64))


def _redirect(model, x: torch.Tensor, *, gaze, head, source_gaze, source_head, device) -> torch.Tensor:
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(device)  # noqa: E731
    result = model.redirect(x.to(device), gaze=t(gaze), head=t(head), source_gaze=t(source_gaze),
                            source_head=t(source_head))
    out = result[0] if isinstance(result, tuple) else result
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
        raise RegazeError(f"model.redirect should return images shaped like its input {tuple(x.shape)}; "
                          f"got {type(out).__name__} {getattr(out, 'shape', '')}")
    return out.detach().float().clamp(-1, 1).cpu()


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
    """Run every measurement on `pairs` (see pairs.sample_pairs) -> {"per_pair": nested dict of (n,) arrays,
    "notices": [str], "timing": {...}, "synthetic": bool, "render_check": {...} or None}.

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
    if other is None:
        notices.append("identity: one held-out subject only, no different-subject reference")

    acc: dict[str, list] = defaultdict(list)
    timing = defaultdict(float)
    render_check = None
    fallbacks = 0
    t_start = time.time()
    bar = tqdm(range(0, len(source), batch_size), desc="evaluate", unit="batch", disable=not progress, file=sys.stderr)
    for start in bar:
        sl = slice(start, start + batch_size)
        s_idx, t_idx = source[sl], target[sl]
        xs_u8, xt_u8 = dataset.read_images(s_idx), dataset.read_images(t_idx)  # (b, S, S, 3)
        gs, hs = dataset.gaze[s_idx], dataset.head[s_idx]  # (b, 2) rad
        gt, ht = dataset.gaze[t_idx], dataset.head[t_idx]
        xs, xt = to_model_input(xs_u8), to_model_input(xt_u8)  # (b, 3, S, S)

        # ---- the model's four outputs
        t0 = time.time()
        kw = dict(source_gaze=gs, source_head=hs, device=device)
        outs = {"full": _redirect(model, xs, gaze=gt, head=ht, **kw),
                "gaze_only": _redirect(model, xs, gaze=gt, head=None, **kw),
                "head_only": _redirect(model, xs, gaze=None, head=ht, **kw),
                "self": _redirect(model, xs, gaze=gs, head=hs, **kw)}
        timing["redirect_s"] += time.time() - t0

        # ---- estimator readings
        t0 = time.time()
        est_s, est_t = estimate(estimator, xs), estimate(estimator, xt)
        est = {k: estimate(estimator, v) for k, v in outs.items()}
        est_o = estimate(estimator, dataset.read_images(other[sl])) if other is not None else None
        timing["estimate_s"] += time.time() - t0

        def angle_rows(prefix: str, reading: dict) -> None:
            acc[f"{prefix}/st_ed_gaze_err_deg"].append(_err(reading["gaze"], gt))
            acc[f"{prefix}/st_ed_head_err_deg"].append(_err(reading["head"], ht))
            acc[f"{prefix}/gazenerf_gaze_err_deg"].append(_err(reading["gaze"], est_t["gaze"]))
            acc[f"{prefix}/gazenerf_head_err_deg"].append(_err(reading["head"], est_t["head"]))

        angle_rows("redirection", est["full"])
        angle_rows("copy_source", est_s)
        acc["floor/gaze_err_deg"].append(_err(est_t["gaze"], gt))
        acc["floor/head_err_deg"].append(_err(est_t["head"], ht))
        acc["reconstruction/gaze_err_deg"].append(_err(est["self"]["gaze"], gs))
        acc["reconstruction/head_err_deg"].append(_err(est["self"]["head"], hs))
        acc["reconstruction/psnr_db"].append(psnr_db(outs["self"], xs_u8))
        acc["reconstruction/ssim"].append(ssim(outs["self"], xs_u8))
        acc["reconstruction/l1"].append(l1(outs["self"], xs_u8))
        acc["disentanglement/gaze_only_gaze_err_deg"].append(_err(est["gaze_only"]["gaze"], gt))
        acc["disentanglement/gaze_only_head_change_deg"].append(_err(est["gaze_only"]["head"], est_s["head"]))
        acc["disentanglement/head_only_head_err_deg"].append(_err(est["head_only"]["head"], ht))
        acc["disentanglement/head_only_gaze_change_deg"].append(_err(est["head_only"]["gaze"], est_s["gaze"]))
        acc["identity/output_vs_source"].append(cosine(est["full"]["embedding"], est_s["embedding"]))
        acc["identity/same_subject"].append(cosine(est_t["embedding"], est_s["embedding"]))
        if est_o is not None:
            acc["identity/different_subject"].append(cosine(est_o["embedding"], est_s["embedding"]))

        # ---- exact targets (synthetic): image quality against them, and the evaluation's own floor
        reference = xt  # what LPIPS compares with when there is no exact target
        if synthetic:
            t0 = time.time()
            ident = dataset.read_array("synth_identity", s_idx)
            sess = dataset.read_array("synth_session", s_idx)

            def rend(g, h):
                try:
                    return renderer(identity=ident, session=sess, head=h, gaze=g, size=dataset.size)
                except (ValueError, TypeError, KeyError) as e:  # parameters from another generator version
                    raise RegazeError(f"{dataset.path}: cannot re-render exact targets from the stored "
                                      f"'synth_identity' / 'synth_session' ({type(e).__name__}: {e})") from e

            exact = {"full": rend(gt, ht), "gaze_only": rend(gt, hs), "head_only": rend(gs, ht)}
            probe = probe_gaze(gt)
            box_target, fb1 = eye_boxes(exact["full"], rend(probe, ht))  # eyes at the target head pose
            box_source, fb2 = eye_boxes(exact["gaze_only"], rend(probe, hs))  # eyes at the source head pose
            fallbacks += int(fb1.sum() + fb2.sum())
            if render_check is None:
                diff = np.abs(rend(gs, hs).astype(np.int16) - xs_u8.astype(np.int16))
                render_check = {"max_abs_diff_levels": int(diff.max()), "images_checked": int(len(s_idx))}
                if diff.max() > 0:
                    notices.append(f"the stored render parameters do not reproduce the stored source images "
                                   f"exactly (max difference {int(diff.max())} levels): exact targets are approximate")
            timing["render_s"] += time.time() - t0
            boxes = {"full": box_target, "gaze_only": box_source, "head_only": box_target}
            for kind in ("full", "gaze_only", "head_only"):
                for name, value in full_and_eye_metrics(outs[kind], exact[kind], boxes[kind]).items():
                    acc[f"image_quality/{kind}/model/{name}"].append(value)
                for name, value in full_and_eye_metrics(xs_u8, exact[kind], boxes[kind]).items():
                    acc[f"image_quality/{kind}/copy_source/{name}"].append(value)
            est_x = {k: estimate(estimator, v) for k, v in exact.items()}
            angle_rows("exact_render", est_x["full"])
            acc["exact_render/gaze_only_head_change_deg"].append(_err(est_x["gaze_only"]["head"], est_s["head"]))
            acc["exact_render/head_only_gaze_change_deg"].append(_err(est_x["head_only"]["gaze"], est_s["gaze"]))
            acc["exact_render/identity_vs_source"].append(cosine(est_x["full"]["embedding"], est_s["embedding"]))
            reference = to_model_input(exact["full"])

        # ---- optional learned metrics
        if lpips_metric is not None:
            acc["lpips/model"].append(lpips_metric(outs["full"], reference))
            acc["lpips/copy_source"].append(lpips_metric(xs, reference))
        if fid_metric is not None:
            fid_metric.update("output", outs["full"])
            fid_metric.update("real", xt)

    bar.close()
    per_pair = {k: np.concatenate(v) for k, v in acc.items()}
    if fid_metric is not None:
        per_pair["fid/output_vs_real_targets"] = np.array([fid_metric.compute()])
    if synthetic:
        notices.append(f"eye region: per-pair box of the pixels a gaze change alters (fixed eye band used for "
                       f"{fallbacks} of {2 * len(source)} boxes)")
    total = time.time() - t_start
    timing = {**{k: round(v, 3) for k, v in timing.items()}, "total_s": round(total, 3),
              "pairs_per_s": round(len(source) / max(total, 1e-9), 2)}
    return {"per_pair": nest(per_pair), "notices": notices, "timing": timing, "synthetic": synthetic,
            "render_check": render_check, "eye_box_fallbacks": fallbacks}
