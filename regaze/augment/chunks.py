"""The unit of work of `regaze augment`: the plan (sources in index order, cut into chunks), one chunk's
sources and targets loaded (`load_chunk`), and its images redirected in batches (`compute_chunk`).

Items of a chunk come source-major: the source copy first (with --include-source), then k = 0..K-1. A target
out of the data's range (targets.py) is left out here, before any image is made; `planned - len(items)` of
them are counted in the part file and the output's provenance.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from regaze.augment.targets import CHANGE_CODES, TargetSampler

__all__ = ["AugmentPlan", "load_chunk", "compute_chunk", "redirect_u8"]


@dataclass(frozen=True)
class AugmentPlan:
    """The deterministic work list: sources (M,) dataset indices; chunk c = sources[c·cs : (c+1)·cs]."""

    sources: np.ndarray
    per_image: int
    include_source: bool
    chunk_sources: int

    @property
    def items_per_source(self) -> int:
        return self.per_image + int(self.include_source)

    @property
    def n_chunks(self) -> int:
        return -(-len(self.sources) // self.chunk_sources)

    @property
    def total_items(self) -> int:
        """Items planned; targets out of range and (with --max-residual-deg) failed images are left out of these."""
        return len(self.sources) * self.items_per_source

    def chunk(self, c: int) -> np.ndarray:
        return self.sources[c * self.chunk_sources:(c + 1) * self.chunk_sources]

    def chunk_items(self, c: int) -> int:
        return len(self.chunk(c)) * self.items_per_source


@torch.no_grad()
def redirect_u8(model, images_u8: torch.Tensor, *, change: str, targets: np.ndarray, sources: np.ndarray | None,
                device: torch.device, compose: str = "auto") -> np.ndarray:
    """One batch: images (B, S, S, 3) uint8 tensor, targets (B, 4) rad, sources (B, 4) rad or None (estimated)
    -> (B, S, S, 3) uint8 NumPy. bf16 autocast on CUDA; the angles stay float32 inside the model."""
    x = images_u8.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # (B, 3, S, S)
    kw = {}
    if change in ("gaze", "both"):
        kw["gaze"] = targets[:, :2]
    if change in ("head", "both"):
        kw["head"] = targets[:, 2:]
    if sources is not None:
        kw.update(source_gaze=sources[:, :2], source_head=sources[:, 2:])
    amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with amp:
        y, _ = model.redirect(x, compose=compose, **kw)  # (B, 3, S, S) in [-1, 1]
    y = ((y.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()  # (B, S, S, 3)


def load_chunk(ds, src: np.ndarray, *, sampler: TargetSampler, include_source: bool, copied: list[str],
               pin: bool) -> dict:
    """Images (m, S, S, 3) of one chunk's sources and its in-range item rows (n,), plus `planned` (items
    before the range check) and `out_of_range` (items left out)."""
    images = ds.read_images(src)  # (m, S, S, 3) uint8 RGB
    labels = np.concatenate([ds.gaze[src], ds.head[src]], axis=1).astype(np.float32)  # (m, 4)
    pos, sample_k, targets = [], [], []
    for j, i in enumerate(src):
        block, ok = sampler.targets(source_index=int(i), source_labels=labels[j])  # (K, 4), (K,)
        ks = np.flatnonzero(ok)
        if include_source:
            ks, block = np.concatenate([[-1], ks]), np.concatenate([labels[j:j + 1], block[ok]])
        else:
            block = block[ok]
        pos.append(np.full(len(ks), j))
        sample_k.append(ks)
        targets.append(block)
    pos = np.concatenate(pos).astype(np.int64)  # (n,) row in this chunk's images
    sample_k = np.concatenate(sample_k).astype(np.int32)  # (n,) -1 = the source copy
    targets = np.concatenate(targets).astype(np.float32).reshape(-1, 4)  # (n, 4) gaze pitch, yaw, head pitch, yaw
    mode = np.where(sample_k < 0, CHANGE_CODES["source"], CHANGE_CODES[sampler.change]).astype(np.int8)
    rows = {"gaze": targets[:, :2], "head": targets[:, 2:], "subject": ds.subject[src][pos],
            "session": None if ds.session is None else ds.session[src][pos],
            "source_index": src[pos], "sample_k": sample_k, "change_mode": mode,
            "source_gaze": labels[pos, :2], "source_head": labels[pos, 2:]}
    for key in copied:
        rows[key] = ds.read_array(key, src)[pos]
    u8 = torch.from_numpy(images)
    planned = len(src) * (sampler.per_image + int(include_source))
    return {"images": u8.pin_memory() if pin else u8, "pos": pos, "targets": targets, "sources": labels[pos],
            "copy": sample_k < 0, "rows": rows, "planned": planned, "out_of_range": planned - len(pos)}


def compute_chunk(model, chunk: dict, *, change: str, batch_size: int, device: torch.device,
                  use_labels: bool, compose: str = "auto") -> np.ndarray:
    """The chunk's output images (n, S, S, 3) uint8: source copies as they are, the rest redirected in batches."""
    src_images, pos = chunk["images"], chunk["pos"]  # (m, S, S, 3) uint8 tensor, (n,) row of each item
    out = np.empty((len(pos), *src_images.shape[1:]), dtype=np.uint8)
    copy = chunk["copy"]
    if copy.any():
        out[copy] = src_images.numpy()[pos[copy]]
    on_device = src_images.to(device, non_blocking=True)  # the m sources travel once, not once per item
    pos_t = torch.from_numpy(pos).to(device)
    todo = np.flatnonzero(~copy)
    for s in range(0, len(todo), batch_size):
        b = todo[s:s + batch_size]
        out[b] = redirect_u8(model, on_device[pos_t[torch.from_numpy(b).to(device)]], change=change,
                             targets=chunk["targets"][b], sources=chunk["sources"][b] if use_labels else None,
                             device=device, compose=compose)
    return out
