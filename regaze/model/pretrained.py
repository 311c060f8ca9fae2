"""A trained Redirector from a run directory or a checkpoint file: `load_redirector(RUN_DIR or FILE.pt)` gives the
EMA generator, in eval mode, for evaluation, augmentation, redirection and export.

Checkpoints are plain dicts (regaze/checkpoint.py, loaded with weights_only=True) that training writes as
RUN_DIR/checkpoints/step_XXXXXXX.pt and best.pt (regaze/training/run_dir.py); this file only reads them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from regaze.checkpoint import load_checkpoint
from regaze.config import ModelConfig, config_from_dict
from regaze.errors import RegazeError
from regaze.model.framing import Framing
from regaze.model.redirector import Redirector

__all__ = ["load_redirector", "find_checkpoint", "checkpoint_step"]

STEP_RE = re.compile(r"step_(\d+)\.pt$")


def checkpoint_step(p: Path) -> int:
    """The step in a `step_XXXXXXX.pt` name, -1 for other names."""
    m = STEP_RE.search(p.name)
    return int(m.group(1)) if m else -1


def find_checkpoint(path: str | os.PathLike, *, which: str = "best") -> Path:
    """A checkpoint file itself, or the `best` / `latest` one of a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RegazeError(f"no run directory or checkpoint at {path}")
    ckpt_dir = path / "checkpoints"
    steps = sorted(ckpt_dir.glob("step_*.pt"), key=checkpoint_step)
    if which == "best" and (ckpt_dir / "best.pt").is_file():
        return ckpt_dir / "best.pt"
    if not steps:
        raise RegazeError(f"{path}: no checkpoints in {ckpt_dir} (was training started with --out {path}?)")
    return steps[-1]


def load_redirector(path: str | os.PathLike, *, which: str = "best", device="cpu"):
    """The EMA generator of a run directory (or of one checkpoint file), in eval mode.

    Returns (redirector, info) with info = {"checkpoint": path, "step": int, "config": dict}.
    """
    ckpt = find_checkpoint(path, which=which)
    state = load_checkpoint(ckpt, required_keys=("ema", "config", "step"))
    model_cfg = config_from_dict(ModelConfig, state["config"]["model"])
    model = Redirector(model_cfg)
    try:
        model.load_state_dict(state["ema"])
    except RuntimeError as e:
        raise RegazeError(f"{ckpt}: weights do not fit the model its config describes ({e})") from e
    if "framing" in state:  # the training data's camera (older checkpoints: ETH-XGaze's, the model default)
        model.framing = Framing(**state["framing"])
    model.requires_grad_(False).eval().to(device)
    return model, {"checkpoint": str(ckpt), "step": int(state["step"]), "config": state["config"]}
