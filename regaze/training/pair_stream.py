"""Each training step's pairs, made ahead of the step: in the training process or in DataLoader workers.

    maker = StepBatchMaker(source=source, sampler=sampler, seed=cfg.seed, rank=rank, batch_size=16)
    stream = StepBatches(maker, start_step=step, stop_step=cfg.max_steps, workers=2, prefetch=4)
    host = stream.next(step)                   # the batch of `step`: uint8 images, float32 labels
    batch, random_targets = on_device(host, device=device)

Step s's batch depends only on (seed, rank, s): its numpy generator (`step_rng`) draws the pairs and then,
for loss.guide_random, the random targets, in that order. So the pairs are the same with 0, 1 or 8
workers, `--resume` at step s replays them, and each rank draws from its own anchor shard (PairSampler).

With W workers, worker w makes steps start+w, start+w+W, ...; torch's DataLoader asks its workers in
turn and hands their outputs back in that order, i.e. in step order (`next` checks it). A worker reads
its images through its own HDF5 handles (GazeDataset reopens them in a new process id; the training
process closes its own before the workers fork), or from the training process's in-memory cache, which
forked workers share without copying. A batch travels as one uint8 image tensor (4x less than float; one
shared-memory segment per batch, into pinned memory on CUDA) and NumPy labels (pickled with it: a segment
per small tensor made one worker 30 % slower, benchmarks/pair_loading.py); the images become [-1, 1]
floats on the device.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import numpy as np
import torch

from regaze.training.batches import ImageSource

__all__ = ["step_rng", "step_torch_generator", "StepBatchMaker", "StepBatches", "on_device"]


def step_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The numpy generator of one step of one rank: the pairs, then loss.guide_random's targets."""
    return np.random.default_rng(np.random.SeedSequence([seed, rank, step]))


def step_torch_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The torch generator of one step of one rank: the per-sample target choice (claim 4)."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(1)
    return torch.Generator().manual_seed(int(state[0]))


@dataclass
class StepBatchMaker:
    """step -> that step's batch on the host. Picklable (for spawned workers); cheap to fork.

    random_pool: the training indices whose labels serve as loss.guide_random's targets; None = not drawn."""

    source: ImageSource
    sampler: object  # PairSampler
    seed: int
    rank: int
    batch_size: int
    random_pool: np.ndarray | None = None

    def __call__(self, step: int) -> dict:
        rng = step_rng(self.seed, self.rank, step)
        pairs = self.sampler.sample(self.batch_size, rng=rng)  # (B, 2) int64
        a, b = pairs[:, 0], pairs[:, 1]
        ds = self.source.dataset
        host = {
            "step": step, "pairs": pairs,
            "images": torch.from_numpy(self.source.get_uint8(np.concatenate([a, b]))),  # (2B, S, S, 3) uint8: X_a then X_b
            "labels": np.stack([ds.gaze[a], ds.head[a], ds.gaze[b], ds.head[b]]).astype(np.float32),  # (4, B, 2) rad
        }
        if self.random_pool is not None:
            pick = np.sort(rng.choice(self.random_pool, size=self.batch_size))
            host["random_labels"] = np.stack([ds.gaze[pick], ds.head[pick]]).astype(np.float32)  # (2, B, 2) rad: gaze, head
        return host


class _StepRange(torch.utils.data.IterableDataset):
    """The batches of steps [start, stop), split across DataLoader workers by step (see the module docstring)."""

    def __init__(self, maker: StepBatchMaker, *, start: int, stop: int):
        super().__init__()
        self.maker, self.start, self.stop = maker, int(start), int(stop)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + worker, self.stop, workers):
            yield self.maker(step)


class StepBatches:
    """The host batches of steps start_step, start_step + 1, ... < stop_step, in order; `close` ends the workers.

    workers=0 makes each batch when it is asked for, in this process; workers > 0 makes them in that many
    DataLoader worker processes, each `prefetch` batches ahead, into pinned memory when `pin_memory`."""

    def __init__(self, maker: StepBatchMaker, *, start_step: int, stop_step: int, workers: int = 0,
                 prefetch: int = 4, pin_memory: bool = False):
        self.workers = int(workers)
        steps = _StepRange(maker, start=start_step, stop=stop_step)
        if self.workers == 0:
            self._it = iter(steps)
            return
        maker.source.dataset.close()  # no HDF5 handle of this process crosses the fork
        fork = "fork" in multiprocessing.get_all_start_methods()  # forked workers share the image cache
        loader = torch.utils.data.DataLoader(
            steps, batch_size=None, collate_fn=_as_is, num_workers=self.workers, prefetch_factor=int(prefetch), pin_memory=pin_memory,
            multiprocessing_context="fork" if fork else None)
        self._it = iter(loader)

    def next(self, step: int) -> dict:
        host = next(self._it)
        if int(host["step"]) != step:  # the order argument of the module docstring, checked
            raise RuntimeError(f"pair stream out of order: expected step {step}, got {int(host['step'])}")
        return host

    def close(self) -> None:
        self._it = None  # a DataLoader iterator shuts its workers down when it is freed


def _as_is(host: dict) -> dict:
    """The DataLoader's collate function: the batch as made (its default would turn the NumPy labels into tensors)."""
    return host


def on_device(host: dict, *, device: torch.device) -> tuple[dict, dict | None]:
    """A host batch -> (the pair batch of PairForward, loss.guide_random's targets or None) on `device`.

    Images: (2B, S, S, 3) uint8 -> x_a, x_b (B, 3, S, S) float in [-1, 1], channels-last in memory as read."""
    non_blocking = device.type == "cuda"
    x = host["images"].to(device, non_blocking=non_blocking).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (2B, 3, S, S)
    x_a, x_b = x.chunk(2)
    labels = torch.from_numpy(host["labels"]).to(device)  # (4, B, 2) rad
    batch = {"x_a": x_a, "x_b": x_b, **dict(zip(("gaze_a", "head_a", "gaze_b", "head_b"), labels.unbind(0)))}
    random_targets = None
    if "random_labels" in host:
        random_targets = dict(zip(("gaze", "head"), torch.from_numpy(host["random_labels"]).to(device).unbind(0)))  # (B, 2) rad
    return batch, random_targets
