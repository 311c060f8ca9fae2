"""Image quality against exact targets (synthetic data) and the optional LPIPS / FID.

Exact targets. A synthetic file stores every image's render parameters (`synth_identity`, `synth_session`,
the session row including the image's own sensor-noise seed). Re-rendering the *source's* parameters at
the target angles gives the image the source would have been at those angles, pixel for pixel; PSNR / SSIM
/ L1 against it are exact, and the copy-the-source baseline (the source itself against the same target) is
measured beside every number.

Eye region. For an image rendered at head pose h and gaze g, the eye region is the bounding box of the
pixels that change when only the gaze changes, to a probe gaze on the far side of the eye (same
parameters, same noise, so nothing else changes), padded by S/32 px. It is exact for every head pose,
and derived from the renderer alone. The full and head-only targets take the box at the target head pose,
the gaze-only target the box at the source head pose. When no pixel changes (eyes hidden), the box falls
back to the fixed eye band of the normalized framing (`EYE_BAND`), and the count is reported.

LPIPS (`lpips` package, AlexNet) and FID (`pytorch_fid`, Inception-v3) run only when their packages and
their weights are already on this machine: nothing is downloaded; otherwise they are skipped with a notice.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from regaze.image_metrics import crop_box, l1, psnr_db, ssim

__all__ = ["eye_boxes", "probe_gaze", "whole_image_metrics", "full_and_eye_metrics", "optional_metrics", "EYE_BAND"]

# (top, left, height, width) as fractions of the side: the eye band of an ETH-XGaze-normalized face
# (eyes ~35 mm above the face centre, ~32 mm either side, 140 mm across the patch), generous for head turns.
EYE_BAND = (0.18, 0.10, 0.30, 0.80)
_PROBE_PITCH_RAD = 0.35
_PROBE_YAW_RAD = 0.50
_CHANGED_LEVEL = 3  # uint8 levels: a pixel "changes" above this (renders share the noise, so 0 would do)


def probe_gaze(gaze: np.ndarray) -> np.ndarray:
    """(n, 2) rad -> (n, 2) a gaze on the other side of the eye (pitch and yaw moved toward and past 0)."""
    g = np.asarray(gaze, dtype=np.float64)
    sign = np.where(g >= 0, -1.0, 1.0)
    return np.stack([sign[:, 0] * _PROBE_PITCH_RAD, sign[:, 1] * _PROBE_YAW_RAD], axis=1)


def eye_boxes(render_a: np.ndarray, render_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 (n, S, S, 3) renders that differ only in gaze -> ((n, 4) boxes (top, left, h, w), (n,) bool
    fallback used). Boxes are the padded bounding boxes of the changed pixels."""
    n, s = render_a.shape[:2]
    changed = (np.abs(render_a.astype(np.int16) - render_b.astype(np.int16)).max(-1) > _CHANGED_LEVEL)  # (n, S, S)
    pad = max(1, s // 32)
    boxes = np.empty((n, 4), np.int64)
    fallback = np.zeros(n, bool)
    band = np.round(np.array(EYE_BAND) * s).astype(np.int64)
    for k in range(n):
        rows, cols = np.flatnonzero(changed[k].any(1)), np.flatnonzero(changed[k].any(0))
        if len(rows) == 0:
            boxes[k], fallback[k] = band, True
            continue
        top, bottom = max(0, rows[0] - pad), min(s, rows[-1] + 1 + pad)
        left, right = max(0, cols[0] - pad), min(s, cols[-1] + 1 + pad)
        boxes[k] = (top, left, bottom - top, right - left)
    return boxes, fallback


def whole_image_metrics(output, target_u8: np.ndarray) -> dict[str, np.ndarray]:
    """PSNR (dB), SSIM, L1 of `output` (float (n, 3, S, S) in [-1, 1] or uint8 (n, S, S, 3)) against uint8
    targets (n, S, S, 3) over the whole image -> {name: (n,)}."""
    return {"psnr_db": psnr_db(output, target_u8), "ssim": ssim(output, target_u8), "l1": l1(output, target_u8)}


def full_and_eye_metrics(output, target_u8: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
    """`whole_image_metrics` and the same inside per-image `boxes` (n, 4) (eye_psnr_db, eye_ssim, eye_l1)
    -> {name: (n,)}."""
    out = whole_image_metrics(output, target_u8)
    eye = {"eye_psnr_db": [], "eye_ssim": [], "eye_l1": []}
    for k, box in enumerate(boxes):
        a, b = crop_box(output[k:k + 1], box), crop_box(target_u8[k:k + 1], box)
        eye["eye_psnr_db"].append(psnr_db(a, b)[0])
        eye["eye_ssim"].append(ssim(a, b)[0])
        eye["eye_l1"].append(l1(a, b)[0])
    return {**out, **{k: np.asarray(v) for k, v in eye.items()}}


# ------------------------------------------------------------------------------ optional: LPIPS, FID
def _hub_checkpoint(name: str) -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", name)


class Lpips:
    """LPIPS (Zhang et al. 2018, AlexNet, v0.1) per image pair; inputs float (n, 3, S, S) in [-1, 1]."""

    name = "lpips"
    _BACKBONE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet weights, read from the torch hub cache

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import lpips  # noqa: F401
        except ImportError:
            return "LPIPS skipped: package `lpips` is not installed (pip install lpips)"
        if not os.path.isfile(_hub_checkpoint(cls._BACKBONE)):
            return (f"LPIPS skipped: AlexNet weights not cached at {_hub_checkpoint(cls._BACKBONE)} "
                    f"(nothing is downloaded during evaluation)")
        return None

    def __init__(self, device):
        import lpips

        self.device = device
        self.net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()

    @torch.no_grad()
    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        d = self.net(a.to(self.device).float(), b.to(self.device).float())  # (n, 1, 1, 1)
        return d.flatten().cpu().numpy().astype(np.float64)


class Fid:
    """Fréchet Inception distance between two image sets (pool3 features of pytorch_fid's Inception-v3)."""

    name = "fid"

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            from pytorch_fid.inception import FID_WEIGHTS_URL
        except ImportError:
            return "FID skipped: package `pytorch_fid` is not installed (pip install pytorch-fid)"
        path = _hub_checkpoint(os.path.basename(FID_WEIGHTS_URL))
        if not os.path.isfile(path):
            return f"FID skipped: Inception weights not cached at {path} (nothing is downloaded during evaluation)"
        return None

    def __init__(self, device):
        from pytorch_fid.inception import InceptionV3

        self.device = device
        self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        self.features: dict[str, list[np.ndarray]] = {"output": [], "real": []}

    @torch.no_grad()
    def update(self, which: str, x: torch.Tensor) -> None:
        """Add float (n, 3, S, S) images in [-1, 1] to set `which` ("output" or "real")."""
        f = self.net(((x.float() + 1) / 2).to(self.device))[0]  # (n, 2048, 1, 1)
        self.features[which].append(f.flatten(1).cpu().numpy().astype(np.float64))

    def compute(self) -> float:
        from pytorch_fid.fid_score import calculate_frechet_distance

        a, b = (np.concatenate(self.features[k]) for k in ("output", "real"))
        return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


def optional_metrics(*, device, enabled: bool = True) -> tuple[Lpips | None, Fid | None, list[str]]:
    """(LPIPS or None, FID or None, notices) for what this machine can compute without downloading."""
    notices: list[str] = []
    if not enabled:
        return None, None, ["LPIPS and FID skipped: disabled by the caller"]
    made = []
    for cls in (Lpips, Fid):
        reason = cls.unavailable()
        if reason:
            notices.append(reason)
            made.append(None)
            continue
        try:
            made.append(cls(device))
        except Exception as e:  # a broken optional install must not stop the evaluation
            notices.append(f"{cls.name.upper()} skipped: could not be built ({type(e).__name__}: {e})")
            made.append(None)
    return made[0], made[1], notices
