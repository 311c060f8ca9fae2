"""The pair stream (regaze/training/pair_stream.py): a step's batch depends on (seed, rank, step) only, so
DataLoader workers, the in-memory cache or reading from the files, and a resume all give the same pairs,
in step order; the loop trains to the same losses with and without workers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from regaze.config import TrainConfig, config_from_dict
from regaze.data.dataset import open_dataset
from regaze.data.pairs import PairSampler
from regaze.geometry import angular_error_deg
from regaze.training.batches import ImageSource
from regaze.training.loop import train
from regaze.training.pair_stream import StepBatches, StepBatchMaker, on_device

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import TINY_MODEL, write_tiny_dataset  # noqa: E402

TINY = {"model": TINY_MODEL, "batch_size": 4, "log_every": 1, "val_every": 100, "ckpt_every": 3,
        "val_pairs": 4, "threads": 1}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5")


def _maker(path, *, cache_mb: int, random_pool: bool = False, rank: int = 0, world_size: int = 1) -> StepBatchMaker:
    ds = open_dataset(path)
    train_idx = ds.split_indices("train")
    sampler = PairSampler(ds.gaze, ds.head, ds.subject, ds.session, indices=train_idx, seed=5, rank=rank,
                          world_size=world_size)
    return StepBatchMaker(source=ImageSource(ds, train_idx, cache_mb=cache_mb), sampler=sampler, seed=5, rank=rank,
                          batch_size=6, random_pool=train_idx if random_pool else None)


def _steps(maker, *, start: int, stop: int, workers: int) -> list[dict]:
    stream = StepBatches(maker, start_step=start, stop_step=stop, workers=workers, prefetch=2)
    try:
        return [stream.next(s) for s in range(start, stop)]
    finally:
        stream.close()


def test_a_steps_batch_is_its_pairs_images_and_labels(tiny_data):
    maker = _maker(tiny_data, cache_mb=0, random_pool=True)
    host = maker(7)
    ds = maker.source.dataset
    pairs = host["pairs"]  # (B, 2)
    assert pairs.shape == (6, 2) and host["step"] == 7
    assert (ds.subject[pairs[:, 0]] == ds.subject[pairs[:, 1]]).all()
    differ = (angular_error_deg(ds.gaze[pairs[:, 0]], ds.gaze[pairs[:, 1]]) >= 5) | \
             (angular_error_deg(ds.head[pairs[:, 0]], ds.head[pairs[:, 1]]) >= 5)
    assert differ.all()
    assert host["images"].dtype == torch.uint8 and host["images"].shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(host["images"][6:].numpy(), ds.read_images(pairs[:, 1]))
    assert host["random_labels"].shape == (2, 6, 2)
    again = maker(7)
    assert all(np.array_equal(np.asarray(host[k]), np.asarray(again[k])) for k in host)
    assert not np.array_equal(maker(8)["pairs"], pairs)

    batch, random_targets = on_device(host, device=torch.device("cpu"))
    assert batch["x_a"].shape == (6, 3, 32, 32) and batch["x_a"].dtype == torch.float32
    expected = torch.from_numpy(ds.read_images(pairs[:, 0])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    torch.testing.assert_close(batch["x_a"], expected, rtol=0, atol=0)
    torch.testing.assert_close(batch["gaze_b"], torch.from_numpy(ds.gaze[pairs[:, 1]]), rtol=0, atol=0)
    torch.testing.assert_close(batch["head_a"], torch.from_numpy(ds.head[pairs[:, 0]]), rtol=0, atol=0)
    assert set(random_targets) == {"gaze", "head"} and random_targets["head"].shape == (6, 2)


@pytest.mark.isolated(timeout=120)
def test_workers_and_the_cache_give_the_same_batches_in_step_order(tiny_data):
    in_process = _steps(_maker(tiny_data, cache_mb=64), start=3, stop=13, workers=0)  # a resume at step 3
    from_files = _steps(_maker(tiny_data, cache_mb=0), start=3, stop=13, workers=2)
    assert [h["step"] for h in from_files] == list(range(3, 13))
    for a, b in zip(in_process, from_files):
        for key in a:
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key


@pytest.mark.isolated(timeout=120)
def test_ranks_draw_from_disjoint_shards(tiny_data):
    anchors = []
    for rank in (0, 1):
        maker = _maker(tiny_data, cache_mb=0, rank=rank, world_size=2)
        drawn = np.concatenate([h["pairs"][:, 0] for h in _steps(maker, start=0, stop=20, workers=1)])
        assert np.isin(drawn, maker.sampler.anchors).all()
        anchors.append(set(drawn.tolist()))
    assert not anchors[0] & anchors[1]


def _losses(run: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if '"total"' in line]
    return [(r["step"], r["total"], r["rec"]) for r in rows]


@pytest.mark.isolated(timeout=300)
def test_the_loop_trains_to_the_same_losses_with_workers_from_the_files(tiny_data, tmp_path):
    cfg = lambda **kw: config_from_dict(TrainConfig, {**TINY, "max_steps": 6, **kw})  # noqa: E731
    train(cfg(), data=tiny_data, out=tmp_path / "plain", progress=False)
    streamed = tmp_path / "streamed"
    train(cfg(max_steps=3, data={"loader_workers": 2, "cache_mb": 0}), data=tiny_data, out=streamed, progress=False)
    train(cfg(data={"loader_workers": 2, "cache_mb": 0}), data=tiny_data, out=streamed, resume=True, progress=False)
    plain, resumed = _losses(tmp_path / "plain"), _losses(streamed)
    assert [r[0] for r in plain] == [1, 2, 3, 4, 5, 6] == [r[0] for r in resumed]
    assert plain == resumed
