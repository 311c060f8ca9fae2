"""The pair step (claims 5-6): which image's Z_id and which rotated pose features reach the decoder, for
every combination of the cross_swap and identity_swap switches."""
from __future__ import annotations

import pytest
import torch

from regaze.config import ModelConfig
from regaze.model.redirector import Redirector
from regaze.training.pair_step import PairForward

B = 3


def _recording_pair_forward(*, cross_swap: bool, identity_swap: bool):
    """A PairForward on a tiny model whose encode / decode calls are recorded (inputs and outputs)."""
    torch.manual_seed(0)
    g = Redirector(ModelConfig(image_size=32, k=4, channel_max=16, flat_channels=4, estimator_hidden=8)).eval()
    seen = {}
    encode, decode = g.encode, g.decode

    def recording_encode(x):
        seen["encoded"] = encode(x)
        return seen["encoded"]

    def recording_decode(feats, **base):
        seen["decoded"] = feats
        return decode(feats, **base)

    g.encode, g.decode = recording_encode, recording_decode
    return PairForward(g, cross_swap=cross_swap, identity_swap=identity_swap), seen


def _batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2 * B, 3, 32, 32, generator=gen) * 2 - 1
    angles = (torch.rand(4, B, 2, generator=gen) - 0.5) * 0.8  # rad
    return {"x_a": x[:B], "x_b": x[B:], "gaze_a": angles[0], "head_a": angles[1], "gaze_b": angles[2], "head_b": angles[3]}


@pytest.mark.parametrize("cross_swap", [True, False])
@pytest.mark.parametrize("identity_swap", [True, False])
def test_identity_reaching_the_decoder_is_the_other_images_exactly_when_identity_swap(cross_swap, identity_swap):
    pf, seen = _recording_pair_forward(cross_swap=cross_swap, identity_swap=identity_swap)
    batch = _batch()
    sel = torch.tensor([True, False, True])
    with torch.no_grad():
        pf(**batch, gaze_sel=sel, head_sel=~sel)
    feats_a, feats_b = seen["encoded"].split(B)
    dec_a, dec_b = seen["decoded"].split(B)  # the decoder input of X_a^T, then of X_b^T
    want_a, want_b = (feats_b, feats_a) if identity_swap else (feats_a, feats_b)
    assert torch.equal(dec_a.z_id, want_a.z_id) and torch.equal(dec_b.z_id, want_b.z_id)
    other_a = feats_a if identity_swap else feats_b
    assert not torch.allclose(dec_a.z_id, other_a.z_id)  # the two identities do differ: the check can fail


def test_without_cross_swap_x_a_is_decoded_from_b_rotated_to_a_with_b_identity():
    """The no-cross-swap ablation (identity_swap on by default): nothing of X_a's own encoding reaches X_a^T."""
    pf, seen = _recording_pair_forward(cross_swap=False, identity_swap=True)
    batch = _batch()
    sel = torch.ones(B, dtype=torch.bool)
    with torch.no_grad():
        pf(**batch, gaze_sel=sel, head_sel=~sel)
    feats_a, feats_b = seen["encoded"].split(B)
    dec_a, _ = seen["decoded"].split(B)
    cas = pf.redirector.separation
    rotated = cas.rotate_features(feats_b, source_gaze=batch["gaze_b"], source_head=batch["head_b"],
                                  target_gaze=batch["gaze_a"], target_head=batch["head_a"])
    assert torch.equal(dec_a.z_gaze, rotated.z_gaze) and torch.equal(dec_a.z_head, rotated.z_head)
    assert torch.equal(dec_a.z_id, feats_b.z_id)
    for field in ("z_id", "z_gaze", "z_head"):
        assert not torch.allclose(getattr(dec_a, field), getattr(feats_a, field)), field


def test_cross_swap_puts_the_rotated_target_feature_beside_the_own_non_target_feature():
    pf, seen = _recording_pair_forward(cross_swap=True, identity_swap=True)
    batch = _batch()
    gaze_sel = torch.ones(B, dtype=torch.bool)  # target: gaze for every sample
    with torch.no_grad():
        pf(**batch, gaze_sel=gaze_sel, head_sel=~gaze_sel)
    feats_a, feats_b = seen["encoded"].split(B)
    dec_a, _ = seen["decoded"].split(B)
    rotated = pf.redirector.separation.rotate_features(feats_b, source_gaze=batch["gaze_b"], target_gaze=batch["gaze_a"])
    assert torch.equal(dec_a.z_gaze, rotated.z_gaze)  # Z^{ba} in the target slot
    assert torch.equal(dec_a.z_head, feats_a.z_head)  # a's own non-target feature
    assert torch.equal(dec_a.z_id, feats_b.z_id)  # claim 6
