"""The independent gaze + head estimator used for evaluation (DESIGN §4): its own network, its own
training (trainer.py beside this file), its own checkpoint; the evaluation estimator never enters the
redirector's losses. A second instance, trained on the redirector's training subjects only (another file,
seed or width), can be the frozen training-time estimator of loss.guide (store.load_guide_estimator);
`regaze evaluate` refuses to measure a run with its own guide.

    est, info = load_estimator(DIR)          # store.py: DIR/estimator.pt; refuses unvalidated / inaccurate weights
    out = estimate(est, images)              # {"gaze", "head": (n, 2) rad (pitch, yaw), "embedding": (n, E)}

Network (`GazeHeadEstimator`): a face stream, a small ResNet (a stride-2 stem, four stages of basic blocks
of widths w, 2w, 4w, 8w, the last three stride 2), the last map pooled to 4 x 4 and flattened (position
matters for gaze, so no global pooling), then
  - a head branch regressing the head (pitch, yaw), radians, from the face features;
  - an eye stream: two 28 x 44 mm patches around the eyes of a mean face placed by the head pose
    (regaze/eye_regions.py; the label jittered by ~1.5° in training, the detached prediction at inference),
    sampled bilinearly at twice the image's pixel density (the iris moves ~0.2 px per 3° at 64²; no sub-pixel
    position is lost), the second eye mirrored, through one shared small ResNet. Normalized faces have no
    roll, so the crops are axis-aligned. Whole-face networks have to learn iris position -> gaze anew at every
    place the eyes can sit; the crops put the eyes at one place (synthetic 64², 1,500 steps, held-out
    subjects: 3.81° gaze against 6.8° for the face stream alone);
  - a gaze branch regressing the gaze *in head coordinates* (M^T g, M the head rotation) from [both eyes,
    face, head]. The eyes' appearance encodes the gaze relative to the head, so that is what the network
    reads; the camera-frame gaze is composed analytically, g = M . g_head (`gaze_in_camera`), and errors are
    measured on it. Both branches are trained with an L1 loss on radians;
  - an identity head: a unit-norm embedding trained with a cosine (normalised-softmax) classifier over the
    training subjects. Evaluation uses only the embedding, to compare a redirected output with its source
    on subjects the estimator never saw (see regaze/evaluation/identity.py for why this measure).

Its checkpoints (save / load, with the validation record) are store.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from regaze.model.framing import Framing, eye_centres_px, framing_from_attrs
from regaze.geometry import gaze_in_camera
from regaze.model.layers import PointwiseConv2d

__all__ = [
    "EstimatorConfig",
    "GazeHeadEstimator",
    "estimate",
    "to_model_input",
    "eye_crops",
    "eye_crop_shape",
    "estimator_framing",
]


# -------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class EstimatorConfig:
    """Architecture. `n_subjects` is the size of the identity classifier (training subjects)."""

    image_size: int = 64
    # Channels of the first stage; stages have w, 2w, 4w, 8w. 16: 556 training img/s at 64² on one CPU thread
    # against 153 at 32 (batch 64, forward + backward). With the eye stream (eye_width 16): ~370 img/s; 2.7° gaze
    # / 1.1° head on held-out synthetic 64² subjects after 32 epochs of 19,600 renders of 280 subjects (31
    # minutes; benchmarks/results/estimator64_cpu.json), 3.0° / 1.3° after 30 epochs of 14,000 renders of 140,
    # against 4.5° / 1.4° for the face alone after 80 epochs of those.
    width: int = 16
    hidden: int = 256  # pose-head hidden units
    embed_dim: int = 64  # identity embedding size
    n_subjects: int = 1
    # Channels of the eye stream's stem (stages 2x, 4x); 0 = no eye stream (whole face only). `regaze estimator
    # train` uses 16 (+53 % training time at 64²); 0 here keeps callers that build their own config (the toy
    # estimator of the tests, the downstream experiment) on the whole-face network.
    eye_width: int = 0
    # The normalized camera of the training images (regaze.model.framing.Framing), where the eye crops are placed;
    # 0 = ETH-XGaze's face normalization scaled to image_size. Training on a file stores the file's framing.
    focal_px: float = 0.0
    distance_mm: float = 0.0


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
            PointwiseConv2d(c_in, c_out, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))

# ------------------------------------------------------------------------------------------- eye crops
EYE_CROP_MM = (28.0, 44.0)  # (height, width) of each eye patch around the mean eye centre, mm at the face distance
EYE_CROP_DENSITY = 2.0  # crop samples per image pixel: bilinear sampling at 2x keeps the sub-pixel iris position


def estimator_framing(cfg: EstimatorConfig) -> Framing:
    """The config's normalized camera, or ETH-XGaze's scaled to its image size when it records none."""
    if cfg.focal_px > 0 and cfg.distance_mm > 0:
        return Framing(cfg.focal_px, cfg.distance_mm)
    return framing_from_attrs({}, size=cfg.image_size)


def eye_crop_shape(cfg: EstimatorConfig) -> tuple[int, int]:
    """(height, width) in samples of each eye crop: EYE_CROP_MM at EYE_CROP_DENSITY x the image's pixels per mm."""
    framing = estimator_framing(cfg)
    px_per_mm = EYE_CROP_DENSITY * framing.focal_px / framing.distance_mm
    return max(4, round(EYE_CROP_MM[0] * px_per_mm)), max(4, round(EYE_CROP_MM[1] * px_per_mm))


