"""Training of the independent estimator (regaze/estimator.py), and its validation on held-out subjects.

    model, record = train_estimator(train=LabelledImages.from_dataset(ds, train_idx), val=...)
    train_estimator_on_file(data=FILE, out=DIR)     # what `regaze estimator train` runs

Augmentation keeps every label exact: brightness, contrast, per-channel gain and sensor noise change no
geometry; a horizontal flip mirrors the scene through the optical axis (the principal point is the image
centre in normalized images), which maps (pitch, yaw) to (pitch, -yaw) for both gaze and head exactly.
Translations and crops are excluded: in a normalized image the face centre sits at the image centre, and
moving it is a different camera rotation, i.e. different labels. Exact, though, when the labels
move with it: the camera turned (`roll_deg` about its optical axis, `tilt_deg` about its x and y axes, which
moves the face off the centre as a misplaced crop does) and zoomed (`zoom`), both label vectors turned by the
same rotation (camera_turns.py; off by default). It is meant for head readers of the photo chain
(regaze/data/photo/head_refinement.py), whose crops carry the landmark fit's errors of roll, centre and
distance; the eye crops are still placed by (pitch, yaw) alone, so it costs gaze accuracy.

Default schedule (meant for synthetic 64² data): AdamW (lr 2e-3, weight decay 0.05), batch 64, 80 epochs,
3 % linear warm-up then cosine decay to 0 (14,000 renders of 140 subjects: 34 minutes on one CPU thread at
width 16 without the eye stream). With eye crops the estimator reaches 2.7° gaze on test subjects in 32
epochs of 19,600 renders (benchmarks/results/estimator64_cpu.json). Eye crops are placed by the head label
jittered by `crop_head_noise_deg` (the predicted head's error is about that); under the mirror the two eyes
swap, which the crop geometry (symmetric, the second eye mirrored) keeps consistent with the negated yaw.
Small sets (the downstream experiment) pass `epochs` or `steps`. The final weights are kept (no selection on
the validation subjects, so the recorded error is unbiased).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from regaze.errors import RegazeError
from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator, estimate, to_model_input
from regaze.evaluation.estimator.store import save_estimator
from regaze.evaluation.estimator.camera_turns import small_turns, turn_images
from regaze.geometry import angular_error_deg, gaze_in_head
from regaze.model.framing import Framing, framing_from_attrs

__all__ = ["EstimatorTrainConfig", "ImageBank", "LabelledImages", "train_estimator", "validate_estimator",
           "estimator_splits", "train_estimator_on_file"]


@dataclass(frozen=True)
class EstimatorTrainConfig:
    """Optimisation and augmentation; defaults are the schedule meant for synthetic 64² data."""

    epochs: int = 80
    steps: int = 0  # 0 = epochs * ceil(n_train / batch_size); > 0 overrides epochs (equal compute across arms)
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.03
    identity_weight: float = 0.1  # weight of the subject-classification loss; 0 = no identity head training
    identity_scale: float = 16.0  # logit scale of the cosine classifier
    brightness: float = 0.15  # additive, fraction of full scale
    contrast: float = 0.2  # multiplicative around the image mean: U(1 - c, 1 + c)
    channel_gain: float = 0.08  # per-channel multiplicative: U(1 - g, 1 + g)
    noise_std: float = 0.02  # Gaussian sensor noise, std drawn in U(0, noise_std), fraction of full scale
    hflip: bool = True  # mirror with (pitch, yaw) -> (pitch, -yaw); exact in normalized images
    # The camera turned and zoomed (turn_images; all off by default): about its optical axis by U(-roll, roll)
    # deg, about its x and y axes by U(-tilt, tilt) deg each (the face off the centre; needs the file's framing),
    # zoomed by U(1 - zoom, 1 + zoom); labels turned with it
    roll_deg: float = 0.0
    tilt_deg: float = 0.0
    zoom: float = 0.0
    # Eye crops are placed during training by the head label plus Gaussian noise of this std per angle (deg),
    # about the predicted head's error, which places them at inference; < 0 = by the detached predicted head.
    crop_head_noise_deg: float = 1.5
    seed: int = 0
    cache_mb: int = 4096  # hold training images in memory up to this size
    threads: int = 0  # torch CPU threads; 0 = torch's default


# ------------------------------------------------------------------------------------------------ data
class ImageBank:
    """Images by position 0..n-1 as uint8 (n, S, S, 3) RGB: in-memory arrays and/or dataset rows read on
    demand (held in memory when they fit in `cache_mb`), concatenated in the order given."""

    def __init__(self, parts: list):
        self._parts = []  # (kind, payload, length)
        for p in parts:
            if isinstance(p, np.ndarray):
                if p.dtype != np.uint8 or p.ndim != 4 or p.shape[-1] != 3:
                    raise RegazeError(f"ImageBank: expected uint8 (n, S, S, 3) images, found {p.dtype} {p.shape}")
                self._parts.append(("array", p, len(p)))
            else:
                dataset, indices = p
                self._parts.append(("dataset", (dataset, np.asarray(indices, dtype=np.int64)), len(indices)))
        self._offsets = np.cumsum([0] + [n for _, _, n in self._parts])

    @classmethod
    def from_dataset(cls, dataset, indices, *, cache_mb: int = 4096) -> "ImageBank":
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) * dataset.size**2 * 3 <= cache_mb * 2**20:
            return cls([dataset.read_images(indices)])
        return cls([(dataset, indices)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def parts(self) -> list:
        """The inputs this bank was built from (arrays and (dataset, indices) pairs), for concatenation."""
        return [payload for _, payload, _ in self._parts]

    def get(self, positions) -> np.ndarray:
        """positions (n,) -> uint8 (n, S, S, 3)."""
        pos = np.asarray(positions, dtype=np.int64)
        part_of = np.searchsorted(self._offsets, pos, side="right") - 1
        out = None
        for k in np.unique(part_of):
            kind, payload, _ = self._parts[k]
            sel = np.flatnonzero(part_of == k)
            local = pos[sel] - self._offsets[k]
            imgs = payload[local] if kind == "array" else payload[0].read_images(payload[1][local])
            if out is None:
                out = np.empty((len(pos), *imgs.shape[1:]), np.uint8)
            out[sel] = imgs
        return out


@dataclass
class LabelledImages:
    """Images with labels: gaze / head (n, 2) float32 radians, subject (n,) int64; `framing` the normalized
    camera of the images (where the estimator places its eye crops), None = unknown (the config's is used)."""

    images: ImageBank
    gaze: np.ndarray
    head: np.ndarray
    subject: np.ndarray
    framing: Framing | None = None

    def __len__(self) -> int:
        return len(self.gaze)

    @classmethod
    def from_dataset(cls, dataset, indices, *, cache_mb: int = 4096) -> "LabelledImages":
        if not dataset.has_gaze_labels:
            raise RegazeError(f"{dataset.path}: has no gaze labels; the estimator needs gaze and head labels")
        idx = np.asarray(indices, dtype=np.int64)
        return cls(images=ImageBank.from_dataset(dataset, idx, cache_mb=cache_mb), gaze=dataset.gaze[idx],
                   head=dataset.head[idx], subject=dataset.subject[idx],
                   framing=framing_from_attrs(dataset.attrs, size=dataset.size))

    @classmethod
    def concat(cls, parts: list["LabelledImages"]) -> "LabelledImages":
        return cls(images=ImageBank([p for part in parts for p in part.images.parts()]),
                   gaze=np.concatenate([p.gaze for p in parts]), head=np.concatenate([p.head for p in parts]),
                   subject=np.concatenate([p.subject for p in parts]),
                   framing=next((p.framing for p in parts if p.framing is not None), None))


# -------------------------------------------------------------------------------------------- training
def _augment(x: torch.Tensor, gaze: torch.Tensor, head: torch.Tensor, *, cfg: EstimatorTrainConfig,
             generator: torch.Generator, focal_px: float = 0.0):
    """Label-exact augmentation of a batch: x (B, 3, S, S) in [-1, 1], gaze / head (B, 2) rad; focal_px of the
    normalized camera (needed for tilt_deg)."""
    b = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    x = (x + 1.0) / 2.0  # [0, 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1.0 + cfg.contrast * (2 * u(b, 1, 1, 1) - 1)) + mean
    x = x * (1.0 + cfg.channel_gain * (2 * u(b, 3, 1, 1) - 1)) + cfg.brightness * (2 * u(b, 1, 1, 1) - 1)
    x = x + cfg.noise_std * u(b, 1, 1, 1) * torch.randn(x.shape, generator=generator)
    if cfg.hflip:
        flip = u(b) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        sign = torch.where(flip, -1.0, 1.0)
        gaze = torch.stack([gaze[:, 0], gaze[:, 1] * sign], dim=1)
        head = torch.stack([head[:, 0], head[:, 1] * sign], dim=1)
    if cfg.roll_deg > 0 or cfg.tilt_deg > 0 or cfg.zoom > 0:
        rotation = small_turns(b, roll_deg=cfg.roll_deg, tilt_deg=cfg.tilt_deg, generator=generator)
        zoom = 1.0 + cfg.zoom * (2 * u(b) - 1)
        x, gaze, head = turn_images(x, gaze, head, rotation=rotation, zoom=zoom, focal_px=focal_px)
    return x.clamp(0.0, 1.0) * 2.0 - 1.0, gaze, head



def _crop_head(head: torch.Tensor, *, noise_deg: float, generator: torch.Generator) -> torch.Tensor | None:
    """(B, 2) head labels rad -> where the training eye crops are placed: labels + N(0, noise_deg²); None
    (noise_deg < 0) = the model's own detached prediction."""
    if noise_deg < 0:
        return None
    return head + math.radians(noise_deg) * torch.randn(head.shape, generator=generator).to(head.device)


def _lr_factor(step: int, *, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_estimator(*, train: LabelledImages, val: LabelledImages | None, config: EstimatorConfig | None = None,
                    train_config: EstimatorTrainConfig | None = None, device="cpu", progress: bool = True,
                    log=None) -> tuple[GazeHeadEstimator, dict]:
    """Train a GazeHeadEstimator on `train`; measure it on `val` (held-out subjects) after each epoch.

    The returned model is the final one (no selection on `val`, so the recorded error is unbiased).
    Returns (model in eval mode, record) with record = {"val": {...} or None, "history": [...], ...}.
    """
    from tqdm import tqdm

    tc = train_config or EstimatorTrainConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if len(train) == 0:
        raise RegazeError("estimator training set is empty")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    subjects = np.unique(train.subject)
    size = train.images.get([0]).shape[1]
    cfg = config or EstimatorConfig(image_size=size)
    cfg = EstimatorConfig(**{**asdict(cfg), "image_size": size, "n_subjects": len(subjects)})
    if cfg.focal_px <= 0 and train.framing is not None:  # the eye crops go where the training file's eyes are
        cfg = EstimatorConfig(**{**asdict(cfg), "focal_px": train.framing.focal_px,
                                 "distance_mm": train.framing.distance_mm})
    if tc.tilt_deg > 0 and cfg.focal_px <= 0:
        raise RegazeError("tilt augmentation needs the normalized camera's focal length: the training file records "
                          "no framing (camera_focal_px, camera_distance_mm)")
    subject_class = torch.from_numpy(np.searchsorted(subjects, train.subject))  # (N,) class ids
    torch.manual_seed(tc.seed)
    device = torch.device(device)
    model = GazeHeadEstimator(cfg).to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2 and p is not model.subject_weight]
    no_decay = [p for p in model.parameters() if p.ndim < 2 or p is model.subject_weight]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)
    steps_per_epoch = math.ceil(len(train) / tc.batch_size)
    total = tc.steps or tc.epochs * steps_per_epoch
    warmup = max(1, int(tc.warmup_fraction * total))
    rng = np.random.default_rng(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    gaze_all = torch.from_numpy(train.gaze.astype(np.float32))
    head_all = torch.from_numpy(train.head.astype(np.float32))

    history, step, t_start = [], 0, time.time()
    bar = tqdm(total=total, desc="estimator", unit="step", disable=not progress, file=sys.stderr)
    epoch = 0
    while step < total:
        model.train()
        order = rng.permutation(len(train))
        # Sums stay on the device: one host sync per epoch, not per step.
        sums, n_seen, t_epoch = {"pose_l1": torch.zeros((), device=device), "id_ce": torch.zeros((), device=device)}, 0, time.time()
        for start in range(0, len(order), tc.batch_size):
            if step >= total:
                break
            idx = order[start:start + tc.batch_size]
            x = to_model_input(train.images.get(idx))  # (B, 3, S, S)
            x, gaze, head = _augment(x, gaze_all[idx], head_all[idx], cfg=tc, generator=gen, focal_px=cfg.focal_px)
            x, gaze, head = x.to(device), gaze.to(device), head.to(device)
            for g in opt.param_groups:
                g["lr"] = tc.lr * _lr_factor(step, total=total, warmup=warmup)
            out = model(x, crop_head=_crop_head(head, noise_deg=tc.crop_head_noise_deg, generator=gen))
            # L1 on (pitch, yaw) radians of the head and of the gaze in head coordinates (what the eyes show),
            # equally weighted; the camera-frame gaze is composed from both, exactly.
            pose_l1 = (out["gaze_head"] - gaze_in_head(gaze, head)).abs().mean() + (out["head"] - head).abs().mean()
            loss = pose_l1
            if tc.identity_weight > 0:
                logits = model.subject_logits(out["embedding"], scale=tc.identity_scale)  # (B, n_subjects)
                id_ce = F.cross_entropy(logits, subject_class[idx].to(device))
                loss = loss + tc.identity_weight * id_ce
                sums["id_ce"] += id_ce.detach() * len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["pose_l1"] += pose_l1.detach() * len(idx)
            n_seen += len(idx)
            step += 1
            bar.update(1)
        epoch += 1
        entry = {"epoch": epoch, "step": step, "epoch_s": round(time.time() - t_epoch, 2),
                 **{k: float(v) / max(1, n_seen) for k, v in sums.items()}}
        if val is not None and len(val):
            entry.update(validate_estimator(model, val, device=device))
        history.append(entry)
        bar.set_postfix({k: f"{v:.3g}" for k, v in entry.items() if k in ("pose_l1", "gaze_err_deg", "head_err_deg")})
        log(f"estimator epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in entry.items()))
    bar.close()
    model.eval()
    record = {
        "val": validate_estimator(model, val, device=device) if val is not None and len(val) else None,
        "history": history,
        "train_images": len(train),
        "train_subjects": [int(s) for s in subjects],
        "val_subjects": [] if val is None else [int(s) for s in np.unique(val.subject)],
        "steps": step,
        "train_s": round(time.time() - t_start, 1),
        "train_config": asdict(tc),
    }
    return model, record


def validate_estimator(model: GazeHeadEstimator, data: LabelledImages, *, device="cpu",
                       batch_size: int = 256) -> dict:
    """Angular errors (degrees) of `model` on labelled images: mean and median, gaze and head."""
    gaze, head = [], []
    for start in range(0, len(data), batch_size):
        est = estimate(model, data.images.get(np.arange(start, min(start + batch_size, len(data)))))
        gaze.append(est["gaze"])
        head.append(est["head"])
    gaze_err = angular_error_deg(np.concatenate(gaze).astype(np.float64), data.gaze.astype(np.float64))
    head_err = angular_error_deg(np.concatenate(head).astype(np.float64), data.head.astype(np.float64))
    return {"gaze_err_deg": float(gaze_err.mean()), "head_err_deg": float(head_err.mean()),
            "gaze_err_median_deg": float(np.median(gaze_err)), "head_err_median_deg": float(np.median(head_err)),
            "n_images": int(len(data)), "n_subjects": int(len(np.unique(data.subject)))}




def estimator_splits(dataset, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(train indices, validation indices, how they were chosen) for estimator training on one file.

    Train on the `train` split (the whole file when it has none); validate on the `val` split, else on a
    seeded `val_fraction` of the training subjects, held out from training (at least one subject).
    The `test` split is never touched: it is for evaluation.
    """
    try:
        train_idx = dataset.split_indices("train")
        rule = "train split"
    except RegazeError:
        train_idx = np.arange(len(dataset), dtype=np.int64)
        rule = "whole file (no split information)"
    try:
        val_idx = dataset.split_indices("val")
    except RegazeError:
        val_idx = np.zeros(0, np.int64)
    if len(val_idx):
        return train_idx, val_idx, f"{rule}; validation on the val split"
    subjects = np.unique(dataset.subject[train_idx])
    if len(subjects) < 2:
        raise RegazeError(f"{dataset.path}: the estimator needs held-out subjects to measure its error, but the "
                          f"training data have {len(subjects)} subject and the file no val split")
    n_val = min(len(subjects) - 1, max(1, int(round(val_fraction * len(subjects)))))
    held = np.random.default_rng(seed).choice(subjects, size=n_val, replace=False)
    is_val = np.isin(dataset.subject[train_idx], held)
    return train_idx[~is_val], train_idx[is_val], f"{rule}; validation on {n_val} held-out subjects {sorted(held.tolist())}"


def train_estimator_on_file(*, data, out, config: EstimatorConfig | None = None,
                            train_config: EstimatorTrainConfig | None = None, val_fraction: float = 0.1,
                            max_train_images: int = 0, device="cpu", progress: bool = True) -> dict:
    """Train on FILE (see `estimator_splits`), save OUT/estimator.pt + OUT/estimator.json -> the record."""
    from regaze.data.dataset import open_dataset

    tc = train_config or EstimatorTrainConfig()
    dataset = open_dataset(data)
    train_idx, val_idx, rule = estimator_splits(dataset, val_fraction=val_fraction, seed=tc.seed)
    if max_train_images and len(train_idx) > max_train_images:
        train_idx = np.sort(np.random.default_rng(tc.seed).choice(train_idx, max_train_images, replace=False))
    print(f"estimator: {len(train_idx)} training images, {len(val_idx)} validation images ({rule})", file=sys.stderr)
    train = LabelledImages.from_dataset(dataset, train_idx, cache_mb=tc.cache_mb)
    val = LabelledImages.from_dataset(dataset, val_idx, cache_mb=tc.cache_mb)
    model, record = train_estimator(train=train, val=val, config=config, train_config=tc, device=device,
                                    progress=progress)
    record["split_rule"] = rule
    path = save_estimator(out, model=model.cpu(), record=record, data=str(data))
    v = record["val"]
    print(f"estimator: validation error gaze {v['gaze_err_deg']:.2f}°, head {v['head_err_deg']:.2f}° on "
          f"{v['n_subjects']} held-out subjects; wrote {path}", file=sys.stderr)
    return record
