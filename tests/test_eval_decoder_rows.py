"""Disentanglement and reconstruction on the decoder's image (issue 12, item 3): every model row is scored
with compose="decode"; the eye composite (the decoder's eyes pasted into the source) is scored in rows of its
own. A model whose decoder moves pixels outside the eyes is disentangled only in its composite, and the
evaluation must say so."""
from __future__ import annotations

import pytest
import torch

from regaze.evaluation.baselines import SyntheticOracle
from regaze.evaluation.eval_markdown import COMPOSITE, DECODER, render_markdown
from regaze.evaluation.eval_pairs import held_out_indices
from test_evaluate_toydata import one_torch_thread  # noqa: F401  (autouse fixture)
from test_evaluate_toydata import mean_of, toy_context, toy_evaluate, toy_render

HEAD_LEAK_RAD = torch.tensor([0.0, 0.3])  # yaw the decoder adds to every head


class LeakyDecoder:
    """compose="decode": the exact render with the head turned HEAD_LEAK_RAD further than asked (the face moves,
    pixels outside the eyes change); compose="eyes": the exact render at the asked gaze and the source's head (a
    perfect eye composite). Records the compose values it was asked for."""

    def __init__(self, oracle):
        self.oracle, self.asked = oracle, set()

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        self.asked.add(compose)
        src = dict(source_gaze=source_gaze, source_head=source_head)
        if compose == "eyes":
            return self.oracle.redirect(images, gaze=gaze, head=None, **src)
        _, labels = self.oracle.redirect(images, **src)
        h = head if head is not None else labels["head"]
        return self.oracle.redirect(images, gaze=gaze, head=h + HEAD_LEAK_RAD, **src)


@pytest.fixture(scope="module")
def toy():
    return toy_context()


def test_disentanglement_and_reconstruction_score_the_decoder_not_the_composite(toy):
    model = LeakyDecoder(SyntheticOracle(toy["ds"], indices=held_out_indices(toy["ds"])[0], renderer=toy_render))
    result = toy_evaluate(toy, model)
    assert model.asked == {"decode", "eyes"}  # never the default "auto", which pastes for gaze-only changes
    decoder = mean_of(result, "disentanglement/model/gaze_only_head_change_deg")
    composite = mean_of(result, "disentanglement/eye_composite/gaze_only_head_change_deg")
    exact = mean_of(result, "disentanglement/exact_render/gaze_only_head_change_deg")
    assert decoder > composite + 8.0  # the leak is ~17 deg of head turn
    assert composite == pytest.approx(exact, abs=0.5)  # the composite is the exact gaze-only render here
    assert mean_of(result, "image_quality/gaze_only/eye_composite/psnr_db") == 100.0
    assert mean_of(result, "image_quality/gaze_only/model/psnr_db") < 40.0
    assert mean_of(result, "reconstruction/eye_composite/psnr_db") == 100.0
    assert mean_of(result, "reconstruction/model/psnr_db") < 40.0
    assert mean_of(result, "reconstruction/model/head_err_deg") > mean_of(result, "reconstruction/eye_composite/head_err_deg") + 8
    md = render_markdown(result)
    assert f"| {DECODER} |" in md and f"| {COMPOSITE} |" in md
    assert not result["sharpness"]["sharp"]["image_quality/gaze_only/model"]
    assert result["sharpness"]["sharp"]["image_quality/gaze_only/eye_composite"]
