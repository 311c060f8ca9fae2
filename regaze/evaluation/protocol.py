"""`regaze evaluate`: the redirection evaluation of a trained model (DESIGN §4), top to bottom.

    result = evaluate_run(run="runs/x", data="synth64.h5", estimator="runs/estimator", n_pairs=500)
    # -> writes runs/x/eval.json and runs/x/eval.md; returns the same dict

`evaluate_model(model, ...)` is the same with any object that has `redirect(images, gaze=, head=,
source_gaze=, source_head=, compose=)`, e.g. the baselines of regaze/evaluation/baselines.py, which `run` also names
as "baseline:copy" and "baseline:oracle". The measurements are described in regaze/evaluation/redirection.py;
the downstream experiment is regaze.evaluation.downstream.downstream_experiment.
"""
from __future__ import annotations

import datetime
import sys
from pathlib import Path

import numpy as np

from regaze.errors import RegazeError
from regaze.evaluation.estimator.store import DEFAULT_MAX_VAL_ERROR_DEG, load_estimator
from regaze.evaluation.baselines import CopySource, SyntheticOracle
from regaze.evaluation.blur_controls import sharpness
from regaze.evaluation.identity import identity_summary
from regaze.evaluation.eval_pairs import held_out_indices, in_range_targets, sample_pairs
from regaze.evaluation.redirection import evaluate_pairs
from regaze.evaluation.eval_markdown import render_markdown
from regaze.evaluation.report import summarize, to_lists, write_json_atomic, write_text_atomic

__all__ = ["evaluate_run", "evaluate_model", "load_model", "write_report", "BASELINES", "EVAL_FORMAT_VERSION"]

EVAL_FORMAT_VERSION = 2  # 2: decoder-image rows, blur controls, identity controls, in-range targets (issue 12)
BASELINES = ("baseline:copy", "baseline:oracle")


def load_model(run, *, dataset, held_out: np.ndarray, which: str = "best", device="cpu", renderer=None):
    """`run` -> (model, info): an object with `redirect` is used as is; "baseline:copy" / "baseline:oracle"
    build the baselines; anything else is a run directory or checkpoint for `load_redirector`."""
    if hasattr(run, "redirect"):
        return run, {"name": type(run).__name__, "step": None}
    if str(run) == "baseline:copy":
        return CopySource(), {"name": "baseline:copy", "step": None}
    if str(run) == "baseline:oracle":
        return SyntheticOracle(dataset, indices=held_out, renderer=renderer), {"name": "baseline:oracle", "step": None}
    if str(run).startswith("baseline:"):
        raise RegazeError(f"unknown baseline '{run}'; expected one of {BASELINES}")
    from regaze.model.pretrained import load_redirector

    model, info = load_redirector(run, which=which, device=device)
    size = int(getattr(model.config, "image_size", dataset.size))
    if size != dataset.size:
        raise RegazeError(f"{info['checkpoint']}: the model works on {size}² images but {dataset.path} holds "
                          f"{dataset.size}² images")
    return model, {"name": str(run), "checkpoint": info["checkpoint"], "step": info["step"],
                   "guide_estimator": (info.get("config") or {}).get("guide_estimator") or None}


def evaluate_model(model, *, dataset, estimator, estimator_info: dict | None = None, model_info: dict | None = None,
                   n_pairs: int = 500, seed: int = 0, split: str = "auto", pair_rule: str = "auto",
                   held_out: tuple[np.ndarray, str] | None = None, batch_size: int = 32, device="cpu",
                   renderer=None, optional: bool = True, progress: bool = True) -> dict:
    """Evaluate `model` on seeded pairs of held-out subjects of `dataset` -> the result dict of eval.json
    (keys: model, data, estimator, pairs, summary, sharpness, identity, notices, timing, per_pair, ...)."""
    idx, split_used = held_out if held_out is not None else held_out_indices(dataset, split=split)
    pairs = sample_pairs(subject=dataset.subject, session=dataset.session, indices=idx, n_pairs=n_pairs,
                         seed=seed, rule=pair_rule, gaze=dataset.gaze, head=dataset.head)
    pairs.update(in_range_targets(gaze=dataset.gaze, head=dataset.head, source=pairs["source"], seed=seed))
    raw = evaluate_pairs(model, dataset=dataset, estimator=estimator, pairs=pairs, batch_size=batch_size,
                         device=device, renderer=renderer, optional=optional, progress=progress)
    per_pair = raw["per_pair"]
    summary = summarize(per_pair)
    est_info = dict(estimator_info or {"checkpoint": None, "val": None, "untrained": False, "flag": None})
    seen = set(est_info.get("train_subjects") or []) & {int(s) for s in np.unique(dataset.subject[idx])}
    seen = _same_people(dataset, seen, est_info.get("data"))
    est_info["held_out_subjects_seen_in_training"] = len(seen)
    notices = list(raw["notices"])
    if est_info.get("untrained"):
        notices.insert(0, f"ESTIMATOR FLAGGED: it {est_info['flag']}; the angles are meaningless")
    return {
        "eval_format_version": EVAL_FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model_info or {"name": type(model).__name__, "step": None},
        "data": {"path": str(dataset.path), "size": dataset.size, "split": split_used,
                 "n_held_out_images": int(len(idx)), "synthetic": raw["synthetic"]},
        "estimator": {k: v for k, v in est_info.items() if k != "train_subjects"},
        "pairs": {"n": int(n_pairs), "seed": pairs["seed"], "rule": pairs["rule"], "n_subjects": pairs["n_subjects"],
                  "source": pairs["source"].tolist(), "target": pairs["target"].tolist(),
                  "other": None if pairs["other"] is None else pairs["other"].tolist(),
                  "eye_range_deg": pairs["eye_range_deg"],
                  "gaze_only_gaze": np.round(pairs["gaze_only_gaze"].astype(np.float64), 5).tolist(),
                  "gaze_only_feasible": pairs["gaze_only_feasible"].tolist(),
                  "head_only_head": np.round(pairs["head_only_head"].astype(np.float64), 5).tolist(),
                  "head_only_feasible": pairs["head_only_feasible"].tolist()},
        "summary": summary,
        "sharpness": sharpness(summary),
        "identity": identity_summary(per_pair.get("identity", {})),
        "render_check": raw["render_check"],
        "notices": notices,
        "timing": raw["timing"],
        "per_pair": to_lists(per_pair),
    }


