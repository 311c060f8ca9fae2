"""Blur controls for every image-quality table (issue 12): the exact target blurred on purpose.

PSNR, SSIM and L1 reward blur: a blurred average face scores more dB than copying the source on a head-only
change while losing the person's hair, skin and background colours. So each table also scores the exact
target itself blurred by a Gaussian of sigma = 1 px and 2 px (at the evaluated image's resolution), with the
same metrics, whole image and eye box, as reference rows. A model counts as sharp only where it beats the
sigma = 1 px row: below it, the same numbers are reached by a picture that has lost every 1-px detail.

    blurred = gaussian_blur_u8(target_u8, sigma_px=1.0)        # uint8 (n, S, S, 3), the same kind as an image
    rows = blur_control_metrics(target_u8, boxes)              # {"blur_sigma_1px": {metric: (n,)}, ...}
    verdict = beats_blur(model_stats, blur_stats)              # {metric: bool}, from the summaries
    sharpness(summary)                                         # every model row of an evaluation, judged
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from regaze.evaluation.image_quality import full_and_eye_metrics, whole_image_metrics

__all__ = ["BLUR_SIGMAS_PX", "blur_key", "gaussian_blur_u8", "blur_control_metrics", "beats_blur",
           "HIGHER_IS_BETTER", "SHARP_RULE", "sharpness"]

BLUR_SIGMAS_PX = (1.0, 2.0)  # Gaussian sigma of the controls, in pixels of the evaluated image
HIGHER_IS_BETTER = {"psnr_db": True, "ssim": True, "l1": False, "eye_psnr_db": True, "eye_ssim": True, "eye_l1": False}
SHARP_RULE = ("A model counts as sharp only where it beats the exact target blurred by sigma = 1 px "
              "(PSNR and SSIM above that row, L1 below it); PSNR alone rewards blur.")


def blur_key(sigma_px: float) -> str:
    """1.0 -> "blur_sigma_1px" (the row's key in summaries and eval.json)."""
    return f"blur_sigma_{sigma_px:g}px"


def _kernel_1d(sigma_px: float) -> torch.Tensor:
    """Normalised Gaussian taps over +-ceil(3 sigma) px, float64 (2r + 1,)."""
    radius = max(1, math.ceil(3.0 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x ** 2) / (2.0 * sigma_px ** 2))
    return g / g.sum()


def gaussian_blur_u8(images: np.ndarray, *, sigma_px: float) -> np.ndarray:
    """uint8 (n, S, S, 3) -> uint8 (n, S, S, 3) blurred by a separable Gaussian of `sigma_px` pixels
    (reflected borders, so a uniform image stays uniform), rounded back to 8 bits like a saved image."""
    if sigma_px <= 0:
        return images.copy()
    g = _kernel_1d(sigma_px)
    r = (len(g) - 1) // 2
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double()  # (n, 3, S, S)
    c = x.shape[1]
    rows = g.view(1, 1, 1, -1).expand(c, 1, 1, len(g))  # (3, 1, 1, k): along the width
    cols = g.view(1, 1, -1, 1).expand(c, 1, len(g), 1)  # (3, 1, k, 1): along the height
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), rows, groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), cols, groups=c)  # (n, 3, S, S)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def blur_control_metrics(target_u8: np.ndarray, boxes: np.ndarray | None, *,
                         sigmas_px: tuple[float, ...] = BLUR_SIGMAS_PX) -> dict[str, dict[str, np.ndarray]]:
    """The reference rows of one table: for each sigma the exact target (n, S, S, 3) blurred, scored against
    itself with the model rows' metrics -> {blur_key(sigma): {metric: (n,)}}. boxes (n, 4) add the eye-box
    metrics; None scores the whole image only."""
    rows = {}
    for sigma in sigmas_px:
        blurred = gaussian_blur_u8(target_u8, sigma_px=sigma)
        rows[blur_key(sigma)] = (whole_image_metrics(blurred, target_u8) if boxes is None
                                 else full_and_eye_metrics(blurred, target_u8, boxes))
    return rows


def beats_blur(model: dict, blur: dict) -> dict[str, bool | None]:
    """Summaries {metric: {"mean", ...}} of a model row and of the sigma = 1 px row -> {metric: does the model
    beat the control} (None where either is missing)."""
    out: dict[str, bool | None] = {}
    for metric, higher in HIGHER_IS_BETTER.items():
        m, b = (model or {}).get(metric), (blur or {}).get(metric)
        if not m or not b or m.get("mean") is None or b.get("mean") is None:
            continue
        if not (math.isfinite(m["mean"]) and math.isfinite(b["mean"])):
            out[metric] = None
            continue
        out[metric] = bool(m["mean"] > b["mean"]) if higher else bool(m["mean"] < b["mean"])
    return out


def sharpness(summary: dict) -> dict:
    """Summaries of an evaluation (report.summarize) -> {"rule": SHARP_RULE, "rows": {"table/kind/row": {metric:
    beats the sigma = 1 px row}}, "sharp": {"table/kind/row": True when it beats it on every metric}} for the
    model's rows (decoder image and eye composite) of the image-quality and reconstruction tables."""
    control = blur_key(BLUR_SIGMAS_PX[0])
    tables = {f"image_quality/{kind}": node for kind, node in (summary.get("image_quality") or {}).items()}
    if "reconstruction" in summary:
        tables["reconstruction"] = summary["reconstruction"]
    rows = {}
    for table, node in tables.items():
        for row in ("model", "eye_composite"):
            if row in node and control in node:
                verdict = beats_blur(node[row], node[control])
                if verdict:
                    rows[f"{table}/{row}"] = verdict
    return {"rule": SHARP_RULE, "rows": rows,
            "sharp": {k: bool(v) and all(x is True for x in v.values()) for k, v in rows.items()}}
