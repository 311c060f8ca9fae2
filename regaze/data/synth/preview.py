"""Contact sheet of the synthetic faces: rows = subjects (one random session each); columns = a gaze
sweep at a frontal head, then a head sweep with the eyes looking straight ahead of the face."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regaze.data.synth.params import sample_identities, sample_sessions
from regaze.data.synth.render import render

__all__ = ["GAZE_SWEEP_DEG", "HEAD_SWEEP_DEG", "contact_sheet", "save_contact_sheet"]

# (pitch, yaw) degrees; positive pitch looks up, positive yaw looks to the image left (DESIGN §2).
GAZE_SWEEP_DEG = ((0, 30), (0, 15), (0, 0), (0, -15), (0, -30), (20, 0), (-20, 0))
HEAD_SWEEP_DEG = ((0, 40), (0, 20), (0, -20), (0, -40), (25, 0), (-25, 0))


def contact_sheet(*, subjects: int = 6, size: int = 128, seed: int = 0, gap_px: int = 2) -> np.ndarray:
    """-> uint8 (H, W, 3): subjects rows x (gaze sweep + head sweep) columns, a wider gap between sweeps."""
    rng = np.random.default_rng(seed)
    ids = sample_identities(subjects, rng)
    ses = sample_sessions(subjects, rng)
    cols = [((0.0, 0.0), g) for g in GAZE_SWEEP_DEG] + [(h, h) for h in HEAD_SWEEP_DEG]
    n_cols = len(cols)
    head = np.deg2rad(np.array([c[0] for c in cols] * subjects, dtype=np.float64))  # (subjects * cols, 2)
    gaze = np.deg2rad(np.array([c[1] for c in cols] * subjects, dtype=np.float64))
    images = render(identity=np.repeat(ids, n_cols, 0), session=np.repeat(ses, n_cols, 0), head=head,
                    gaze=gaze, size=size)  # (subjects * cols, size, size, 3)
    split_gap = 4 * gap_px
    width = n_cols * size + (n_cols - 1) * gap_px + split_gap
    sheet = np.full((subjects * size + (subjects - 1) * gap_px, width, 3), 255, dtype=np.uint8)
    for r in range(subjects):
        for c in range(n_cols):
            x = c * (size + gap_px) + (split_gap if c >= len(GAZE_SWEEP_DEG) else 0)
            y = r * (size + gap_px)
            sheet[y:y + size, x:x + size] = images[r * n_cols + c]
    return sheet


def save_contact_sheet(path, **kwargs) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(contact_sheet(**kwargs)).save(path)
    return path
