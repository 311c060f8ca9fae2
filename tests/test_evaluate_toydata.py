"""A tiny analytic face renderer with the synthetic renderer's contract, and toy datasets built with it, for
the estimator and evaluation tests (fast enough to train an estimator in seconds).

    toy_render(identity=(n, 5), session=(n, 4), head=(n, 2), gaze=(n, 2), size=32) -> uint8 (n, S, S, 3)

A coloured disk (the face) moves with head pose; two white eyes sit on it, and their dark pupils move with
gaze relative to the eyes; the background colour and the sensor-noise seed are the session. Other test
modules import from here (pytest puts tests/ on sys.path).
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from regaze.data.writer import write_regaze

ANGLE_MAX_RAD = 0.5


def toy_render(*, identity, session, head, gaze, size: int = 32) -> np.ndarray:
    identity, session = np.atleast_2d(identity).astype(np.float64), np.atleast_2d(session).astype(np.float64)
    head, gaze = np.atleast_2d(head).astype(np.float64), np.atleast_2d(gaze).astype(np.float64)
    n = len(identity)
    c = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    v, u = np.meshgrid(c, c, indexing="ij")  # (S, S)
    px = size / 2  # pixels per unit

    def disk(cx, cy, r):  # anti-aliased coverage (n, S, S)
        d = np.sqrt((u[None] - cx[:, None, None]) ** 2 + (v[None] - cy[:, None, None]) ** 2)
        return np.clip((r[:, None, None] - d) * px + 0.5, 0, 1)

    img = np.broadcast_to(session[:, None, None, :3], (n, size, size, 3)).copy()
    fx, fy = 0.45 * head[:, 1], -0.45 * head[:, 0]  # face centre follows head yaw / pitch
    face = disk(fx, fy, identity[:, 4])
    img = img * (1 - face[..., None]) + identity[:, None, None, :3] * face[..., None]
    for side in (-1.0, 1.0):
        ex, ey = fx + side * identity[:, 3], fy - 0.18
        eye = disk(ex, ey, np.full(n, 0.24))
        img = img * (1 - eye[..., None]) + 0.95 * eye[..., None]
        pupil = disk(ex + 0.4 * gaze[:, 1], ey - 0.4 * gaze[:, 0], np.full(n, 0.09)) * eye
        img = img * (1 - pupil[..., None]) + 0.05 * pupil[..., None]
    for k in range(n):  # sensor noise, seeded per image by its session row
        img[k] += np.random.default_rng(int(session[k, 3])).normal(0, 0.01, img[k].shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def toy_arrays(*, subjects: int, per_session: int, sessions: int, seed: int, size: int = 32,
               angle_max_rad: float = ANGLE_MAX_RAD):
    """Labels, parameters and images of a toy dataset -> dict of arrays (images via toy_render)."""
    rng = np.random.default_rng(seed)
    n = subjects * sessions * per_session
    ident = np.concatenate([rng.uniform(0.35, 0.85, (subjects, 3)), rng.uniform(0.24, 0.34, (subjects, 1)),
                            rng.uniform(0.62, 0.78, (subjects, 1))], 1).astype(np.float32)
    sess = np.concatenate([rng.uniform(0.0, 0.3, (subjects * sessions, 3)),
                           rng.integers(0, 2**24, (subjects * sessions, 1))], 1).astype(np.float32)
    subject = np.repeat(np.arange(subjects), sessions * per_session)
    session = np.repeat(np.arange(subjects * sessions), per_session)
    synth_session = sess[session].copy()
    synth_session[:, 3] = rng.integers(0, 2**24, n)  # per-image noise seed, as the real generator does
    gaze = rng.uniform(-angle_max_rad, angle_max_rad, (n, 2)).astype(np.float32)
    head = rng.uniform(-angle_max_rad, angle_max_rad, (n, 2)).astype(np.float32)
    images = toy_render(identity=ident[subject], session=synth_session, head=head, gaze=gaze, size=size)
    return {"images": images, "gaze": gaze, "head": head, "subject": subject, "session": session,
            "synth_identity": ident[subject], "synth_session": synth_session}


def write_toy_dataset(path, *, subjects: int = 12, per_session: int = 10, sessions: int = 2, seed: int = 0,
                      size: int = 32, split: dict | None = None, synthetic: bool = True, **kw):
    """A regaze file of toy faces. split: {"train": ids, "val": ids, "test": ids} or None (no split info)."""
    a = toy_arrays(subjects=subjects, per_session=per_session, sessions=sessions, seed=seed, size=size, **kw)
    attrs = {}
    if split:
        attrs = {f"subjects_{k}": np.asarray(v, dtype=np.int64) for k, v in split.items()}
    extra = {"synth_identity": a["synth_identity"], "synth_session": a["synth_session"]} if synthetic else {}
    write_regaze(path, images=a["images"], gaze=a["gaze"], head=a["head"], subject=a["subject"],
                 session=a["session"], attrs=attrs, **extra)
    return path


def test_toy_render_is_deterministic_and_responds_to_angles():
    a = toy_arrays(subjects=1, per_session=2, sessions=1, seed=0)
    again = toy_render(identity=a["synth_identity"], session=a["synth_session"], head=a["head"], gaze=a["gaze"])
    assert np.array_equal(again, a["images"])
    moved = toy_render(identity=a["synth_identity"], session=a["synth_session"], head=a["head"], gaze=-a["gaze"])
    diff = np.abs(moved.astype(int) - a["images"].astype(int)).max(-1)
    assert diff.max() > 50 and (diff > 3).mean() < 0.1  # only the pupils moved


TOY_SPLIT = {"train": list(range(10)), "val": [10, 11], "test": [12, 13, 14, 15]}
# The toy estimator trains for seconds, not to the 64² target: its gaze error is ~11° (chance ~22°).
TOY_MAX_VAL_ERROR_DEG = 15.0


@functools.lru_cache(maxsize=None)
def toy_setup():
    """(dataset path, estimator directory): a 16-subject toy file with train/val/test splits and an estimator
    trained on it (~10 s) in a child process (a crash there fails the tests that need it, not the suite),
    made once per test session and shared by the test modules."""
    from isolation import call_in_child

    root = Path(tempfile.mkdtemp(prefix="regaze-toy-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    path = write_toy_dataset(root / "toy.h5", subjects=16, per_session=40, sessions=2, seed=0, split=TOY_SPLIT)
    call_in_child("test_evaluate_toydata", "train_and_save_toy_estimator",
                  kwargs={"data": str(path), "out": str(root / "estimator")}, timeout_s=300)
    return path, root / "estimator"


def toy_context() -> dict:
    """toy_setup's file and estimator, opened: {"data", "est_dir", "ds", "est", "info"} (for module fixtures)."""
    from regaze.data.dataset import open_dataset
    from regaze.evaluation.estimator.store import load_estimator

    data, est_dir = toy_setup()
    est, info = load_estimator(est_dir, max_val_error_deg=TOY_MAX_VAL_ERROR_DEG)
    return {"data": data, "est_dir": est_dir, "ds": open_dataset(data), "est": est, "info": info}


