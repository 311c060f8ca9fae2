"""The patent's losses ([0044]–[0051]) behave as their formulas say."""
import math

import pytest
import torch

from regaze.training import losses


def test_gan_losses_follow_log_likelihood_forms():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d = lambda z: torch.sigmoid(z)  # noqa: E731
    expected_d = -(torch.log(d(real)).mean() + torch.log(1 - d(fake)).mean())
    assert losses.discriminator_loss(real_logits=real, fake_logits=fake) == pytest.approx(float(expected_d), rel=1e-6)
    assert losses.generator_loss(fake_logits=fake) == pytest.approx(float(-torch.log(d(fake)).mean()), rel=1e-6)


def test_reconstruction_is_mean_absolute_error():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    b[0, 0, 0, 0] = 2.5
    assert losses.reconstruction_loss(output=a, target=b) == pytest.approx(float(b.abs().mean()))


def test_label_loss_is_true_angle_in_radians():
    est = torch.tensor([[0.0, 0.0]])
    lab = torch.tensor([[0.0, 0.3]])
    val = losses.label_loss(gaze_est=est, gaze_label=lab, head_est=est, head_label=est)
    assert float(val) == pytest.approx(0.3, abs=1e-5)
    zero = losses.label_loss(gaze_est=lab, gaze_label=lab, head_est=lab, head_label=lab)
    assert float(zero) < 1e-3


def test_orthogonality_zero_for_disjoint_supports_and_positive_otherwise():
    k = 4
    z_g = torch.zeros(2, k, 3)
    z_h = torch.zeros(2, k, 3)
    z_g[:, :, 0] = 1.0
    z_h[:, :, 1] = 1.0
    z_id = torch.zeros(2, 2 * k, 3)
    z_id[:, :, 2] = 1.0  # flattened, id lands on positions where [Z_g, Z_h] are zero
    assert float(losses.orthogonality_loss(z_id=z_id, z_gaze=z_g, z_head=z_h)) == 0.0
    assert float(losses.orthogonality_loss(z_id=z_id, z_gaze=z_g, z_head=z_g)) > 0.0
    # shrinking every feature lowers it quadratically: the collapse DESIGN §1 warns about
    full = losses.orthogonality_loss(z_id=torch.ones(1, 2 * k, 3), z_gaze=torch.ones(1, k, 3), z_head=torch.ones(1, k, 3))
    half = losses.orthogonality_loss(z_id=0.5 * torch.ones(1, 2 * k, 3), z_gaze=0.5 * torch.ones(1, k, 3), z_head=0.5 * torch.ones(1, k, 3))
    assert float(half) == pytest.approx(float(full) / 4)


def test_combiner_weights_and_skips_zero_weights():
    terms = {"rec": torch.tensor(2.0), "ort": torch.tensor(float("nan")), "gen": torch.tensor(1.0)}
    total, logs = losses.generator_total(terms=terms, weights={"rec": 3.0, "ort": 0.0, "gen": 0.5})
    assert float(total) == pytest.approx(6.5)
    assert math.isnan(float(logs["ort"])) and float(logs["total"]) == pytest.approx(6.5)


def test_edge_loss_pays_for_misplaced_edges_not_for_a_flat_offset():
    from regaze.training.losses import edge_loss

    target = torch.zeros(2, 3, 8, 8)
    target[..., 4:] = 1.0  # a vertical edge
    assert edge_loss(output=target + 0.3, target=target) < 1e-6  # same gradients: nothing to pay (float rounding)
    shifted = torch.zeros_like(target)
    shifted[..., 5:] = 1.0  # the edge a pixel off
    # d_x of the difference is +-1 on two of the 7 column pairs, in every row and channel
    assert torch.isclose(edge_loss(output=shifted, target=target), torch.tensor(2 / 7))
    ones = torch.ones(2, 1, 8, 8)
    assert torch.isclose(edge_loss(output=shifted, target=target, weight=ones), edge_loss(output=shifted, target=target))
    eye = torch.zeros(2, 1, 8, 8)
    eye[..., 5] = 1.0  # weight only where the shifted edge is: every weighted x-difference is wrong
    assert torch.isclose(edge_loss(output=shifted, target=target, weight=eye), torch.tensor(1.0))
