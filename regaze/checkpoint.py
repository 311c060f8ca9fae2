"""Atomic checkpoint writing and safe loading (STYLE 10).

A checkpoint is a plain dict of state_dicts, plain config dicts and numbers; it is written to a temporary
file in the same directory, fsynced, then renamed over the destination, so a process killed mid-save leaves
the previous file intact. Loading uses `weights_only=True`; a missing file or a config that does not match
is a clear `RegazeError`, never a silent restart.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from regaze.errors import RegazeError

__all__ = ["save_checkpoint", "load_checkpoint", "file_sha256", "check_config_matches"]


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write `state` to `path` atomically (temp file + fsync + rename). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu", required_keys: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint written by `save_checkpoint` with weights_only=True.

    Raises RegazeError when the file is missing, unreadable, or lacks one of `required_keys`.
    """
    path = Path(path)
    if not path.is_file():
        raise RegazeError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise RegazeError(f"{path}: not a readable regaze checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise RegazeError(f"{path}: expected a checkpoint dict, found {type(state).__name__}")
    missing = [k for k in required_keys if k not in state]
    if missing:
        raise RegazeError(f"{path}: checkpoint lacks keys {missing}; found {sorted(state)}")
    return state


def check_config_matches(*, saved: dict, current: dict, keys: tuple[str, ...], source: str) -> None:
    """Raise RegazeError naming every differing entry among `keys` of two config dicts."""
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs current {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]
    if diffs:
        raise RegazeError(f"{source}: checkpoint was made with another configuration:\n  " + "\n  ".join(diffs))


def file_sha256(path: str | os.PathLike, *, length: int = 16) -> str:
    """Short content hash of a file (provenance of generated samples)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]
