"""Dataset augmentation (DESIGN: the product's purpose): re-render every source image K times with new gaze
and/or head angles drawn from the data's own label distribution, a range or a grid, always inside the data's
range (targets.py), and write a labelled regaze-layout file with per-image provenance.

    regaze augment --run RUN_DIR --data IN.h5 --out OUT.h5 --per-image 4 --targets kde        # train split
    torchrun --nproc_per_node=N -m regaze.cli augment --run-dir RUN_DIR --data IN.h5 --out OUT.h5 ...

Sources are the `train` split's images by default: augmenting validation or test subjects leaks them into
evaluation, so `split="all"` is an explicit choice. The work is a fixed list: the selected source images in
index order, each giving K items (plus a copy of itself with --include-source); consecutive sources form
chunks of about --chunk-size images (chunks.py). Targets come from a generator seeded by (seed, source
index), so nothing depends on batches, chunks, processes or restarts; targets out of range are left out
before any image is made. Chunk c is computed by rank c % world and stored as its own part file (parts.py);
rank 0 appends the parts in order to OUT's temporary file as they appear and, once every part exists,
renames it to OUT and removes the parts. A run killed at any moment and started again recomputes only the
missing chunks; the same seed gives the same file whatever the number of processes.

With `read_angles` (the CLI's --estimator: an independent estimator, residuals.py) every written image is
read back: the reading and its residual to the label are stored per sample, and `max_residual_deg` leaves
out redirected samples whose image does not show their label.

Pipeline per process: a reader thread loads the next chunk's images and targets while the model redirects
the current one in batches (bf16 autocast on CUDA), a writer thread stores finished parts, and on rank 0 a
merger thread copies them into OUT.

Output keys: face_patch, face_gaze, face_head_pose (the requested target angles: the new labels), subject
and session (the source's), source_index (N,) (row in IN), sample_k (N,) (-1 for a source copy),
change_mode (N,) int8 (legend in attribute change_mode_legend: 0 source copy, 1 gaze, 2 head, 3 both),
source_gaze / source_head (N, 2) (the source's labels), synth_identity / synth_session rows when IN has them
(so the exact targets of synthetic data can be rendered), and with an estimator estimated_gaze /
estimated_head (N, 2) rad and residual_gaze_deg / residual_head_deg (N,). Attributes: the input's split
attributes and framing (camera_focal_px, camera_distance_mm, camera_framing), source_file, checkpoint,
checkpoint_sha256, checkpoint_step, model ("run", or "reference" for the shipped model), augment_params (JSON: targets, ranges, eye range, estimator, ...),
augment_fingerprint, and the counts augment_planned_images, augment_left_out_of_range,
augment_left_out_residual.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from regaze import dist
from regaze.augment.chunks import AugmentPlan, compute_chunk, load_chunk, redirect_u8
from regaze.augment.parts import (FINGERPRINT_ATTR, PART_COUNT_ATTRS, PartMerger, PartWriter, background, part_path,
                                  part_status, parts_dir_for, read_fingerprint, remove_stale_temps)
from regaze.augment.residuals import read_residuals, residual_keep
from regaze.augment.targets import TargetSampler, check_range, label_range_rad
from regaze.data.readers.cameras import FRAMING_ATTRS
from regaze.errors import RegazeError

__all__ = ["augment", "AugmentPlan", "redirect_u8", "check_device", "COPIED_ARRAYS", "CHANGE_MODE_LEGEND"]

COPIED_ARRAYS = ("synth_identity", "synth_session")  # per-image rows carried over from the source
CHANGE_MODE_LEGEND = ["source", "gaze", "head", "both"]  # change_mode code -> meaning
_SPLIT_ATTRS = ("split", "subjects_train", "subjects_val", "subjects_test")
# Fault injection for the kill-and-resume tests: seconds to sleep after each computed chunk.
_DELAY_ENV = "REGAZE_AUGMENT_CHUNK_DELAY_S"


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


def augment(*, run, data, out, per_image: int = 4, targets: str = "kde", change: str = "both",
            gaze_range_rad: np.ndarray | None = None, head_range_rad: np.ndarray | None = None,
            eye_range_deg: float | None = None, include_source: bool = False, grid_steps: int = 0,
            split: str = "train", source_angles: str = "labels", seed: int = 0, batch_size: int = 64,
            chunk_size: int = 1024, which: str = "best", device: str = "auto", threads: int = 0,
            compression: str = "lzf", force: bool = False, progress: bool = True, compose: str = "auto",
            targets_from=None, read_angles=None, estimator_info: dict | None = None,
            max_residual_deg: float | None = None) -> dict:
    """Augment `data` with the redirector of `run` into `out` (see the module docstring).

    Ranges are (2, 2) [[pitch min, max], [yaw min, max]] radians; None = the label range of the target pool.
    eye_range_deg: the largest gaze-to-face-direction angle of a target; None = the pool's own range.
    split: "train" (default), "val", "test" or "all" (explicit: augmenting held-out subjects leaks them).
    targets_from: another labelled file whose labels (its train split when it has one) replace the sources'
    own as the target pool (kde) and the default ranges: e.g. grow a narrow dataset towards a wide one.
    read_angles: images_u8 (n, S, S, 3) -> {"gaze", "head": (n, 2) rad}, an independent estimator (residuals.py);
    estimator_info: its plain-data description (path, checksum, image_size, ...) for provenance and the
    fingerprint; max_residual_deg: leave out redirected samples whose gaze or head residual exceeds it.
    Works at any world size (torchrun); only rank 0 merges. Returns a summary dict (rank 0: "out" is the path;
    "images" = images written, "planned", "left_out_of_range", "left_out_residual").
    """
    from regaze.data.dataset import open_dataset
    from regaze.model.pretrained import find_checkpoint, is_reference, load_redirector

    if per_image < 1 or batch_size < 1 or chunk_size < 1:
        raise RegazeError(f"per-image, batch-size and chunk-size must be >= 1; got {per_image}, {batch_size}, {chunk_size}")
    if source_angles not in ("labels", "estimated"):
        raise RegazeError(f"source-angles must be 'labels' or 'estimated'; got {source_angles!r}")
    if compose not in ("auto", "decode", "eyes"):
        raise RegazeError(f"compose must be 'auto', 'decode' or 'eyes'; got {compose!r}")
    if split not in ("train", "val", "test", "all"):
        raise RegazeError(f"split must be 'train', 'val', 'test' or 'all'; got {split!r}")
    if max_residual_deg is not None:
        if read_angles is None:
            raise RegazeError("--max-residual-deg needs an estimator to read the images (--estimator DIR)")
        if not (np.isfinite(max_residual_deg) and max_residual_deg > 0):
            raise RegazeError(f"--max-residual-deg must be a positive number of degrees; got {max_residual_deg}")
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
    sources = np.arange(len(ds), dtype=np.int64) if split == "all" else _split_sources(ds, split)
    if not len(sources):
        raise RegazeError(f"{data}: split '{split}' holds no images")
    est_size = (estimator_info or {}).get("image_size")
    if read_angles is not None and est_size is not None and int(est_size) != ds.size:
        raise RegazeError(f"the estimator was trained on {est_size}² images but {data} holds {ds.size}²; "
                          f"train an estimator at {ds.size}² (regaze estimator train)")
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
                            gaze_range_rad=gaze_range, head_range_rad=head_range, grid_steps=grid_steps,
                            limit_deg=eye_range_deg)
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
              "chunk_sources": plan.chunk_sources, "sources": len(sources), "compose": compose, **pool_info,
              "estimator": None if read_angles is None else dict(estimator_info or {"given": "read_angles"}),
              "max_residual_deg": max_residual_deg}
    fingerprint = _fingerprint(ds=ds, sources=sources, ckpt_sha=ckpt_sha, params=params)
    attrs = {k: ds.attrs[k] for k in (*_SPLIT_ATTRS, *FRAMING_ATTRS) if k in ds.attrs}
    if split != "all":
        attrs["split"] = split
    attrs.update({"source_file": os.fspath(data.resolve()), "source_layout": ds.layout, "source_images": len(ds),
                  "checkpoint": os.fspath(Path(ckpt).resolve()), "checkpoint_sha256": ckpt_sha,
                  "checkpoint_step": ckpt_info["step"], "augment_params": json.dumps(params),
                  "model": "reference (trained on synthetic faces)" if is_reference(ckpt) else "run",
                  "change_mode_legend": CHANGE_MODE_LEGEND, FINGERPRINT_ATTR: fingerprint})
    summary = {"out": None, "images": None, "planned": plan.total_items, "chunks": plan.n_chunks, "rank": info.rank,
               "world_size": info.world_size}

    # ---- already finished? (the same decision on every rank)
    parts_dir = parts_dir_for(out)
    if out.exists() and not force:
        if read_fingerprint(out) != fingerprint:
            raise RegazeError(f"{out}: already exists (from other data, checkpoint or arguments); pass --force to replace it")
        if info.is_main:
            import shutil

            shutil.rmtree(parts_dir, ignore_errors=True)  # a run killed between its rename and this clean-up
            log(f"{out}: already complete; nothing to do")
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
    log(f"augment: {len(sources)} sources x {plan.items_per_source} = {plan.total_items} planned images in {plan.n_chunks} "
        f"chunks over {info.world_size} process(es); {len(mine) - len(todo)} of this process's {len(mine)} chunks "
        f"already done; targets {targets}, change {change}, checkpoint {ckpt} (step {ckpt_info['step']})")

    def load(c: int) -> dict:
        return load_chunk(ds, plan.chunk(c), sampler=sampler, include_source=include_source, copied=copied,
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
                images = compute_chunk(model, chunk, change=change, batch_size=batch_size, device=info.device,
                                       use_labels=source_angles == "labels", compose=compose)
                rows, left_out_residual = chunk["rows"], 0
                if read_angles is not None:  # what an independent estimator reads in each written image
                    rows = {**rows, **read_residuals(read_angles, images, gaze=rows["gaze"], head=rows["head"])}
                    if max_residual_deg is not None:
                        keep = residual_keep(rows, copy=chunk["copy"], max_residual_deg=max_residual_deg)  # (n,)
                        left_out_residual = int((~keep).sum())
                        images = images[keep]
                        rows = {k: None if v is None else v[keep] for k, v in rows.items()}
                counts = {"planned": chunk["planned"], "out_of_range": chunk["out_of_range"],
                          "residual": left_out_residual}
                remove_stale_temps(parts_dir, c)
                writer.submit(part_path(parts_dir, c), arrays={"images": images, **rows},
                              attrs={**attrs, "augment_chunk": c,
                                     **{PART_COUNT_ATTRS[k]: v for k, v in counts.items()}})
                bar.update(chunk["planned"])
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
            totals = merger.finish()
            summary.update(out=out, images=totals["images"], left_out_of_range=totals["out_of_range"],
                           left_out_residual=totals["residual"])
            residual = ("" if max_residual_deg is None else f", {totals['residual']} images whose estimated angles "
                        f"missed their label by more than {max_residual_deg:g}°")
            log(f"wrote {out}: {totals['images']} of {plan.total_items} planned images in {time.time() - t0:.1f} s; "
                f"left out: {totals['out_of_range']} targets outside the ranges or past the eye range "
                f"({sampler.limit_deg:.1f}°){residual}")
    except BaseException:
        if merger is not None:
            merger.abort()  # OUT's temp file goes; the parts stay for the next run
        raise
    dist.shutdown()  # no barrier after the merge: a long merge must not time out the other ranks' wait
    summary.update(seconds=time.time() - t0, seconds_compute=seconds_compute)
    return summary


def _split_sources(ds, split: str) -> np.ndarray:
    """The sources of `split`, or a RegazeError that says how to give the split (or choose all)."""
    try:
        return ds.split_indices(split)
    except RegazeError as e:
        raise RegazeError(f"{e}. Augmentation uses the '{split}' subjects only (augmenting validation or test "
                          f"subjects leaks them into evaluation): give the file subject splits (regaze data convert "
                          f"--val-subjects/--test-subjects) or pass --split all to augment every image") from e


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


def _fingerprint(*, ds, sources: np.ndarray, ckpt_sha: str, params: dict) -> str:
    """Hash of everything that determines the output: the input's labels, the checkpoint, the arguments."""
    h = hashlib.sha256()
    for arr in (ds.gaze, ds.head, ds.subject, sources):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({"n": len(ds), "size": ds.size, "checkpoint": ckpt_sha, **params}, sort_keys=True).encode())
    return h.hexdigest()[:16]
