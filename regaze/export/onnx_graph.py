"""The Redirector as one ONNX graph: encode -> rotate the gaze / head features -> decode -> eye composite.

Graph interface (B is dynamic, S the model's image size; angles are (pitch, yaw) radians, float32 everywhere):

    inputs   images          (B, 3, S, S)  RGB in [-1, 1] (uint8 x -> x / 127.5 - 1), NCHW
             source_gaze     (B, 2)        the images' current gaze (ignored where estimate_source[:, 0] = 1)
             source_head     (B, 2)        the images' current head pose (ignored where estimate_source[:, 1] = 1)
             target_gaze     (B, 2)        the gaze to render (ignored where change_gaze = 0)
             target_head     (B, 2)        the head pose to render (ignored where change_head = 0)
             change_gaze     (B, 1)        1 = rotate gaze to target_gaze; 0 = keep it (redirect(gaze=None))
             change_head     (B, 1)        1 = rotate the head to target_head; 0 = keep it (redirect(head=None))
             estimate_source (B, 2)        per column (gaze, head): 1 = start from the graph's own estimate
                                           (gaze_est / head_est, as redirect() with source_* = None), 0 = the input
    outputs  decoded         (B, 3, S, S)  the decoder's image, = Redirector.redirect(compose="decode")
             eyes            (B, 3, S, S)  = redirect(compose="eyes"): where change_gaze = 1 the decoder's eye
                                           regions pasted into the input with the soft mask of framing.eye_mask
                                           (placed by the source head pose); elsewhere `decoded`
             gaze_est        (B, 2)        the auxiliary estimators' angles of the input images (m~g, m~h)
             head_est        (B, 2)

A switch is a float compared with 0.5, so a runtime can pass 0 / 1. Where a feature is kept its block is
passed through bit for bit, not rotated by R(s) R(s)^T. compose="auto" of redirect() is a runtime choice:
`eyes` for the rows whose gaze changes and whose head does not, `decoded` for the others. Outputs are not
clamped: uint8 = round((clip(x, -1, 1) + 1) * 127.5), as redirect() does for NumPy images.

The exporter is torch.onnx's TorchScript-based one (dynamo=False): it needs nothing beyond torch and onnx,
and it traces this fixed-shape graph exactly (no data-dependent control flow). Its deprecation notice and
the tracer's constant notices are silenced around the call only.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from regaze.errors import RegazeError
from regaze.model.framing import eye_mask
from regaze.model.redirector import Redirector

__all__ = ["RedirectionGraph", "INPUT_NAMES", "OUTPUT_NAMES", "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "onnx_bytes",
           "check_opset", "write_onnx", "example_inputs", "require_onnx"]

INPUT_NAMES = ("images", "source_gaze", "source_head", "target_gaze", "target_head", "change_gaze", "change_head",
               "estimate_source")
OUTPUT_NAMES = ("decoded", "eyes", "gaze_est", "head_est")
DEFAULT_OPSET = 17
MIN_OPSET = 16  # GridSample (the warping decoder) entered the standard at opset 16
MAX_OPSET = 20  # the highest torch.onnx's TorchScript exporter writes (torch 2.13)
INSTALL_HINT = "pip install 'regaze[export]' (onnx, onnxruntime)"


def require_onnx(module: str = "onnx"):
    """Import `onnx` or `onnxruntime`, or a RegazeError saying how to install it."""
    try:
        if module == "onnxruntime":
            import onnxruntime
            return onnxruntime
        import onnx
        return onnx
    except ImportError as e:
        raise RegazeError(f"ONNX export needs the {module} package, which is not installed here: {INSTALL_HINT}") from e


class RedirectionGraph(nn.Module):
    """A Redirector (eval mode, float32) behind the graph interface of the module docstring; plain tensors in
    and out, so that it traces, and so that eager PyTorch can run the very computation the graph holds."""

    def __init__(self, redirector: Redirector):
        super().__init__()
        if redirector.config.gaze_frame != "camera":
            raise RegazeError(f"ONNX export takes models whose Z_g is rotated in the camera frame; this one's "
                              f"model.gaze_frame is {redirector.config.gaze_frame!r} (issue 13's lever 6, not exported)")
        self.redirector = redirector
        self.image_size = redirector.config.image_size
        self.framing = redirector.framing

    def forward(self, images, source_gaze, source_head, target_gaze, target_head, change_gaze, change_head,
                estimate_source):
        model, s = self.redirector, self.image_size
        feats = source_feats = model.encode(images)  # Features of the input
        use_est = estimate_source > 0.5  # (B, 2) bool
        src_gaze = torch.where(use_est[:, 0:1], feats.gaze_est.float(), source_gaze)  # (B, 2) rad
        src_head = torch.where(use_est[:, 1:2], feats.head_est.float(), source_head)  # (B, 2) rad
        gaze_sel = change_gaze.reshape(-1) > 0.5  # (B,) bool
        head_sel = change_head.reshape(-1) > 0.5  # (B,) bool
        cas = model.separation
        feats = cas.rotate_features(feats, source_gaze=src_gaze, target_gaze=target_gaze, gaze_sel=gaze_sel)  # gaze first
        feats = cas.rotate_features(feats, source_head=src_head, target_head=target_head, head_sel=head_sel)  # then head
        decoded = model.decode(feats, base=images, base_feats=source_feats)  # (B, 3, S, S)
        mask = eye_mask(src_head, size=s, framing=self.framing).to(decoded.dtype)  # (B, 1, S, S) in [0, 1]
        pasted = images + mask * (decoded - images)  # the input outside the eyes, the decoder inside
        eyes = torch.where(gaze_sel.view(-1, 1, 1, 1), pasted, decoded)  # (B, 3, S, S)
        return decoded, eyes, source_feats.gaze_est, source_feats.head_est


def example_inputs(*, batch_size: int, image_size: int, seed: int = 0, max_angle_rad: float = 0.5) -> dict:
    """Random graph inputs (float32 tensors keyed by INPUT_NAMES): images uniform in [-1, 1], angles uniform in
    +-max_angle_rad. The switches follow the bits of the row index i: change_gaze = bit 0, change_head = bit 1,
    estimate_source = (bit 2, bit 0 xor bit 2), so that any 4 rows hold every (change_gaze, change_head) pair and
    5 rows also both kinds of source."""
    gen = torch.Generator().manual_seed(seed)
    b, s = batch_size, image_size
    angle = lambda: (torch.rand(b, 2, generator=gen) * 2 - 1) * max_angle_rad  # noqa: E731  (B, 2) rad
    i = torch.arange(b)
    bit = lambda n: ((i >> n) & 1).float().view(b, 1)  # noqa: E731  (B, 1) in {0, 1}
    return {"images": torch.rand(b, 3, s, s, generator=gen) * 2 - 1, "source_gaze": angle(), "source_head": angle(),
            "target_gaze": angle(), "target_head": angle(), "change_gaze": bit(0), "change_head": bit(1),
            "estimate_source": torch.cat([bit(2), (bit(0) + bit(2)) % 2], dim=1)}


def check_opset(opset) -> None:
    """A RegazeError unless `opset` is one the exporter writes and the graph can use."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise RegazeError(f"opset must be an integer from {MIN_OPSET} (GridSample) to {MAX_OPSET} (the highest the "
                          f"exporter writes); found {opset!r}")


