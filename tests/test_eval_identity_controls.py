"""Identity that works (issue 12, item 2): the identity score is checked by three controls on every
evaluation: the source image itself must score best, another held-out subject at the same pose clearly worse,
the data set's mean face at the target pose worse than the source; and a model that draws the mean face is
caught by it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from regaze.evaluation.baselines import SyntheticOracle
from regaze.evaluation.eval_markdown import render_markdown
from regaze.evaluation.eval_pairs import held_out_indices, pose_distance_deg, sample_pairs
from regaze.evaluation.identity import identity_summary
from regaze.evaluation.identity_controls import gallery_indices, gallery_references, mean_face_pool, mean_faces_at_pose
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import toy_context, toy_evaluate, toy_render


@pytest.fixture(scope="module")
def toy():
    return toy_context()


class MeanFace:
    """Draws the data set's mean face at the requested pose: the blurred average face of issue 12."""

    def __init__(self, dataset):
        self.ds = dataset
        self.pool = mean_face_pool(n_images=len(dataset), seed=1)
        self.images = dataset.read_images(self.pool)

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        g = (gaze if gaze is not None else source_gaze).numpy()
        h = (head if head is not None else source_head).numpy()
        faces = mean_faces_at_pose(pool_images=self.images, pool_gaze=self.ds.gaze[self.pool],
                                   pool_head=self.ds.head[self.pool], pool_subject=self.ds.subject[self.pool],
                                   gaze=g, head=h, subject=np.full(len(g), -1))
        return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1.0, {"gaze": None, "head": None}


def test_the_controls_come_out_in_order_and_the_oracle_scores_like_the_person(toy):
    result = toy_evaluate(toy, SyntheticOracle(toy["ds"], indices=held_out_indices(toy["ds"])[0], renderer=toy_render))
    ident, pp = result["identity"], result["per_pair"]["identity"]
    sc = ident["scores"]
    assert sc["source_itself"] < 1.0 - 1e-3  # the reference is a gallery, not the source: the control can fail
    assert sc["source_itself"] > max(sc["mean_face_target_pose"], sc["different_subject_same_pose"]) + 0.2
    assert np.mean(np.array(pp["source_itself"]) > np.array(pp["different_subject_same_pose"])) >= 0.9
    assert ident["checks"] == {"source_scores_best": True, "different_subject_clearly_worse": True,
                               "mean_face_worse_than_source": True}
    assert ident["controls_pass"] and ident["normalised"] > 0.8
    md = render_markdown(result)
    assert "control: the source image itself" in md and "The measure passes its controls" in md
    assert "The stranger's pose is" in md


def test_a_mean_face_model_beats_copying_in_psnr_but_scores_far_below_the_person(toy):
    from regaze.evaluation.baselines import CopySource
    from test_evaluate_toydata import mean_of

    mean_face, copy = toy_evaluate(toy, MeanFace(toy["ds"])), toy_evaluate(toy, CopySource())
    key = "image_quality/head_only/model/psnr_db"
    assert mean_of(mean_face, key) > mean_of(copy, key) + 2.0  # the blurred average face "wins" on PSNR ...
    ident = mean_face["identity"]
    assert ident["controls_pass"]  # the controls do not depend on the model
    assert ident["normalised"] < 0.5 < copy["identity"]["normalised"]  # ... and loses the person


def test_failed_controls_are_reported_as_untrustworthy():
    rng = np.random.default_rng(0)
    source = rng.uniform(0.2, 0.4, 50)
    ident = identity_summary({"model": source, "source_itself": source, "different_subject_same_pose": source + 0.1,
                              "mean_face_target_pose": source - 0.1})  # a measure that reads pose, not the person
    assert not ident["controls_pass"]
    assert ident["checks"]["source_scores_best"] is False and ident["checks"]["different_subject_clearly_worse"] is False
    md = render_markdown({"model": {"name": "m", "step": None}, "data": {"path": "d", "size": 32, "split": "test",
                          "n_held_out_images": 1}, "estimator": {"checkpoint": "e"}, "pairs": {"n": 50, "seed": 0,
                          "rule": "session", "n_subjects": 2}, "summary": {}, "identity": ident})
    assert "The measure fails its controls" in md.replace("**", "")


def test_the_stranger_is_another_subject_at_the_target_pose(toy):
    ds = toy["ds"]
    idx = held_out_indices(ds)[0]
    kw = dict(subject=ds.subject, session=ds.session, indices=idx, n_pairs=64, seed=3)
    posed, random = sample_pairs(**kw, gaze=ds.gaze, head=ds.head), sample_pairs(**kw)
    assert np.array_equal(posed["target"], random["target"])
    assert np.all(ds.subject[posed["other"]] != ds.subject[posed["source"]])
    gap = lambda p: np.diag(pose_distance_deg(gaze_a=ds.gaze[p["target"]], head_a=ds.head[p["target"]],  # noqa: E731
                                              gaze_b=ds.gaze[p["other"]], head_b=ds.head[p["other"]]))
    assert gap(posed).mean() < 0.5 * gap(random).mean()


def test_gallery_leaves_out_the_source_and_target_and_mean_face_leaves_out_the_person():
    subject = np.repeat(np.arange(3), 5)
    gallery = gallery_indices(subject=subject, subjects=np.array([0, 1]), seed=0)
    assert set(gallery) == {0, 1} and all(set(subject[v]) == {s} for s, v in gallery.items())
    emb = {s: np.eye(5)[: len(v)] + 0.0 for s, v in gallery.items()}  # image k of the gallery: unit vector k
    ref = gallery_references(gallery=gallery, embeddings=emb, subject=subject, source=np.array([0]), target=np.array([1]))
    assert ref[0, 0] == 0 and ref[0, 1] == 0 and ref[0, 2] > 0  # source (row 0) and target (row 1) left out
    images = np.zeros((4, 2, 2, 3), np.uint8)
    images[0], images[1], images[2], images[3] = 10, 20, 200, 250
    pose = np.array([[0.0, 0.0], [0.0, 0.05], [0.0, 0.0], [0.5, 0.5]])
    face = mean_faces_at_pose(pool_images=images, pool_gaze=pose, pool_head=pose, pool_subject=np.array([1, 1, 0, 1]),
                              gaze=pose[:1], head=pose[:1], subject=np.array([0]), k=2)
    assert np.all(face == 15)  # the two nearest of other subjects, the person's own image (200) left out