def eye_crops(x: torch.Tensor, head: torch.Tensor, *, framing: Framing, shape: tuple[int, int]) -> torch.Tensor:
    """(B, 3, S, S) images, (B, 2) head pose rad placing the crops -> (2B, 3, h, w) eye patches, bilinear
    (align_corners=False): rows 0..B-1 the eye on the image right of a frontal face, rows B..2B-1 the other
    eye mirrored left-right, so that both look alike to a shared network (and a mirrored image swaps them)."""
    b, size = x.shape[0], x.shape[-1]
    h, w = shape
    centres = eye_centres_px(head.detach(), size=size, framing=framing)  # (B, 2, 2) px (x, y)
    px_per_mm = framing.focal_px / framing.distance_mm
    u = ((torch.arange(w, device=x.device) + 0.5) / w - 0.5) * EYE_CROP_MM[1] * px_per_mm  # (w,) px offsets
    v = ((torch.arange(h, device=x.device) + 0.5) / h - 0.5) * EYE_CROP_MM[0] * px_per_mm  # (h,)
    offsets = torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)  # (h, w, 2) (x, y)
    mirror = torch.tensor([-1.0, 1.0], device=x.device)
    grid = torch.cat([centres[:, 0, None, None] + offsets,  # (B, h, w, 2) px
                      centres[:, 1, None, None] + offsets * mirror])  # (B, h, w, 2): eye 2 sampled mirrored
    grid = 2.0 * grid / size - 1.0  # pixel edges at -1, 1 (align_corners=False)
    return F.grid_sample(x.repeat(2, 1, 1, 1), grid.to(x.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)  # (2B, 3, h, w)


class EyeStream(nn.Module):
    """Shared small ResNet over eye patches: (2B, 3, h, w) -> (B, 2 * 4e * 6) features of both eyes."""

    def __init__(self, *, width: int, stem_stride: int):
        super().__init__()
        e = width
        self.net = nn.Sequential(nn.Conv2d(3, e, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(e),
                                 nn.ReLU(), BasicBlock(e, 2 * e, stride=2), BasicBlock(2 * e, 4 * e, stride=2),
                                 nn.AdaptiveAvgPool2d((2, 3)))
        self.out_dim = 2 * 4 * e * 6

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        f = self.net(crops).flatten(1)  # (2B, 4e * 6)
        return torch.cat(f.chunk(2, dim=0), dim=1)  # (B, 2 * 4e * 6)


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
        if cfg.eye_width > 0:
            # Eye patches placed by the head pose (regaze.model.framing), read by a shared network; the gaze in head
            # coordinates comes from [both eyes, face, head], the head from the face alone.
            self.framing, self.crop_shape = estimator_framing(cfg), eye_crop_shape(cfg)
            self.eyes = EyeStream(width=cfg.eye_width, stem_stride=2 if cfg.image_size >= 128 else 1)
            self.pose = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2))
            self.gaze = nn.Sequential(nn.Linear(self.eyes.out_dim + flat + 2, cfg.hidden), nn.ReLU(),
                                      nn.Linear(cfg.hidden, 2))
        else:
            self.pose = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 4))
        self.identity = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.embed_dim))
        # Cosine classifier over the training subjects: trains the embedding, unused at evaluation.
        self.subject_weight = nn.Parameter(torch.randn(cfg.n_subjects, cfg.embed_dim) / math.sqrt(cfg.embed_dim))

    def forward(self, x: torch.Tensor, *, crop_head: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`crop_head` (B, 2) rad places the eye crops (training: the label, jittered); None = the predicted
        head, detached (inference)."""
        h = self.pool(self.stages(self.stem(x))).flatten(1)  # (B, 8w * 16)
        if self.cfg.eye_width > 0:
            head = self.pose(h).float()  # (B, 2)
            place = head.detach() if crop_head is None else crop_head.float()  # (B, 2)
            crops = eye_crops(x, place, framing=self.framing, shape=self.crop_shape)  # (2B, 3, h, w)
            z = torch.cat([self.eyes(crops), h, head.to(h.dtype)], dim=1)  # (B, eyes + 8w * 16 + 2)
            gaze_head = self.gaze(z).float()  # (B, 2)
        else:
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
