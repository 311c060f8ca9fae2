"""The demo report's image grids: for each kind of change, a few held-out images side by side with the exact
target and its sigma = 1 px blur, the control a sharp model must beat (evaluation/blur_controls.py).

    names = write_grids(folder, scores=scores, prefix="")   # {"head": "head_only.png", "gaze": ..., "both": ...}

Columns (GRID_COLUMNS): source | redirected | exact target | exact target blurred by 1 px; the gaze-only grid
also shows the decoder's whole image after the redirected (eyes-pasted) output.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regaze.evaluation.blur_controls import BLUR_SIGMAS_PX, gaussian_blur_u8
from regaze.image_io import save_png, tile

__all__ = ["GRIDS", "GRID_COLUMNS", "GRID_IMAGES", "comparison_grid", "write_grids"]

GRID_IMAGES = 8  # rows (images) per grid
CONTROL_SIGMA_PX = BLUR_SIGMAS_PX[0]
GRIDS = {  # grid key -> (file name, score rows whose outputs are the columns after the source)
    "head": ("head_only.png", ("head",)),
    "gaze": ("gaze_only.png", ("gaze", "gaze_decoder")),
    "both": ("both.png", ("both",)),
}
GRID_COLUMNS = {
    "head": ("source", "redirected", "exact target", f"exact target blurred {CONTROL_SIGMA_PX:g} px"),
    "gaze": ("source", "redirected (the decoder's eyes pasted into the source)", "the decoder's whole image",
             "exact target", f"exact target blurred {CONTROL_SIGMA_PX:g} px"),
    "both": ("source", "redirected", "exact target", f"exact target blurred {CONTROL_SIGMA_PX:g} px"),
}


def comparison_grid(*, source: np.ndarray, outputs: list[np.ndarray], target: np.ndarray,
                    n: int = GRID_IMAGES) -> np.ndarray:
    """source, each of outputs and target (m, S, S, 3) uint8 of the same images -> one grid (H, W, 3) uint8
    of min(n, m) rows: source | outputs... | target | target blurred by sigma = 1 px."""
    n = min(n, len(source))
    blurred = gaussian_blur_u8(target[:n], sigma_px=CONTROL_SIGMA_PX)  # (n, S, S, 3)
    return tile([[source[i], *(o[i] for o in outputs), target[i], blurred[i]] for i in range(n)])


def write_grids(folder: Path, *, scores: dict, prefix: str = "") -> dict[str, str]:
    """Write one PNG per GRIDS entry into `folder` from exact_redirection_scores results `scores` {row key:
    scores} (rows of one grid were drawn with the same seed, so they hold the same images) -> {grid key: file
    name}; `prefix` names another model's grids apart (e.g. "reference_")."""
    names = {}
    for key, (name, rows) in GRIDS.items():
        first = scores[rows[0]]
        if not len(first["indices"]):
            continue
        save_png(Path(folder) / f"{prefix}{name}", comparison_grid(
            source=first["source"], outputs=[scores[r]["output"] for r in rows], target=first["target"]))
        names[key] = f"{prefix}{name}"
    return names
