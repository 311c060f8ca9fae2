"""Running an exported graph with ONNX Runtime, reading its metadata, and its parity with PyTorch eager.

The parity check feeds the same random batch (images in [-1, 1], angles within +-0.5 rad, the switches in
every combination: onnx_graph.example_inputs) to ONNX Runtime and to `Redirector.redirect`, the user API, one
image at a time with that image's switches (gaze / head None where it is kept, source None where the graph
estimates it), and compares:
  max |onnx - eager| on the [-1, 1] outputs (decoded, eyes) and on the estimates (rad): <= MAX_ABS_DIFF;
  uint8 images (round((x + 1) * 127.5), clipped): the share of values within one level: >= MIN_WITHIN_ONE_LEVEL.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from regaze.errors import RegazeError
from regaze.export.onnx_graph import INPUT_NAMES, OUTPUT_NAMES, example_inputs, require_onnx
from regaze.model.redirector import Redirector

__all__ = ["onnx_session", "run_onnx", "read_metadata", "parity_report", "to_uint8", "MAX_ABS_DIFF",
           "MIN_WITHIN_ONE_LEVEL", "IMAGE_OUTPUTS"]

MAX_ABS_DIFF = 2e-3  # [-1, 1] image units (a quarter of one uint8 level) and radians
MIN_WITHIN_ONE_LEVEL = 0.999  # share of uint8 values that may differ by at most one level
IMAGE_OUTPUTS = ("decoded", "eyes")
SHARES = ("uint8_within_one_level", "uint8_identical")  # figures where the smallest is the worst


def onnx_session(model: str | os.PathLike | bytes, *, threads: int = 1):
    """An ONNX Runtime CPU session of a graph file (or its bytes), with `threads` intra-op threads and one
    inter-op thread."""
    ort = require_onnx("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else os.fspath(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for missing, truncated or foreign files
        raise RegazeError(f"{source if not isinstance(source, bytes) else 'graph'}: not a loadable ONNX model "
                          f"({type(e).__name__}: {e})") from e


def run_onnx(session, inputs: dict) -> dict:
    """inputs: INPUT_NAMES -> arrays or tensors (float32) -> OUTPUT_NAMES -> float32 NumPy arrays."""
    feed = {n: np.ascontiguousarray(np.asarray(inputs[n].numpy() if isinstance(inputs[n], torch.Tensor) else inputs[n],
                                               dtype=np.float32)) for n in INPUT_NAMES}
    return dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feed)))


def read_metadata(path: str | os.PathLike) -> dict:
    """The graph's metadata_props, each value parsed from JSON (a value that is not JSON stays a string)."""
    session = onnx_session(path)
    out = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] float images -> uint8, as Redirector.redirect writes them: round((clip(x, -1, 1) + 1) * 127.5)."""
    return np.round((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


@torch.no_grad()
def _eager_outputs(redirector: Redirector, inputs: dict) -> dict:
    """What Redirector.redirect gives for each row of `inputs` under that row's switches -> OUTPUT_NAMES ->
    NumPy arrays."""
    rows = {n: [] for n in OUTPUT_NAMES}
    for i in range(inputs["images"].shape[0]):
        row = {n: v[i:i + 1] for n, v in inputs.items()}  # (1, ...)
        use_est = row["estimate_source"][0] > 0.5  # (2,) gaze, head
        kw = dict(gaze=row["target_gaze"] if row["change_gaze"][0, 0] > 0.5 else None,
                  head=row["target_head"] if row["change_head"][0, 0] > 0.5 else None,
                  source_gaze=None if use_est[0] else row["source_gaze"],
                  source_head=None if use_est[1] else row["source_head"])
        rows["decoded"].append(redirector.redirect(row["images"], compose="decode", **kw)[0])
        rows["eyes"].append(redirector.redirect(row["images"], compose="eyes", **kw)[0])
        feats = redirector.encode(row["images"])
        rows["gaze_est"].append(feats.gaze_est.float())
        rows["head_est"].append(feats.head_est.float())
    return {n: torch.cat(v).float().numpy() for n, v in rows.items()}


def _compare(onnx_out: dict, eager_out: dict) -> dict:
    report = {}
    for name in OUTPUT_NAMES:
        a, b = onnx_out[name], eager_out[name]
        if a.shape != b.shape:
            raise RegazeError(f"the graph's {name} has shape {a.shape}; PyTorch gives {b.shape}")
        entry = {"max_abs_diff": float(np.abs(a - b).max())}
        if name in IMAGE_OUTPUTS:
            levels = np.abs(to_uint8(a).astype(np.int16) - to_uint8(b).astype(np.int16))
            entry.update(uint8_within_one_level=float((levels <= 1).mean()), uint8_max_level_diff=int(levels.max()),
                         uint8_identical=float((levels == 0).mean()))
        report[name] = entry
    return report


def parity_report(session, redirector: Redirector, *, batch_sizes: tuple[int, ...] = (1, 5), seed: int = 0,
                  max_angle_rad: float = 0.5) -> dict:
    """ONNX Runtime (`session`, a graph of `redirector`) against Redirector.redirect on random batches of each
    size. Returns {"batches": {B: {output: figures}}, "worst": {output: figures}, "passed": bool, "bounds"}."""
    if not isinstance(redirector, Redirector):
        raise RegazeError(f"parity needs the Redirector the graph came from; found {type(redirector).__name__}")
    redirector = redirector.eval()
    batches = {}
    for i, b in enumerate(batch_sizes):
        inputs = example_inputs(batch_size=b, image_size=redirector.config.image_size, seed=seed + i,
                                max_angle_rad=max_angle_rad)
        batches[str(b)] = _compare(run_onnx(session, inputs), _eager_outputs(redirector, inputs))
    worst = {}
    for name in OUTPUT_NAMES:
        entries = [batch[name] for batch in batches.values()]
        worst[name] = {k: (min if k in SHARES else max)(e[k] for e in entries) for k in entries[0]}
    passed = all(w["max_abs_diff"] <= MAX_ABS_DIFF for w in worst.values()) and all(
        worst[n]["uint8_within_one_level"] >= MIN_WITHIN_ONE_LEVEL for n in IMAGE_OUTPUTS)
    return {"batches": batches, "worst": worst, "passed": passed,
            "bounds": {"max_abs_diff": MAX_ABS_DIFF, "uint8_within_one_level": MIN_WITHIN_ONE_LEVEL}}
