"""Whole synthetic datasets: pose sampling, the dataset sampler (every render parameter of every image),
and the writer to the regaze layout with disjoint train / val / test subjects.

Within a session (several consecutive images of one subject) only gaze, head and the sensor-noise seed
change; light, background, blur and noise level change between sessions. Everything is drawn from one
seed before rendering, and rendering is batch-invariant, so the file does not depend on `workers`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from regaze.data.synth.camera import CAMERA_DISTANCE_MM, focal_px, head_rotation
from regaze.data.synth.params import IDENTITY_PARAMS, SEED_LIMIT, SESSION_PARAMS, sample_identities, sample_sessions
from regaze.data.synth.render import SIZES, render
from regaze.errors import RegazeError
from regaze.geometry import vector_to_pitchyaw

__all__ = ["PoseRanges", "sample_poses", "sample_dataset", "split_subjects", "write_synthetic_dataset",
           "GENERATOR_VERSION"]

GENERATOR_VERSION = 1  # bump when the same parameters would render differently


@dataclass(frozen=True)
class PoseRanges:
    """Sampling ranges, degrees. Head pitch/yaw uniform in +/- the given bounds (roll is 0); gaze uniform
    over the cap of directions within gaze_cone_deg of the head direction (the eyeballs' rotation limit)."""
    head_pitch_deg: float = 30.0
    head_yaw_deg: float = 45.0
    gaze_cone_deg: float = 35.0


def sample_poses(n: int, rng: np.random.Generator, ranges: PoseRanges = PoseRanges()):
    """n random (head, gaze) pairs -> float32 (n, 2), (n, 2) radians (pitch, yaw), normalized camera.

    The gaze label is the direction from the face centre to the target; its angle to the face direction
    -z_head is at most gaze_cone_deg."""
    head = np.deg2rad(np.stack([rng.uniform(-ranges.head_pitch_deg, ranges.head_pitch_deg, n),
                                rng.uniform(-ranges.head_yaw_deg, ranges.head_yaw_deg, n)], -1))
    cone = math.radians(ranges.gaze_cone_deg)
    cos_off = rng.uniform(math.cos(cone), 1.0, n)  # uniform on the spherical cap
    sin_off = np.sqrt(1.0 - cos_off ** 2)
    phi = rng.uniform(-math.pi, math.pi, n)
    g_head = np.stack([sin_off * np.cos(phi), sin_off * np.sin(phi), -cos_off], -1)  # head coords, -z = forward
    g_cam = np.einsum("nij,nj->ni", head_rotation(head), g_head)
    gaze = vector_to_pitchyaw(g_cam)
    return head.astype(np.float32), gaze.astype(np.float32)


def split_subjects(n_subjects: int, *, fractions=(0.7, 0.15, 0.15), rng: np.random.Generator):
    """Disjoint subject ids for train / val / test (each non-empty when its fraction > 0 and there are
    enough subjects). Returns three sorted int64 arrays."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or f.sum() <= 0:
        raise RegazeError(f"splits should be three non-negative fractions (train, val, test); got {fractions}")
    f = f / f.sum()
    counts = [int(round(n_subjects * f[1])), int(round(n_subjects * f[2]))]
    for k in range(2):
        if f[k + 1] > 0 and counts[k] == 0 and n_subjects >= 3:
            counts[k] = 1
    n_train = n_subjects - sum(counts)
    if f[0] > 0 and n_train < 1:
        raise RegazeError(f"{n_subjects} subjects cannot be split {tuple(fractions)} with a non-empty train split")
    order = rng.permutation(n_subjects)
    parts = np.split(order, [n_train, n_train + counts[0]])
    return tuple(np.sort(p).astype(np.int64) for p in parts)


@dataclass
class SyntheticSample:
    """Every render parameter of every image (N rows), plus ids and splits."""
    identity: np.ndarray  # (N, P_id) float32
    session_params: np.ndarray  # (N, P_s) float32, noise seed per image
    head: np.ndarray  # (N, 2) float32 rad
    gaze: np.ndarray  # (N, 2) float32 rad
    subject: np.ndarray  # (N,) int64
    session: np.ndarray  # (N,) int64, global session id
    splits: dict = field(default_factory=dict)  # subjects_train / subjects_val / subjects_test

    def __len__(self) -> int:
        return len(self.subject)


def sample_dataset(*, subjects: int, per_subject: int, per_session: int = 6, seed: int = 0,
                   splits=(0.7, 0.15, 0.15), ranges: PoseRanges = PoseRanges()) -> SyntheticSample:
    """Draw every parameter of a synthetic dataset from one seed (no rendering)."""
    if subjects < 1 or per_subject < 1 or per_session < 1:
        raise RegazeError(f"subjects, per_subject and per_session must be >= 1; got {subjects}, {per_subject}, "
                          f"{per_session}")
    rng = np.random.default_rng(seed)
    ids = sample_identities(subjects, rng)  # (S, P_id)
    n_sess = -(-per_subject // per_session)
    sessions = sample_sessions(subjects * n_sess, rng)  # (S * n_sess, P_s)
    n = subjects * per_subject
    subject = np.repeat(np.arange(subjects, dtype=np.int64), per_subject)
    within = np.tile(np.arange(per_subject), subjects) // per_session
    session = subject * n_sess + within
    head, gaze = sample_poses(n, rng, ranges)
    ses = sessions[session].copy()
    ses[:, SESSION_PARAMS.index("noise_seed")] = rng.integers(0, SEED_LIMIT, n).astype(np.float32)
    train, val, test = split_subjects(subjects, fractions=splits, rng=rng)
    return SyntheticSample(identity=ids[subject], session_params=ses, head=head, gaze=gaze, subject=subject,
                           session=session, splits={"subjects_train": train, "subjects_val": val,
                                                    "subjects_test": test})


def _render_rows(args):
    identity, session, head, gaze, size = args
    return render(identity=identity, session=session, head=head, gaze=gaze, size=size)


def _init_worker():
    import torch

    torch.set_num_threads(1)


def write_synthetic_dataset(path, *, subjects: int, per_subject: int, per_session: int = 6, size: int = 128,
                            seed: int = 0, splits=(0.7, 0.15, 0.15), ranges: PoseRanges = PoseRanges(),
                            workers: int | None = None, batch: int = 64, compression: str = "lzf",
                            overwrite: bool = False, progress: bool = True) -> Path:
    """Render a synthetic dataset into a regaze-layout file (atomic: nothing at `path` on failure).

    Per image: face_patch, face_gaze, face_head_pose, subject, session, synth_identity (P_id,),
    synth_session (P_s,). Attributes: subjects_train/val/test, the parameter names, seed, ranges,
    camera. workers: processes (default: min(cpu count, 4); 1 = in this process). Returns the path.
    """
    from tqdm import tqdm

    from regaze.data.writer import RegazeWriter

    path = Path(path)
    if size not in SIZES:
        raise RegazeError(f"--size must be one of {SIZES}; got {size}")
    if path.exists() and not overwrite:
        raise RegazeError(f"{path}: already exists; pass overwrite (--force) to replace it")
    sample = sample_dataset(subjects=subjects, per_subject=per_subject, per_session=per_session, seed=seed,
                            splits=splits, ranges=ranges)
    attrs = dict(sample.splits)
    attrs.update({
        "generator": "regaze.data.synth", "generator_version": GENERATOR_VERSION, "seed": int(seed),
        "synth_identity_params": list(IDENTITY_PARAMS), "synth_session_params": list(SESSION_PARAMS),
        "head_pitch_range_deg": ranges.head_pitch_deg, "head_yaw_range_deg": ranges.head_yaw_deg,
        "gaze_cone_deg": ranges.gaze_cone_deg, "per_session": per_session,
        "camera_distance_mm": CAMERA_DISTANCE_MM, "camera_focal_px": focal_px(size),
        "gaze_definition": "unit vector from the face centre (midpoint of eye-corner centre and mouth-corner "
                           "centre) to the 3-D gaze target, normalized camera",
    })
    n = len(sample)
    jobs = [(sample.identity[i:i + batch], sample.session_params[i:i + batch], sample.head[i:i + batch],
             sample.gaze[i:i + batch], size) for i in range(0, n, batch)]
    workers = min(os.cpu_count() or 1, 4) if workers is None else max(1, int(workers))
    workers = min(workers, len(jobs))
    with RegazeWriter(path, size=size, attrs=attrs, compression=compression) as writer, \
            tqdm(total=n, unit="img", desc=f"synth {path.name}", disable=not progress) as bar:
        if workers == 1:
            results = map(_render_rows, jobs)
            pool = None
        else:
            import multiprocessing as mp

            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap(_render_rows, jobs)  # ordered
        try:
            for k, images in enumerate(results):
                rows = slice(k * batch, k * batch + len(images))
                writer.append(images=images, gaze=sample.gaze[rows], head=sample.head[rows],
                              subject=sample.subject[rows], session=sample.session[rows],
                              synth_identity=sample.identity[rows], synth_session=sample.session_params[rows])
                bar.update(len(images))
        finally:
            if pool is not None:
                pool.terminate()
    return path
