"""The source angles users actually get (issue 12, item 6): `regaze redirect` reads the source angles with the
model's own estimators (m~g, m~h) unless told; the evaluation measures them on held-out subjects and scores
the redirection made with them beside the one made with the labels."""
from __future__ import annotations

import pytest
import torch

from regaze.evaluation.baselines import CopySource, SyntheticOracle
from regaze.evaluation.eval_markdown import render_markdown
from regaze.evaluation.eval_pairs import held_out_indices
from regaze.evaluation.report import fmt_stat
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import mean_of, toy_context, toy_evaluate, toy_render

BIAS_RAD = torch.tensor([0.0, 0.15])  # yaw bias of the estimators, ~8.6 deg


class BiasedEstimators:
    """The exact render when the source angles are given. Left without them it reads them with a bias and,
    like a redirector that rotates by (target - source), lands that bias off the target."""

    def __init__(self, oracle):
        self.oracle = oracle

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        if source_gaze is not None and source_head is not None:
            return self.oracle.redirect(images, gaze=gaze, head=head, source_gaze=source_gaze, source_head=source_head)
        _, labels = self.oracle.redirect(images)
        est = {k: v + BIAS_RAD for k, v in labels.items()}
        shift = lambda t: None if t is None else t - BIAS_RAD  # noqa: E731
        out, _ = self.oracle.redirect(images, gaze=shift(gaze), head=shift(head))
        return out, est


@pytest.fixture(scope="module")
def toy():
    return toy_context()


def test_estimated_source_angles_are_measured_and_used(toy):
    oracle = SyntheticOracle(toy["ds"], indices=held_out_indices(toy["ds"])[0], renderer=toy_render)
    result = toy_evaluate(toy, BiasedEstimators(oracle))
    for what in ("gaze", "head"):
        assert 6.0 < mean_of(result, f"source_estimators/model/{what}_err_deg") < 9.0
        labelled = mean_of(result, f"redirection/model/gazenerf_{what}_err_deg")
        estimated = mean_of(result, f"redirection/model_estimated_sources/gazenerf_{what}_err_deg")
        assert labelled < 2.0 and estimated > labelled + 4.0
    row = f"| gaze, camera frame | {fmt_stat(result['summary']['source_estimators']['model']['gaze_err_deg'])} |"
    assert row in render_markdown(result)
    exact = toy_evaluate(toy, oracle)
    assert mean_of(exact, "source_estimators/model/gaze_err_deg") < 1e-3  # the oracle "reads" the labels


def test_a_model_without_estimators_says_so(toy):
    result = toy_evaluate(toy, CopySource())
    assert "source_estimators" in result["summary"] and "model" not in result["summary"]["source_estimators"]
    assert "model_estimated_sources" not in result["summary"]["redirection"]
    assert any(n.startswith("source-angle estimators:") for n in result["notices"])
