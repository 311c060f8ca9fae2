"""A trained model (run directory, checkpoint file or the shipped reference) -> one ONNX file with its provenance.

    info = export_checkpoint("runs/r64", path="redirector.onnx")       # or export_redirector(model, path=...)

The file's metadata_props (JSON strings) say what a runtime needs besides the weights:
    regaze_interface   the inputs and outputs, their shapes and units (onnx_graph.py's docstring in short)
    regaze_framing     {"focal_px", "distance_mm", "image_size"}: the normalized camera of the training data,
                       which places the eye composite's mask and which a photo must be normalized to
    regaze_config      the checkpoint's config (model, loss, training)
    regaze_checkpoint  {"file", "sha256", "step", "reference", "trained_checkpoint_sha256"}: the file exported
                       (sha256: regaze.checkpoint.file_sha256) and, for a slim reference file, the training
                       checkpoint it was cut from
    regaze_version     the regaze that wrote it
"""
from __future__ import annotations

import os
from pathlib import Path

from regaze import __version__
from regaze.checkpoint import file_sha256, load_checkpoint
from regaze.errors import RegazeError
from regaze.export.onnx_graph import (DEFAULT_OPSET, INPUT_NAMES, OUTPUT_NAMES, check_opset, onnx_bytes, require_onnx,
                                      write_onnx)
from regaze.model.pretrained import find_checkpoint, is_reference, load_redirector
from regaze.model.redirector import Redirector

__all__ = ["export_redirector", "export_checkpoint", "interface_metadata"]


def interface_metadata(*, image_size: int) -> dict:
    """The graph's inputs and outputs: name -> shape and meaning (stored as regaze_interface)."""
    s = image_size
    angle = "(pitch, yaw) radians"
    inputs = {"images": [["batch", 3, s, s], "RGB in [-1, 1] (uint8 / 127.5 - 1), NCHW"],
              "source_gaze": [["batch", 2], f"current gaze, {angle}"],
              "source_head": [["batch", 2], f"current head pose, {angle}"],
              "target_gaze": [["batch", 2], f"gaze to render, {angle}"],
              "target_head": [["batch", 2], f"head pose to render, {angle}"],
              "change_gaze": [["batch", 1], "1 = rotate gaze to target_gaze, 0 = keep it"],
              "change_head": [["batch", 1], "1 = rotate head to target_head, 0 = keep it"],
              "estimate_source": [["batch", 2], "columns (gaze, head): 1 = use gaze_est / head_est as the source"]}
    outputs = {"decoded": [["batch", 3, s, s], "the decoder's image in [-1, 1] (redirect compose='decode')"],
               "eyes": [["batch", 3, s, s], "eye composite where change_gaze = 1, else decoded (compose='eyes')"],
               "gaze_est": [["batch", 2], f"estimated gaze of the input, {angle}"],
               "head_est": [["batch", 2], f"estimated head pose of the input, {angle}"]}
    assert tuple(inputs) == INPUT_NAMES and tuple(outputs) == OUTPUT_NAMES
    return {"inputs": inputs, "outputs": outputs, "dtype": "float32", "switch_threshold": 0.5,
            "compose_auto": "eyes where change_gaze = 1 and change_head = 0, else decoded"}


def export_redirector(redirector: Redirector, *, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                      config: dict | None = None, checkpoint: dict | None = None) -> dict:
    """Write `redirector` as one ONNX graph to `path` (atomically). config / checkpoint: the provenance to
    record (regaze_config, regaze_checkpoint; the model's own ModelConfig when config is None).
    Returns {"path", "bytes", "opset", "metadata"}."""
    s = redirector.config.image_size
    metadata = {
        "regaze_interface": interface_metadata(image_size=s),
        "regaze_framing": {"focal_px": redirector.framing.focal_px, "distance_mm": redirector.framing.distance_mm,
                           "image_size": s},
        "regaze_config": config if config is not None else {"model": redirector.config.to_dict()},
        "regaze_checkpoint": checkpoint,
        "regaze_version": __version__,
    }
    _check_target(Path(path))  # before the export's seconds, not after
    data = onnx_bytes(redirector, opset=opset, metadata=metadata)
    out = write_onnx(path, data)
    return {"path": str(out), "bytes": len(data), "opset": opset, "metadata": metadata}


def export_checkpoint(run: str | os.PathLike, *, path: str | os.PathLike, which: str = "best",
                      opset: int = DEFAULT_OPSET) -> tuple[dict, Redirector]:
    """Export the EMA generator of a run directory or checkpoint file (regaze.model.pretrained.load_redirector)
    to `path`. Returns (export_redirector's dict + "checkpoint", "step", the Redirector exported)."""
    run = Path(run)
    if run.is_dir() and not (run / "checkpoints").is_dir():
        found = sorted(p.name for p in run.iterdir())[:8]
        raise RegazeError(f"{run}: not a regaze run directory (expected checkpoints/ written by `regaze train --out "
                          f"{run}`) nor a checkpoint file; found {found or 'nothing'}")
    require_onnx("onnx")  # every cheap check before the model loads
    check_opset(opset)
    _check_target(Path(path))
    ckpt = find_checkpoint(run, which=which)
    model, info = load_redirector(ckpt)
    state = load_checkpoint(ckpt)  # the slim reference file records the training checkpoint it came from
    checkpoint = {"file": ckpt.name, "sha256": file_sha256(ckpt), "step": info["step"], "reference": is_reference(ckpt),
                  "trained_checkpoint_sha256": state.get("source_checkpoint_sha256")}
    result = export_redirector(model, path=path, opset=opset, config=info["config"], checkpoint=checkpoint)
    return {**result, "checkpoint": str(ckpt), "step": info["step"]}, model


def _check_target(path: Path) -> None:
    """A RegazeError now when `path` cannot become a file: a directory, or under something that is not one."""
    if path.is_dir():
        raise RegazeError(f"{path} is a directory; give the ONNX file to write, e.g. {path / 'redirector.onnx'}")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise RegazeError(f"cannot write {path}: {parent} is a file, not a directory")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise RegazeError(f"cannot write {path}: no write permission in {parent}")
