"""Summaries and the output files: eval.json (everything, per-pair values included, so that runs evaluated on
the same stored pairs can be compared pair by pair), written atomically (temporary file + rename) like eval.md,
whose tables are eval_markdown.py."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["summarize", "to_lists", "write_json_atomic", "write_text_atomic", "fmt_stat"]


def _stat(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "n": int(len(v))}


def summarize(tree: dict) -> dict:
    """Nested dict of (n,) arrays -> the same nesting with {"mean", "std", "median", "n"} leaves."""
    return {k: summarize(v) if isinstance(v, dict) else _stat(v) for k, v in tree.items()}


def to_lists(tree: dict, *, digits: int = 4) -> dict:
    """Nested dict of arrays -> nested dict of rounded lists (for JSON)."""
    return {k: to_lists(v, digits=digits) if isinstance(v, dict)
            else [round(float(x), digits) if math.isfinite(float(x)) else None for x in np.asarray(v).reshape(-1)]
            for k, v in tree.items()}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o):
    """NaN / inf -> None, recursively (strict JSON)."""
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_text_atomic(path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


_NUMBER_LIST = re.compile(r"\[\s+((?:-?[\d.eE+-]+|null|true|false)(?:,\s+(?:-?[\d.eE+-]+|null|true|false))*)\s+\]")


def write_json_atomic(path, obj) -> Path:
    """Indented JSON, NaN written as null, lists of numbers (or booleans) kept on one line."""
    text = json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=1)
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return write_text_atomic(path, text + "\n")


def fmt_stat(s: dict | None, *, digits: int = 2, spread: bool = True) -> str:
    """{"mean", "std", ...} -> "1.23 ± 0.45" (or "—" when absent)."""
    if not s or s.get("n", 0) == 0 or s.get("mean") is None or not math.isfinite(s["mean"]):
        return "—"
    text = f"{s['mean']:.{digits}f}"
    return f"{text} ± {s['std']:.{digits}f}" if spread and s.get("std") is not None else text
