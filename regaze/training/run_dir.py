"""A training run's directory: resolved config, stats, TensorBoard scalars, image grids, checkpoints.

    RUN_DIR/config.json            the resolved TrainConfig (rewritten on resume: the config in force)
    RUN_DIR/stats.jsonl            one JSON object per log interval / validation
    RUN_DIR/tb/                    TensorBoard scalars and grids (when tensorboard is installed)
    RUN_DIR/grids/step_XXXXXXX.png source | gaze sweep | head sweep, on validation subjects
    RUN_DIR/checkpoints/step_XXXXXXX.pt   the last `keep_last` checkpoints
    RUN_DIR/checkpoints/best.pt    best validation score (validation.py: it includes redirection)
    RUN_DIR/summary.json           why and where training stopped, which step is best.pt and by what score,
                                   the validation subjects (val_split.py)

Training writes it; `regaze.model.pretrained.load_redirector(RUN_DIR)` reads a run's generator back.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

from regaze.checkpoint import check_config_matches, load_checkpoint, save_checkpoint
from regaze.config import config_from_dict
from regaze.errors import RegazeError
from regaze.image_io import save_png, tile, to_u8
from regaze.model.pretrained import checkpoint_step, find_checkpoint

__all__ = ["RunDir", "write_image_grid"]
# Config entries that must agree for a checkpoint to be resumed (shapes and the method itself).
_RESUME_KEYS = ("model", "cross_swap", "identity_swap", "target", "batch_size", "seed")


class RunDir:
    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path)
        self.ckpt_dir = self.path / "checkpoints"
        self._tb = None
        if create:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)

    # -- config
    def start(self, *, config) -> None:
        """A new run: refuse to overwrite an existing one (use --resume or another --out)."""
        if list(self.ckpt_dir.glob("step_*.pt")):
            raise RegazeError(f"{self.path} already holds a run with checkpoints; pass --resume to continue it, or choose another --out")
        self.write_json("config.json", config.to_dict())
        (self.path / "stats.jsonl").write_text("")

    def load_latest(self, *, config) -> dict:
        """The newest checkpoint, checked against `config`; an error when none exists or it does not match."""
        path = find_checkpoint(self.path, which="latest")
        state = load_checkpoint(path, required_keys=("generator", "discriminator", "ema", "opt_g", "opt_d", "config", "step"))
        # A checkpoint written before a config field existed holds no value for it: compare with the field's
        # default filled in (the value that run trained with), so a new switch that keeps its default is no change.
        saved = config_from_dict(type(config), state["config"]).to_dict()
        check_config_matches(saved=saved, current=config.to_dict(), keys=_RESUME_KEYS, source=str(path))
        print(f"resuming from {path} at step {state['step']}", file=sys.stderr)
        return state

    # -- outputs
    def write_json(self, name: str, obj) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
        os.replace(tmp, self.path / name)

    def log(self, stats: dict) -> None:
        with open(self.path / "stats.jsonl", "a") as f:
            f.write(json.dumps(stats, default=_json_default) + "\n")
        tb = self._tensorboard()
        if tb is not None:
            for k, v in stats.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    tb.add_scalar(k, v, stats["step"])
            tb.flush()

    def add_image(self, tag: str, image_u8: np.ndarray, step: int) -> None:
        tb = self._tensorboard()
        if tb is not None:
            tb.add_image(tag, image_u8, step, dataformats="HWC")

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("tensorboard is not installed: scalars go to stats.jsonl only (pip install tensorboard)", file=sys.stderr)
                self._tb = False
                return None
            self._tb = SummaryWriter(str(self.path / "tb"))
        return self._tb or None

    # -- checkpoints
    def save_checkpoint(self, state: dict, *, step: int, best: bool, keep_last: int) -> None:
        save_checkpoint(self.ckpt_dir / f"step_{step:07d}.pt", state)
        if best:
            save_checkpoint(self.ckpt_dir / "best.pt", state)
        kept = sorted(self.ckpt_dir.glob("step_*.pt"), key=checkpoint_step)
        for old in kept[: max(0, len(kept) - keep_last)]:
            old.unlink()


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


SWEEP_DEG = (-30.0, -15.0, 0.0, 15.0, 30.0)


@torch.no_grad()
def write_image_grid(run: RunDir, model, source, dataset, indices: np.ndarray, *, step: int) -> Path:
    """Rows: source | gaze yaw sweep (head kept) | head yaw sweep (gaze kept), on validation images."""
    device = next(model.parameters()).device
    x = source.get(indices).to(device)  # (n, 3, S, S)
    gaze = torch.from_numpy(dataset.gaze[indices].astype(np.float32)).to(device)
    head = torch.from_numpy(dataset.head[indices].astype(np.float32)).to(device)
    columns = [to_u8(x)]
    for which in ("gaze", "head"):
        for yaw_deg in SWEEP_DEG:
            tgt = torch.zeros_like(gaze)
            tgt[:, 1] = math.radians(yaw_deg)
            kw = {"gaze": tgt} if which == "gaze" else {"head": tgt}
            out, _ = model.redirect(x, source_gaze=gaze, source_head=head, **kw)
            columns.append(to_u8(out))
    grid = tile([[col[i] for col in columns] for i in range(len(indices))])
    path = run.path / "grids" / f"step_{step:07d}.png"
    save_png(path, grid)
    run.add_image("grid", grid, step)
    return path