def toy_evaluate(toy: dict, model, *, n_pairs: int = 16, **kw) -> dict:
    """evaluate_model on the toy file's held-out pairs (few pairs: image_metrics.ssim, in float64, dominates the
    evaluation time on the CPU)."""
    from regaze.evaluation.protocol import evaluate_model

    return evaluate_model(model, dataset=toy["ds"], estimator=toy["est"], estimator_info=toy["info"],
                          n_pairs=n_pairs, seed=0, batch_size=n_pairs, renderer=toy_render, progress=False, **kw)


def mean_of(result: dict, path: str) -> float:
    """The mean of summary row `path` ("a/b/c") of an evaluation result."""
    node = result["summary"]
    for part in path.split("/"):
        node = node[part]
    return node["mean"]


def train_and_save_toy_estimator(*, data: str, out: str) -> None:
    """Train the toy estimator on the toy file `data` and save it to the directory `out` (toy_setup's child)."""
    import torch

    from regaze.data.dataset import open_dataset
    from regaze.evaluation.estimator.store import save_estimator

    torch.set_num_threads(1)  # deterministic, and faster than 2 contended threads for this tiny network
    ds = open_dataset(data)
    model, record = _train_toy_estimator(ds)
    save_estimator(Path(out), model=model, record=record, data=data)


def _train_toy_estimator(ds):
    from regaze.evaluation.estimator.network import EstimatorConfig
    from regaze.evaluation.estimator.trainer import EstimatorTrainConfig, LabelledImages, train_estimator

    return train_estimator(
        train=LabelledImages.from_dataset(ds, ds.split_indices("train")),
        val=LabelledImages.from_dataset(ds, ds.split_indices("val")),
        config=EstimatorConfig(width=8, hidden=64, embed_dim=16),
        train_config=EstimatorTrainConfig(epochs=12, batch_size=32, lr=3e-3, identity_weight=0.3),
        progress=False, log=lambda msg: None)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread in the estimator / evaluation tests: on a shared two-core machine, two threads
    spin against other processes and small convolutions run up to 10x slower (measured on SSIM)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
