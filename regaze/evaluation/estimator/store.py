"""The independent estimator's checkpoints: DIR/estimator.pt (atomic, weights_only) and a readable
DIR/estimator.json.

A checkpoint records the validation error measured on held-out subjects at the end of training;
`load_estimator` refuses a checkpoint without that record, or whose error exceeds `max_val_error_deg`,
unless `allow_untrained=True` (then `info["untrained"]` flags it), so random weights cannot produce
evaluation numbers unnoticed.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
from dataclasses import asdict
from pathlib import Path

from regaze.checkpoint import load_checkpoint, save_checkpoint
from regaze.config import config_from_dict
from regaze.errors import RegazeError
from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator

__all__ = ["save_estimator", "load_estimator", "load_guide_estimator", "CHECKPOINT_NAME", "DEFAULT_MAX_VAL_ERROR_DEG"]

CHECKPOINT_NAME = "estimator.pt"
_FORMAT = "regaze-estimator"
_FORMAT_VERSION = 3  # 3: eye crops placed by the head pose; 2: whole face only; 1: camera-frame gaze outputs
DEFAULT_MAX_VAL_ERROR_DEG = 10.0  # a trained estimator on normalized faces is far below this; chance is ~20-40°


def save_estimator(out_dir, *, model: GazeHeadEstimator, record: dict | None, data: str | None = None) -> Path:
    """Write OUT_DIR/estimator.pt (atomic) and a readable OUT_DIR/estimator.json. `record` None = no
    validation (such a checkpoint is refused by `load_estimator` unless allow_untrained)."""
    out_dir = Path(out_dir)
    record = dict(record or {})
    state = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "config": asdict(model.cfg),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "val": record.get("val"), "record": json.loads(json.dumps(record, default=float)),
             "data": None if data is None else str(data)}
    path = save_checkpoint(out_dir / CHECKPOINT_NAME, state)
    summary = {"checkpoint": str(path), "data": state["data"], "config": state["config"], "val": state["val"],
               **{k: v for k, v in state["record"].items() if k != "val"}}
    tmp = out_dir / ".estimator.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out_dir / "estimator.json")
    return path


def load_estimator(path, *, max_val_error_deg: float = DEFAULT_MAX_VAL_ERROR_DEG, allow_untrained: bool = False,
                   image_size: int | None = None, device="cpu") -> tuple[GazeHeadEstimator, dict]:
    """Load DIR/estimator.pt (or the file itself), in eval mode.

    RegazeError when the file is missing or not an estimator checkpoint, when its weights do not fit its
    config, when `image_size` is given and differs, and, unless `allow_untrained`, when it records no
    validation error or one above `max_val_error_deg` (gaze or head). Returns (model, info) with info =
    {"checkpoint", "val", "config", "data", "train_subjects", "untrained": bool, "flag": str | None}.
    """
    path = Path(path)
    ckpt = path / CHECKPOINT_NAME if path.is_dir() else path
    if not ckpt.exists():
        raise RegazeError(f"no estimator checkpoint at {ckpt}; train one with "
                          f"`regaze estimator train --data FILE --out {path}`")
    state = load_checkpoint(ckpt, required_keys=("format", "config", "model"))
    if state.get("format") != _FORMAT:
        raise RegazeError(f"{ckpt}: not an estimator checkpoint (format {state.get('format')!r}, "
                          f"expected {_FORMAT!r}); is it a redirector run?")
    version = int(state.get("format_version", 0))
    if version > _FORMAT_VERSION:
        raise RegazeError(f"{ckpt}: estimator format version {version} is newer than this "
                          f"regaze reads ({_FORMAT_VERSION}); upgrade regaze")
    if version < _FORMAT_VERSION:
        what = "predicts camera-frame gaze" if version < 2 else "reads the whole face only (no eye crops)"
        raise RegazeError(f"{ckpt}: estimator format version {version} {what}; this regaze reads version "
                          f"{_FORMAT_VERSION} (eye crops placed by the head pose, head-relative gaze); retrain it "
                          f"with `regaze estimator train`")
    cfg = config_from_dict(EstimatorConfig, state["config"])
    if image_size is not None and cfg.image_size != image_size:
        raise RegazeError(f"{ckpt}: estimator was trained on {cfg.image_size}² images but the data are "
                          f"{image_size}²; train an estimator at {image_size}²")
    model = GazeHeadEstimator(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise RegazeError(f"{ckpt}: weights do not fit the estimator its config describes ({e})") from e
    model.requires_grad_(False).eval().to(device)

    val = state.get("val")
    flag = None
    if not val or "gaze_err_deg" not in val or "head_err_deg" not in val:
        flag = "records no validation error (untrained or unvalidated weights)"
    else:
        worst = max(float(val["gaze_err_deg"]), float(val["head_err_deg"]))
        if not math.isfinite(worst) or worst > max_val_error_deg:
            flag = (f"validation error gaze {val['gaze_err_deg']:.2f}°, head {val['head_err_deg']:.2f}° exceeds "
                    f"max_val_error_deg={max_val_error_deg:g}° (untrained or failed training)")
    if flag is not None and not allow_untrained:
        raise RegazeError(f"{ckpt}: refusing this estimator: it {flag}. Train it longer, or pass "
                          f"allow_untrained=True (--allow-untrained-estimator) to evaluate anyway with flagged numbers")
    record = state.get("record") or {}
    info = {"checkpoint": str(ckpt), "val": val, "config": asdict(cfg), "data": state.get("data"),
            "train_subjects": record.get("train_subjects", []), "untrained": flag is not None, "flag": flag}
    return model, info


def load_guide_estimator(path, *, data, image_size: int, device="cpu") -> tuple[GazeHeadEstimator, dict]:
    """The frozen *training-time* estimator of loss.guide (regaze/training/losses.py redirection_loss).

    An estimator trained with `regaze estimator train --data DATA` on DATA's training subjects: it may read
    the training images, so it must never have seen a subject that the redirector's validation or test use.
    RegazeError when its recorded training subjects include one of DATA's val / test subjects, or when it is
    not validated (load_estimator). Keep it apart from the evaluation estimator (`regaze evaluate --estimator`),
    which must never enter a loss: `regaze evaluate` refuses a run whose guide is its estimator."""
    from regaze.data.dataset import open_dataset

    model, info = load_estimator(path, image_size=image_size, device=device)
    same_file = info.get("data") is not None and Path(info["data"]).resolve() == Path(data).resolve()
    seen = {int(s) for s in info.get("train_subjects") or []} if same_file else set()  # ids of another file name others
    with open_dataset(data) as dataset:
        held_out = set()
        for split in ("val", "test"):
            try:
                held_out |= {int(s) for s in np.unique(dataset.subject[dataset.split_indices(split)])}
            except (KeyError, RegazeError):  # a file without that split
                pass
    overlap = sorted(seen & held_out)
    if overlap:
        raise RegazeError(f"{info['checkpoint']}: this estimator was trained on subjects {overlap[:10]} that {data} holds out "
                          f"for validation / test; a training-time estimator may see the training subjects only "
                          f"(train it with `regaze estimator train --data {data}`, which uses the train split)")
    return model, info
