"""Gaze in both frames (issue 12, item 4): gaze errors in the camera frame and head-relative tell "the gaze
followed the head" and a wrong head apart from a wrong gaze."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from regaze.data.dataset import open_dataset
from regaze.evaluation.baselines import SyntheticOracle
from regaze.evaluation.eval_pairs import held_out_indices
from regaze.evaluation.protocol import evaluate_model
from regaze.evaluation.readings import head_only_rows, label_rows
from regaze.geometry import gaze_in_camera, gaze_in_head
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import TOY_SPLIT, mean_of, toy_render, write_toy_dataset


class GazeFollowsHead:
    """The exact render, except that a head-only change carries the eyes along: the gaze keeps its direction in
    the head (eye-in-head kept) instead of its direction in the camera frame."""

    def __init__(self, oracle):
        self.oracle = oracle

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        src = dict(source_gaze=source_gaze, source_head=source_head)
        if gaze is None and head is not None:
            _, labels = self.oracle.redirect(images, **src)
            gaze = gaze_in_camera(gaze_in_head(labels["gaze"].double(), labels["head"].double()), head.double()).float()
        return self.oracle.redirect(images, gaze=gaze, head=head, **src)


def test_the_two_frames_separate_a_wrong_head_from_a_wrong_gaze():
    rng = np.random.default_rng(0)
    gaze, head = rng.uniform(-0.3, 0.3, (50, 2)), rng.uniform(-0.3, 0.3, (50, 2))
    off = head + np.array([0.0, 0.3])
    right_camera = label_rows({"gaze": gaze, "head": off}, gaze=gaze, head=head)  # eyes read right, head wrong
    assert right_camera["gaze_err_deg"].max() < 1e-3 and right_camera["gaze_head_rel_err_deg"].min() > 10.0
    carried = gaze_in_camera(gaze_in_head(gaze, head), off)  # eyes carried along by a wrong head
    moved = label_rows({"gaze": carried, "head": off}, gaze=gaze, head=head)
    assert moved["gaze_head_rel_err_deg"].max() < 1e-3 and moved["gaze_err_deg"].min() > 10.0
    follows = head_only_rows({"gaze": carried, "head": off}, gaze=gaze, head=off, source={"gaze": gaze, "head": head})
    assert follows["head_only_gaze_head_rel_change_deg"].max() < 1e-3 < follows["head_only_gaze_change_deg"].min()


class LookupEstimator(torch.nn.Module):
    """A perfect estimator for the test: it reads back the exact angles every registered image was rendered
    with (unregistered images read (0, 0)), so the rows below carry no estimator noise."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.cfg = type("Cfg", (), {"embed_dim": 4})()
        self.table: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def _key(u8: np.ndarray) -> bytes:
        return hashlib.blake2b(u8.tobytes(), digest_size=16).digest()

    def register(self, images_u8: np.ndarray, gaze, head) -> None:
        for img, g, h in zip(images_u8, np.atleast_2d(gaze), np.atleast_2d(head)):
            self.table[self._key(img)] = (np.asarray(g, np.float32), np.asarray(h, np.float32))

    def forward(self, x):
        u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        zero = (np.zeros(2, np.float32), np.zeros(2, np.float32))
        gaze, head = zip(*(self.table.get(self._key(img), zero) for img in u8))
        return {"gaze": torch.from_numpy(np.stack(gaze)), "head": torch.from_numpy(np.stack(head)),
                "embedding": torch.ones(len(u8), 4)}


def test_a_gaze_that_follows_the_head_shows_in_the_head_relative_rows(tmp_path):
    ds = open_dataset(write_toy_dataset(tmp_path / "toy.h5", subjects=16, per_session=10, split=TOY_SPLIT))
    reader = LookupEstimator()
    everything = np.arange(len(ds))
    reader.register(ds.read_images(everything), ds.gaze, ds.head)

    def render(**kw):  # the toy renderer, every image registered with its angles
        images = toy_render(**kw)
        reader.register(images, kw["gaze"], kw["head"])
        return images

    oracle = SyntheticOracle(ds, indices=held_out_indices(ds)[0], renderer=render)
    result = evaluate_model(GazeFollowsHead(oracle), dataset=ds, estimator=reader, n_pairs=16, seed=0, batch_size=16,
                            renderer=render, progress=False)
    pp = result["per_pair"]["disentanglement"]
    ok = np.asarray(result["pairs"]["head_only_feasible"])
    model, exact = (({k: np.asarray(v)[ok] for k, v in pp[src].items()}) for src in ("model", "exact_render"))
    # the exact target keeps the camera-frame gaze: no camera-frame change, the head-relative gaze moves with the head
    assert exact["head_only_gaze_change_deg"].max() < 0.1 and exact["head_only_gaze_head_rel_change_deg"].min() > 5.0
    # the follower is its mirror image: head-relative gaze kept, camera-frame gaze moved, both wrong for the target
    assert model["head_only_gaze_head_rel_change_deg"].max() < 0.1
    assert model["head_only_gaze_change_deg"].min() > 5.0 and model["head_only_gaze_head_rel_err_deg"].min() > 5.0
    assert model["head_only_head_err_deg"].max() < 0.1  # the head is right
    assert mean_of(result, "redirection/model/st_ed_gaze_head_rel_err_deg") < 0.1  # full changes are exact renders
