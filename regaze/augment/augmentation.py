"""Dataset augmentation (DESIGN: the product's purpose): re-render every source image K times with new gaze
and/or head angles drawn from the data's own label distribution, a range or a grid, and write a labelled
regaze-layout file with per-image provenance.

    regaze augment --run RUN_DIR --data IN.h5 --out OUT.h5 --per-image 4 --targets kde
    torchrun --nproc_per_node=N -m regaze.cli augment --run-dir RUN_DIR --data IN.h5 --out OUT.h5 ...

The work is a fixed list: the selected source images in index order, each giving K items (plus a copy of
itself with --include-source); consecutive sources form chunks of about --chunk-size images. Targets come
from a generator seeded by (seed, source index) (targets.py), so nothing depends on batches, chunks,
processes or restarts. Chunk c is computed by rank c % world and stored as its own part file
(parts.py); rank 0 appends the parts in order to OUT's temporary file as they appear and, once
every part exists, renames it to OUT and removes the parts. A run killed at any moment and started again
recomputes only the missing chunks; the same seed gives the same file whatever the number of processes.

Pipeline per process: a reader thread loads the next chunk's images and targets while the model redirects
the current one in batches (bf16 autocast on CUDA), a writer thread stores finished parts, and on rank 0 a
merger thread copies them into OUT.

Output keys: face_patch, face_gaze, face_head_pose (the new labels), subject and session (the source's),
source_index (N,) (row in IN), sample_k (N,) (-1 for a source copy), change_mode (N,) int8 (legend in
attribute change_mode_legend: 0 source copy, 1 gaze, 2 head, 3 both), source_gaze / source_head (N, 2) (the
source's labels), and synth_identity / synth_session rows when IN has them (so the exact targets of synthetic
data can be rendered). Attributes: the input's split attributes, source_file, checkpoint,
checkpoint_sha256, checkpoint_step, augment_params (JSON) and augment_fingerprint.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from regaze import dist
from regaze.augment.parts import (FINGERPRINT_ATTR, PartMerger, PartWriter, background, part_path, part_status,
                                  parts_dir_for, read_fingerprint, remove_stale_temps)
from regaze.augment.targets import CHANGE_CODES, TargetSampler, check_range, label_range_rad
from regaze.errors import RegazeError

__all__ = ["augment", "AugmentPlan", "redirect_u8", "check_device", "COPIED_ARRAYS", "CHANGE_MODE_LEGEND"]

COPIED_ARRAYS = ("synth_identity", "synth_session")  # per-image rows carried over from the source
CHANGE_MODE_LEGEND = ["source", "gaze", "head", "both"]  # change_mode code -> meaning
_SPLIT_ATTRS = ("split", "subjects_train", "subjects_val", "subjects_test")
# Fault injection for the kill-and-resume tests: seconds to sleep after each computed chunk.
_DELAY_ENV = "REGAZE_AUGMENT_CHUNK_DELAY_S"


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
        return len(self.sources) * self.items_per_source

    def chunk(self, c: int) -> np.ndarray:
        return self.sources[c * self.chunk_sources:(c + 1) * self.chunk_sources]

    def chunk_items(self, c: int) -> int:
        return len(self.chunk(c)) * self.items_per_source


def check_device(device: str) -> None:
    """'auto', 'cpu', 'cuda', 'cuda:1', ... that this machine has; else RegazeError (not a torch traceback)."""
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise RegazeError(f"--device {device!r}: not a device name; expected auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RegazeError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}); use cpu or auto")


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


def augment(*, run, data, out, per_image: int = 4, targets: str = "kde", change: str = "both",
            gaze_range_rad: np.ndarray | None = None, head_range_rad: np.ndarray | None = None,
            include_source: bool = False, grid_steps: int = 0, split: str = "all", source_angles: str = "labels",
            seed: int = 0, batch_size: int = 64, chunk_size: int = 1024, which: str = "best", device: str = "auto",
            threads: int = 0, compression: str = "lzf", force: bool = False, progress: bool = True,
            compose: str = "auto", targets_from=None) -> dict:
    """Augment `data` with the redirector of `run` into `out` (see the module docstring).

    Ranges are (2, 2) [[pitch min, max], [yaw min, max]] radians; None = the label range of the target pool.
    targets_from: another labelled file whose labels (its train split when it has one) replace the sources'
    own as the target pool (kde) and the default ranges: e.g. grow a narrow dataset towards a wide one.
    Works at any world size (torchrun); only rank 0 merges. Returns a summary dict (rank 0: "out" is the path).
    """
    from regaze.data.dataset import open_dataset
    from regaze.model.pretrained import find_checkpoint, load_redirector

    if per_image < 1 or batch_size < 1 or chunk_size < 1:
        raise RegazeError(f"per-image, batch-size and chunk-size must be >= 1; got {per_image}, {batch_size}, {chunk_size}")
    if source_angles not in ("labels", "estimated"):
        raise RegazeError(f"source-angles must be 'labels' or 'estimated'; got {source_angles!r}")
    if compose not in ("auto", "decode", "eyes"):
        raise RegazeError(f"compose must be 'auto', 'decode' or 'eyes'; got {compose!r}")
    data, out = Path(data), Path(out)
    if out.suffix != ".h5":
        raise RegazeError(f"{out}: the output should be an .h5 file (regaze layout)")
    if out.exists() and data.exists() and out.resolve() == data.resolve():
        raise RegazeError(f"{out}: the output is the input; write to another path")
    check_device(device)
    ckpt = find_checkpoint(run, which=which)  # before anything heavy: a missing run fails first
    info = dist.init(device=device)
    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    log = (lambda msg: print(msg, file=sys.stderr)) if info.is_main else (lambda msg: None)

    # ---- the input, the sampler and the plan (identical on every rank)
    ds = open_dataset(data)
    if not ds.has_gaze_labels:
        raise RegazeError(f"{data}: has no gaze labels; augmentation needs labelled sources (gaze and head)")
    sources = np.arange(len(ds), dtype=np.int64) if split == "all" else ds.split_indices(split)
    if not len(sources):
        raise RegazeError(f"{data}: split '{split}' holds no images")
    labels = np.concatenate([ds.gaze, ds.head], axis=1)  # (N, 4) radians
    sel = labels[sources]
    pool, pool_info = sel, {}
    if targets_from is not None:
        pool, pool_info = _target_pool(targets_from)
    gaze_range = label_range_rad(pool[:, :2]) if gaze_range_rad is None else np.asarray(gaze_range_rad, np.float64)
    head_range = label_range_rad(pool[:, 2:]) if head_range_rad is None else np.asarray(head_range_rad, np.float64)
    check_range(gaze_range, name="gaze range")
    check_range(head_range, name="head range")
    sampler = TargetSampler(kind=targets, change=change, labels=pool, seed=seed, per_image=per_image,
                            gaze_range_rad=gaze_range, head_range_rad=head_range, grid_steps=grid_steps)
    plan = AugmentPlan(sources=sources, per_image=per_image, include_source=include_source,
                       chunk_sources=max(1, chunk_size // (per_image + int(include_source))))
    copied = [k for k in COPIED_ARRAYS if k in ds.array_keys]

    # ---- the model
    from regaze.checkpoint import file_sha256

    ckpt_sha = file_sha256(ckpt)
    model, ckpt_info = load_redirector(ckpt, device=info.device)
    if model.config.image_size != ds.size:
        raise RegazeError(f"{data}: images are {ds.size}x{ds.size} but the model ({ckpt}) works at "
                          f"{model.config.image_size}x{model.config.image_size}; convert the data first: "
                          f"regaze data convert {data} OUT.h5 --size {model.config.image_size}")

    params = {**sampler.describe(), "include_source": include_source, "split": split, "source_angles": source_angles,
              "chunk_sources": plan.chunk_sources, "sources": len(sources), "compose": compose, **pool_info}
    fingerprint = _fingerprint(ds=ds, sources=sources, ckpt_sha=ckpt_sha, params=params)
    attrs = {k: ds.attrs[k] for k in _SPLIT_ATTRS if k in ds.attrs}
    attrs.update({"source_file": os.fspath(data.resolve()), "source_layout": ds.layout, "source_images": len(ds),
                  "checkpoint": os.fspath(Path(ckpt).resolve()), "checkpoint_sha256": ckpt_sha,
                  "checkpoint_step": ckpt_info["step"], "augment_params": json.dumps(params),
                  "change_mode_legend": CHANGE_MODE_LEGEND, FINGERPRINT_ATTR: fingerprint})
    summary = {"out": None, "images": plan.total_items, "chunks": plan.n_chunks, "rank": info.rank,
               "world_size": info.world_size}

    # ---- already finished? (the same decision on every rank)
    parts_dir = parts_dir_for(out)
    if out.exists() and not force:
        if read_fingerprint(out) != fingerprint:
            raise RegazeError(f"{out}: already exists (from other data, checkpoint or arguments); pass --force to replace it")
        if info.is_main:
            import shutil

            shutil.rmtree(parts_dir, ignore_errors=True)  # a run killed between its rename and this clean-up
            log(f"{out}: already complete ({plan.total_items} images); nothing to do")
        dist.shutdown()
        return {**summary, "out": out if info.is_main else None, "computed_chunks": 0, "seconds": 0.0}
    if force and info.is_main and parts_dir.is_dir():
        for p in parts_dir.glob("part_*.h5"):
            if part_status(p, fingerprint=fingerprint) == "foreign":
                p.unlink()
    dist.barrier()

    # ---- this rank's missing chunks
    parts_dir.mkdir(parents=True, exist_ok=True)
    mine = list(range(info.rank, plan.n_chunks, info.world_size))
    status = {c: part_status(part_path(parts_dir, c), fingerprint=fingerprint) for c in mine}
    foreign = [c for c, s in status.items() if s == "foreign"]
    if foreign:
        raise RegazeError(f"{parts_dir}: holds parts of another augmentation (other data, checkpoint or arguments; "
                          f"first: {part_path(parts_dir, foreign[0]).name}); rerun with the same arguments, "
                          f"delete {parts_dir}, or pass --force to discard them")
    todo = [c for c in mine if status[c] == "missing"]
    done_items = sum(plan.chunk_items(c) for c in mine if status[c] == "done")
    log(f"augment: {len(sources)} sources x {plan.items_per_source} = {plan.total_items} images in {plan.n_chunks} "
        f"chunks over {info.world_size} process(es); {len(mine) - len(todo)} of this process's {len(mine)} chunks "
        f"already done; targets {targets}, change {change}, checkpoint {ckpt} (step {ckpt_info['step']})")

    def load(c: int) -> dict:
        return _load_chunk(ds, plan.chunk(c), sampler=sampler, include_source=include_source, copied=copied,
                           pin=info.device.type == "cuda")

    from tqdm import tqdm

    delay = float(os.environ.get(_DELAY_ENV, "0") or 0)
    merger = None
    if info.is_main:  # merges the parts in order while they are being computed
        merger = PartMerger(parts_dir=parts_dir, out=out, n_chunks=plan.n_chunks, chunk_items=plan.chunk_items,
                            fingerprint=fingerprint, size=ds.size, attrs=attrs, compression=compression)
    writer = PartWriter(size=ds.size)
    bar = tqdm(total=sum(plan.chunk_items(c) for c in mine), initial=done_items, unit="img", desc="augment",
               disable=not (progress and info.is_main), dynamic_ncols=True, file=sys.stderr)
    try:
        try:
            for pos, chunk in background(load, todo):
                c = todo[pos]
                if merger is not None and merger.error is not None:  # e.g. a foreign part: stop now, not at the end
                    raise merger.error
                images = _compute_chunk(model, chunk, change=change, batch_size=batch_size, device=info.device,
                                        use_labels=source_angles == "labels", compose=compose)
                remove_stale_temps(parts_dir, c)
                writer.submit(part_path(parts_dir, c), arrays={"images": images, **chunk["rows"]},
                              attrs={**attrs, "augment_chunk": c})
                bar.update(len(images))
                if delay:
                    time.sleep(delay)
        finally:
            bar.close()
            writer.close()  # finished chunks are kept even when something failed
            ds.close()
        seconds_compute = time.time() - t0
        summary.update(computed_chunks=len(todo), computed_images=sum(plan.chunk_items(c) for c in todo))

        # ---- every rank has written its parts: rank 0 merges the rest and publishes OUT
        dist.barrier()
        if merger is not None:
            n = merger.finish()
            summary["out"] = out
            log(f"wrote {out}: {n} images in {time.time() - t0:.1f} s")
    except BaseException:
        if merger is not None:
            merger.abort()  # OUT's temp file goes; the parts stay for the next run
        raise
    dist.shutdown()  # no barrier after the merge: a long merge must not time out the other ranks' wait
    summary.update(seconds=time.time() - t0, seconds_compute=seconds_compute)
    return summary


def _load_chunk(ds, src: np.ndarray, *, sampler: TargetSampler, include_source: bool, copied: list[str],
                pin: bool) -> dict:
    """Images (m, S, S, 3) of one chunk's sources and its item rows (source-major, copy first, then k = 0..K-1)."""
    images = ds.read_images(src)  # (m, S, S, 3) uint8 RGB
    labels = np.concatenate([ds.gaze[src], ds.head[src]], axis=1).astype(np.float32)  # (m, 4)
    k_list = ([-1] if include_source else []) + list(range(sampler.per_image))
    per = len(k_list)
    pos = np.repeat(np.arange(len(src)), per)  # (n,) row in this chunk's images
    sample_k = np.tile(np.array(k_list, dtype=np.int32), len(src))  # (n,)
    targets = np.empty((len(pos), 4), dtype=np.float32)  # (n, 4) gaze pitch, yaw, head pitch, yaw
    for j, i in enumerate(src):
        block = sampler.targets(source_index=int(i), source_labels=labels[j])  # (K, 4)
        targets[j * per:(j + 1) * per] = np.concatenate([labels[j:j + 1], block]) if include_source else block
    mode = np.where(sample_k < 0, CHANGE_CODES["source"], CHANGE_CODES[sampler.change]).astype(np.int8)
    rows = {"gaze": targets[:, :2], "head": targets[:, 2:], "subject": ds.subject[src][pos],
            "session": None if ds.session is None else ds.session[src][pos],
            "source_index": src[pos], "sample_k": sample_k, "change_mode": mode,
            "source_gaze": labels[pos, :2], "source_head": labels[pos, 2:]}
    for key in copied:
        rows[key] = ds.read_array(key, src)[pos]
    u8 = torch.from_numpy(images)
    return {"images": u8.pin_memory() if pin else u8, "pos": pos, "targets": targets, "sources": labels[pos],
            "copy": sample_k < 0, "rows": rows}