def _same_people(dataset, subjects: set[int], estimator_data) -> set[int]:
    """The ids among `subjects` that name the same person in the estimator's training file. Synthetic files
    store every image's identity parameters, so there the faces are compared (two files rendered from other
    seeds use the same ids for other faces); otherwise, or when that file is gone, an equal id counts as the
    same person, so that the warning errs on the safe side."""
    key = "synth_identity"
    if not subjects or not estimator_data or key not in dataset.array_keys:
        return subjects
    from regaze.data.dataset import open_dataset

    try:
        other = open_dataset(estimator_data)
    except (RegazeError, OSError):
        return subjects

    def first_face(ds, s: int):  # identity parameters of subject s's first image, or None
        rows = np.flatnonzero(ds.subject == s)
        return ds.read_array(key, rows[:1])[0] if len(rows) else None

    with other:
        if key not in other.array_keys:
            return subjects
        same = set()
        for s in subjects:
            a, b = first_face(dataset, s), first_face(other, s)
            if a is not None and b is not None and a.shape == b.shape and np.allclose(a, b):
                same.add(s)
    return same


def write_report(result: dict, out_dir) -> tuple[Path, Path]:
    """Write OUT_DIR/eval.json and OUT_DIR/eval.md atomically -> their paths."""
    out_dir = Path(out_dir)
    return (write_json_atomic(out_dir / "eval.json", result),
            write_text_atomic(out_dir / "eval.md", render_markdown(result)))


def evaluate_run(*, run, data, estimator, out=None, n_pairs: int = 500, seed: int = 0, split: str = "auto",
                 pair_rule: str = "auto", which: str = "best", batch_size: int = 32, device="cpu",
                 allow_untrained_estimator: bool = False, max_val_error_deg: float = DEFAULT_MAX_VAL_ERROR_DEG,
                 optional: bool = True, renderer=None, progress: bool = True) -> dict:
    """Load the model of `run` (a run directory, a checkpoint, a baseline name or a model object), the data
    and the estimator, evaluate, and write eval.json / eval.md to `out` (default: the run directory)."""
    from regaze.data.dataset import open_dataset

    dataset = open_dataset(data)
    if not dataset.has_gaze_labels:
        raise RegazeError(f"{data}: has no gaze labels; evaluation needs labelled held-out images")
    est, est_info = load_estimator(estimator, max_val_error_deg=max_val_error_deg,
                                   allow_untrained=allow_untrained_estimator, image_size=dataset.size, device=device)
    if est_info["untrained"]:
        print(f"WARNING: estimator {est_info['checkpoint']} {est_info['flag']}; results will be flagged", file=sys.stderr)
    held_out = held_out_indices(dataset, split=split)
    model, model_info = load_model(run, dataset=dataset, held_out=held_out[0], which=which, device=device,
                                   renderer=renderer)
    guide = model_info.get("guide_estimator")
    if guide and Path(guide).resolve() in (Path(estimator).resolve(), Path(est_info["checkpoint"]).resolve(),
                                           Path(est_info["checkpoint"]).resolve().parent):
        raise RegazeError(f"{estimator} is the training-time estimator of this run (its guide_estimator): an estimator "
                          f"that was in a loss cannot measure the result; evaluate with an independent one")
    if out is None:
        if isinstance(run, (str, Path)) and Path(run).is_dir():
            out = Path(run)
        else:
            raise RegazeError("pass --out DIR: the model is not a run directory to write eval.json into")
    result = evaluate_model(model, dataset=dataset, estimator=est, estimator_info=est_info, model_info=model_info,
                            n_pairs=n_pairs, seed=seed, held_out=held_out, pair_rule=pair_rule,
                            batch_size=batch_size, device=device, renderer=renderer, optional=optional,
                            progress=progress)
    json_path, md_path = write_report(result, out)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return result
