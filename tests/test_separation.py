"""Cross Attribute Separation: rotations of the target feature, per-sample target choice, swap (claims 1-5)."""
from __future__ import annotations

import math

import pytest
import torch

from regaze.geometry import rotation_matrix
from regaze.model.decomposition import Features, rms_normalize
from regaze.model.separation import CrossAttributeSeparation

B, K = 6, 16


def _angles(gen: torch.Generator, n: int = B) -> torch.Tensor:
    """(n, 2) pitch, yaw radians, within +-60 / +-80 degrees."""
    return (torch.rand(n, 2, generator=gen) * 2 - 1) * torch.tensor([math.radians(60), math.radians(80)])


def _features(gen: torch.Generator) -> Features:
    return Features(
        z_id=torch.randn(B, 2 * K, 3, generator=gen),
        z_gaze=torch.randn(B, K, 3, generator=gen),
        z_head=torch.randn(B, K, 3, generator=gen),
        gaze_est=_angles(gen),
        head_est=_angles(gen),
    )


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


cas = CrossAttributeSeparation()


def test_rotate_matches_the_claim_3_formula(gen):
    z = torch.randn(B, K, 3, generator=gen)
    src, tgt = _angles(gen), _angles(gen)
    r = rotation_matrix(tgt) @ rotation_matrix(src).transpose(1, 2)  # R(target) R(source)^T
    expected = torch.einsum("bij,bkj->bki", r, z)
    torch.testing.assert_close(cas.rotate(z, source=src, target=tgt), expected, atol=1e-6, rtol=1e-6)


def test_rotate_source_equal_target_is_identity(gen):
    z, a = torch.randn(B, K, 3, generator=gen), _angles(gen)
    torch.testing.assert_close(cas.rotate(z, source=a, target=a), z, atol=1e-6, rtol=0)


def test_rotate_there_and_back(gen):
    z, a, b = torch.randn(B, K, 3, generator=gen), _angles(gen), _angles(gen)
    back = cas.rotate(cas.rotate(z, source=a, target=b), source=b, target=a)
    torch.testing.assert_close(back, z, atol=1e-5, rtol=0)


def test_rotations_compose_and_preserve_norms(gen):
    z, a, b, c = torch.randn(B, K, 3, generator=gen), _angles(gen), _angles(gen), _angles(gen)
    two_steps = cas.rotate(cas.rotate(z, source=a, target=b), source=b, target=c)
    torch.testing.assert_close(two_steps, cas.rotate(z, source=a, target=c), atol=1e-5, rtol=0)
    torch.testing.assert_close(two_steps.norm(dim=-1), z.norm(dim=-1), atol=1e-5, rtol=0)


def test_rms_normalisation_commutes_with_rotation(gen):
    z, a, b = torch.randn(B, K, 3, generator=gen) * 3, _angles(gen), _angles(gen)
    torch.testing.assert_close(
        rms_normalize(cas.rotate(z, source=a, target=b)), cas.rotate(rms_normalize(z), source=a, target=b), atol=1e-5, rtol=0
    )


def test_rotate_stays_float32_under_autocast(gen):
    z, a, b = torch.randn(B, K, 3, generator=gen), _angles(gen), _angles(gen)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = cas.rotate(z, source=a, target=b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, cas.rotate(z, source=a, target=b), atol=0, rtol=0)


def test_choose_target_modes(gen):
    g, h = cas.choose_target(1000, mode="random", generator=gen)
    assert g.dtype == torch.bool and g.shape == (1000,)
    assert torch.equal(g, ~h)  # exactly one target per sample (claim 4)
    assert 400 < int(g.sum()) < 600  # both targets occur, and a batch mixes them
    for mode, (want_g, want_h) in {"gaze": (True, False), "head": (False, True), "both": (True, True)}.items():
        g, h = cas.choose_target(5, mode=mode)
        assert bool(g.all()) is want_g and bool(h.all()) is want_h and bool(g.any()) is want_g and bool(h.any()) is want_h
    g1, _ = cas.choose_target(64, generator=torch.Generator().manual_seed(3))
    g2, _ = cas.choose_target(64, generator=torch.Generator().manual_seed(3))
    assert torch.equal(g1, g2)
    with pytest.raises(ValueError, match="random"):
        cas.choose_target(4, mode="eyes")