def _target_pool(path) -> tuple[np.ndarray, dict]:
    """Labels (n, 4) rad of another file (its train split when it has one) -> (pool, provenance)."""
    from regaze.data.dataset import open_dataset

    ref = open_dataset(path)
    if not ref.has_gaze_labels:
        raise RegazeError(f"{path}: --targets-from needs a labelled file (gaze and head)")
    try:
        rows, split = ref.split_indices("train"), "train"
    except RegazeError:
        rows, split = np.arange(len(ref)), "all"
    if not len(rows):
        raise RegazeError(f"{path}: --targets-from holds no labelled images")
    pool = np.concatenate([ref.gaze, ref.head], axis=1)[rows]  # (n, 4)
    return pool, {"targets_from": os.fspath(Path(path).resolve()), "targets_from_split": split,
                  "targets_from_images": int(len(rows))}


def _compute_chunk(model, chunk: dict, *, change: str, batch_size: int, device: torch.device,
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


def _fingerprint(*, ds, sources: np.ndarray, ckpt_sha: str, params: dict) -> str:
    """Hash of everything that determines the output: the input's labels, the checkpoint, the arguments."""
    h = hashlib.sha256()
    for arr in (ds.gaze, ds.head, ds.subject, sources):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({"n": len(ds), "size": ds.size, "checkpoint": ckpt_sha, **params}, sort_keys=True).encode())
    return h.hexdigest()[:16]