def onnx_bytes(redirector: Redirector, *, opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> bytes:
    """The serialized ONNX model of `redirector` (a copy is exported on the CPU in float32, eval mode), with
    `metadata` (name -> JSON-serializable value) stored as JSON strings in the model's metadata_props."""
    onnx = require_onnx("onnx")
    check_opset(opset)
    model = Redirector(redirector.config)
    model.load_state_dict({k: v.float() for k, v in redirector.state_dict().items()})
    model.framing = redirector.framing
    graph = RedirectionGraph(model.requires_grad_(False).eval())
    example = example_inputs(batch_size=2, image_size=model.config.image_size)
    dynamic = {name: {0: "batch"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice, and the tracer's notes on
        warnings.simplefilter("ignore", DeprecationWarning)  # constants (the eye positions are constants)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            torch.onnx.export(graph, tuple(example[n] for n in INPUT_NAMES), buffer, dynamo=False,
                              opset_version=opset, input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              dynamic_axes=dynamic, do_constant_folding=True)
        except (ValueError, RuntimeError) as e:
            if "opset" in str(e).lower():
                raise RegazeError(f"torch {torch.__version__} cannot export opset {opset}: {e}") from e
            raise
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)  # keys kept in order (the inputs)
    proto.producer_name = "regaze"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def write_onnx(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (a temporary file in the same folder, fsync, rename); the folder is
    created if needed. A path that cannot be written is a RegazeError."""
    path = Path(path)
    if path.is_dir():
        raise RegazeError(f"{path} is a directory; give the ONNX file to write, e.g. {path / 'redirector.onnx'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise RegazeError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; an exported model is meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise RegazeError(f"cannot write {path}: {e.strerror or e}") from e
        raise
    return path