def test_rotate_features_changes_only_the_selected_target(gen):
    feats = _features(gen)
    src_g, src_h, tgt_g, tgt_h = (_angles(gen) for _ in range(4))
    gaze_sel, head_sel = cas.choose_target(B, mode="random", generator=gen)
    out = cas.rotate_features(feats, source_gaze=src_g, source_head=src_h, target_gaze=tgt_g, target_head=tgt_h,
                              gaze_sel=gaze_sel, head_sel=head_sel)
    assert torch.equal(out.z_id, feats.z_id) and torch.equal(out.gaze_est, feats.gaze_est) and torch.equal(out.head_est, feats.head_est)
    for sel, new, old, src, tgt in ((gaze_sel, out.z_gaze, feats.z_gaze, src_g, tgt_g), (head_sel, out.z_head, feats.z_head, src_h, tgt_h)):
        assert torch.equal(new[~sel], old[~sel])  # not selected: bitwise unchanged
        torch.testing.assert_close(new[sel], cas.rotate(old, source=src, target=tgt)[sel], atol=0, rtol=0)
        assert not torch.allclose(new[sel], old[sel])


def test_gaze_then_head_equals_both_at_once_exactly(gen):
    feats = _features(gen)
    kw = dict(source_gaze=_angles(gen), source_head=_angles(gen))
    tgt_g, tgt_h = _angles(gen), _angles(gen)
    step1 = cas.rotate_features(feats, source_gaze=kw["source_gaze"], target_gaze=tgt_g)
    assert torch.equal(step1.z_head, feats.z_head)
    step2 = cas.rotate_features(step1, source_head=kw["source_head"], target_head=tgt_h)
    both = cas.rotate_features(feats, **kw, target_gaze=tgt_g, target_head=tgt_h)
    assert torch.equal(step2.z_gaze, both.z_gaze) and torch.equal(step2.z_head, both.z_head)


def test_rotate_features_defaults_to_the_estimates_as_source(gen):
    feats = _features(gen)
    tgt = _angles(gen)
    out = cas.rotate_features(feats, target_gaze=tgt)
    torch.testing.assert_close(out.z_gaze, cas.rotate(feats.z_gaze, source=feats.gaze_est, target=tgt), atol=0, rtol=0)
    assert torch.equal(out.z_head, feats.z_head)


def test_swap_exchanges_the_rotated_target_of_the_other_image(gen):
    """Claim 5: Z^{ab} (a's target rotated to b's angles) replaces b's target feature; the rest is b's."""
    fa, fb = _features(gen), _features(gen)
    ga, ha, gb, hb = (_angles(gen) for _ in range(4))
    gaze_sel, head_sel = cas.choose_target(B, mode="random", generator=gen)
    f_ab = cas.rotate_features(fa, source_gaze=ga, source_head=ha, target_gaze=gb, target_head=hb, gaze_sel=gaze_sel, head_sel=head_sel)
    rec_b = cas.swap(into=fb, from_=f_ab, gaze_sel=gaze_sel, head_sel=head_sel)
    assert torch.equal(rec_b.z_id, fb.z_id) and torch.equal(rec_b.gaze_est, fb.gaze_est)
    torch.testing.assert_close(rec_b.z_gaze[gaze_sel], cas.rotate(fa.z_gaze, source=ga, target=gb)[gaze_sel], atol=0, rtol=0)
    torch.testing.assert_close(rec_b.z_head[head_sel], cas.rotate(fa.z_head, source=ha, target=hb)[head_sel], atol=0, rtol=0)
    assert torch.equal(rec_b.z_gaze[~gaze_sel], fb.z_gaze[~gaze_sel]) and torch.equal(rec_b.z_head[~head_sel], fb.z_head[~head_sel])


def test_features_split_cat_replace(gen):
    feats = _features(gen)
    a, b = feats.split(B // 2)
    assert a.batch_size == b.batch_size == B // 2
    joined = a.cat(b)
    for name in ("z_id", "z_gaze", "z_head", "gaze_est", "head_est"):
        assert torch.equal(getattr(joined, name), getattr(feats, name))
    replaced = feats.replace(z_gaze=torch.zeros(B, K, 3))
    assert torch.equal(replaced.z_gaze, torch.zeros(B, K, 3)) and replaced.z_id is feats.z_id
