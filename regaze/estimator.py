"""The independent gaze + head estimator used for evaluation only (DESIGN §4): its own network, its own
training (regaze/evaluation/estimator_training.py), its own checkpoint; nothing in the redirector's losses
ever sees it.

    est, info = load_estimator(DIR)          # DIR/estimator.pt; refuses unvalidated / inaccurate weights
    out = estimate(est, images)              # {"gaze", "head": (n, 2) rad (pitch, yaw), "embedding": (n, E)}

Network (`GazeHeadEstimator`): a small ResNet (a stride-2 stem, four stages of basic blocks of widths
w, 2w, 4w, 8w, the last three stride 2), the last map pooled to 4 x 4 and flattened (position matters for
gaze, so no global pooling), then
  - a pose head regressing (pitch, yaw) of the head and of the gaze *in head coordinates* (M^T g, M the head
    rotation), radians (trained with an L1 loss). The eyes' appearance encodes the gaze relative to the head,
    so that is what the network reads; the camera-frame gaze is composed analytically, g = M . g_head
    (`gaze_in_camera`), and errors are measured on it. (Measured on synthetic 64², 1,500 steps: 7.0° against
    6.8° for a camera-frame target, i.e. no gain at that length; the sub-pixel eye reading is the limit);
  - an identity head: a unit-norm embedding trained with a cosine (normalised-softmax) classifier over the
    training subjects. Evaluation uses only the embedding, to compare a redirected output with its source
    on subjects the estimator never saw (see regaze/evaluation/identity.py for why this measure).

A checkpoint records the validation error measured on held-out subjects at the end of training;
`load_estimator` refuses a checkpoint without that record, or whose error exceeds `max_val_error_deg`,
unless `allow_untrained=True` (then `info["untrained"]` flags it), so random weights cannot produce
evaluation numbers unnoticed.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from regaze.checkpoint import load_checkpoint, save_checkpoint
from regaze.config import config_from_dict
from regaze.errors import RegazeError
from regaze.geometry import pitchyaw_to_vector, vector_to_pitchyaw

__all__ = [
    "EstimatorConfig",
    "GazeHeadEstimator",
    "head_to_camera",
    "gaze_in_head",
    "gaze_in_camera",
    "estimate",
    "save_estimator",
    "load_estimator",
    "to_model_input",
    "CHECKPOINT_NAME",
    "DEFAULT_MAX_VAL_ERROR_DEG",
]

CHECKPOINT_NAME = "estimator.pt"
_FORMAT = "regaze-estimator"
_FORMAT_VERSION = 2  # 2: the pose head predicts head-relative gaze (version 1 predicted camera-frame gaze)
DEFAULT_MAX_VAL_ERROR_DEG = 10.0  # a trained estimator on normalized faces is far below this; chance is ~20-40°


# -------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class EstimatorConfig:
    """Architecture. `n_subjects` is the size of the identity classifier (training subjects)."""

    image_size: int = 64
    # Channels of the first stage; stages have w, 2w, 4w, 8w. 16: 556 training img/s at 64² on one CPU thread
    # against 153 at 32 (batch 64, forward + backward); 4.5° gaze / 1.4° head on held-out synthetic 64² subjects
    # after 80 epochs of 14,000 renders (34 minutes; benchmarks/results/estimator64_cpu.json).
    width: int = 16
    hidden: int = 256  # pose-head hidden units
    embed_dim: int = 64  # identity embedding size
    n_subjects: int = 1


# ------------------------------------------------------------------------------------ head-relative gaze
def head_to_camera(head_pitchyaw_rad: torch.Tensor) -> torch.Tensor:
    """(B, 2) head (pitch, yaw) -> (B, 3, 3) rotation M, head -> normalized camera, roll 0 (DESIGN §2).

    Columns are the head axes: x horizontal (cos y, 0, -sin y), z = -pitchyaw_to_vector(head) (out of the back
    of the head), y = z x x; the same matrix as the synthetic renderer's camera.head_rotation.
    """
    z = -pitchyaw_to_vector(head_pitchyaw_rad)  # (B, 3)
    yaw = head_pitchyaw_rad[..., 1]
    x = torch.stack([torch.cos(yaw), torch.zeros_like(yaw), -torch.sin(yaw)], dim=-1)  # (B, 3)
    y = torch.linalg.cross(z, x, dim=-1)  # (B, 3)
    return torch.stack([x, y, z], dim=-1)  # (B, 3, 3) columns


def gaze_in_head(gaze_pitchyaw_rad: torch.Tensor, head_pitchyaw_rad: torch.Tensor) -> torch.Tensor:
    """(B, 2) camera-frame gaze, (B, 2) head -> (B, 2) gaze (pitch, yaw) in head coordinates, M^T g.
    (0, 0) = looking where the face points."""
    g = pitchyaw_to_vector(gaze_pitchyaw_rad).unsqueeze(-1)  # (B, 3, 1)
    return vector_to_pitchyaw((head_to_camera(head_pitchyaw_rad).transpose(-1, -2) @ g).squeeze(-1))  # (B, 2)


def gaze_in_camera(gaze_head_pitchyaw_rad: torch.Tensor, head_pitchyaw_rad: torch.Tensor) -> torch.Tensor:
    """Inverse of `gaze_in_head`: (B, 2) head-relative gaze, (B, 2) head -> (B, 2) camera-frame gaze, M g."""
    g = pitchyaw_to_vector(gaze_head_pitchyaw_rad).unsqueeze(-1)  # (B, 3, 1)
    return vector_to_pitchyaw((head_to_camera(head_pitchyaw_rad) @ g).squeeze(-1))  # (B, 2)


# --------------------------------------------------------------------------------------------- network
class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016); stride on the first."""

    def __init__(self, c_in: int, c_out: int, *, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class GazeHeadEstimator(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> {"gaze": (B, 2) camera frame, "gaze_head": (B, 2) head frame, "head": (B, 2)
    rad (pitch, yaw), "embedding": (B, E) unit}."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        # The stem brings the image to at most 32² (a stride-2 stem halves the CPU cost at 64² against a
        # stride-1 one; sub-pixel iris position survives in its channels), then three stride-2 stages.
        stem_stride = 2 if cfg.image_size >= 64 else 1
        stem = [nn.Conv2d(3, w, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        if cfg.image_size >= 128:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        self.stages = nn.Sequential(BasicBlock(w, w, stride=1), BasicBlock(w, 2 * w, stride=2),
                                    BasicBlock(2 * w, 4 * w, stride=2), BasicBlock(4 * w, 8 * w, stride=2))
        self.pool = nn.AdaptiveAvgPool2d(4)
        flat = 8 * w * 16
        self.pose = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 4))
        self.identity = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.embed_dim))
        # Cosine classifier over the training subjects: trains the embedding, unused at evaluation.
        self.subject_weight = nn.Parameter(torch.randn(cfg.n_subjects, cfg.embed_dim) / math.sqrt(cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.pool(self.stages(self.stem(x))).flatten(1)  # (B, 8w * 16)
        pose = self.pose(h).float()  # (B, 4): gaze in head coordinates, head; angles in float32
        gaze_head, head = pose[:, :2], pose[:, 2:]
        emb = F.normalize(self.identity(h), dim=1)  # (B, E)
        return {"gaze": gaze_in_camera(gaze_head, head), "gaze_head": gaze_head, "head": head, "embedding": emb}

    def subject_logits(self, embedding: torch.Tensor, *, scale: float) -> torch.Tensor:
        """(B, E) unit embeddings -> (B, n_subjects) scaled cosine similarities."""
        return scale * embedding @ F.normalize(self.subject_weight, dim=1).T


def to_model_input(images) -> torch.Tensor:
    """uint8 (n, S, S, 3) RGB array or float (n, 3, S, S) tensor in [-1, 1] -> float (n, 3, S, S) in [-1, 1]."""
    if isinstance(images, torch.Tensor):
        return images.float()
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def estimate(model: GazeHeadEstimator, images, *, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Estimates for uint8 (n, S, S, 3) images or a float (n, 3, S, S) tensor in [-1, 1]
    -> {"gaze": (n, 2), "head": (n, 2) float32 rad, "embedding": (n, E) float32 unit vectors}."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs: dict[str, list] = {"gaze": [], "head": [], "embedding": []}
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start:start + batch_size]).to(device)
        out = model(x)
        for k in outs:
            outs[k].append(out[k].float().cpu().numpy())
    model.train(was_training)
    if not outs["gaze"]:
        return {"gaze": np.zeros((0, 2), np.float32), "head": np.zeros((0, 2), np.float32),
                "embedding": np.zeros((0, model.cfg.embed_dim), np.float32)}
    return {k: np.concatenate(v) for k, v in outs.items()}


# ----------------------------------------------------------------------------------------- checkpoints
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
        raise RegazeError(f"{ckpt}: estimator format version {version} predicts camera-frame gaze; this regaze "
                          f"reads version {_FORMAT_VERSION} (head-relative gaze); retrain it with "
                          f"`regaze estimator train`")
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
