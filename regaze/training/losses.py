"""Loss functions of the patent ([0044]–[0051]) as small pure functions, and one combiner.

Every loss returns a float32 scalar; callers compute them outside autocast (losses in float32, STYLE 9).
Discriminator outputs are logits, so the log-likelihood forms of [0046]–[0047] are written with softplus:
    -log D(x) = softplus(-logit),   -log(1 - D(x)) = softplus(logit).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regaze.geometry import angular_error_deg

__all__ = [
    "discriminator_loss",
    "generator_loss",
    "reconstruction_loss",
    "edge_loss",
    "label_loss",
    "orthogonality_loss",
    "latent_consistency_loss",
    "redirection_loss",
    "generator_total",
]


def discriminator_loss(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_disc = -E[log D(X) + log(1 - D(X~))]  ([0046]); logits of any shape (B, ...)."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def generator_loss(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_gen = -E[log D(X~)]  ([0047], the non-saturating form)."""
    return F.softplus(-fake_logits.float()).mean()


def reconstruction_loss(*, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_R = ||X~ - X||_1 / |X|  ([0048]); images (B, 3, H, W) in [-1, 1].

    weight (B, 1, H, W), optional: per-pixel weights (regaze/eye_regions.py); the loss is then the weighted
    mean sum(w |X~ - X|) / sum(w), so uniform weights give the plain L1 back.
    """
    diff = (output.float() - target.float()).abs()  # (B, 3, H, W)
    if weight is None:
        return diff.mean()
    w = weight.float().expand_as(diff)
    return (w * diff).sum() / w.sum()


def edge_loss(*, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_E = mean |d_x(X~ - X)| + mean |d_y(X~ - X)|: L1 of the difference of neighbouring pixels' differences,
    i.e. of the images' gradients (d_x X~ - d_x X = d_x (X~ - X)); images (B, 3, H, W) in [-1, 1].

    Not in the patent (issue 13): plain L1 pays little for an edge that is a pixel off, this pays for it twice
    (once where the edge should be, once where it is). weight (B, 1, H, W), optional: per-pixel weights as in
    reconstruction_loss, taken at the right-hand / lower pixel of each difference.
    """
    diff = output.float() - target.float()  # (B, 3, H, W)
    dx = (diff[..., :, 1:] - diff[..., :, :-1]).abs()  # (B, 3, H, W-1)
    dy = (diff[..., 1:, :] - diff[..., :-1, :]).abs()  # (B, 3, H-1, W)
    if weight is None:
        return dx.mean() + dy.mean()
    wx = weight.float()[..., :, 1:].expand_as(dx)
    wy = weight.float()[..., 1:, :].expand_as(dy)
    return (wx * dx).sum() / wx.sum() + (wy * dy).sum() / wy.sum()


def label_loss(
    *, gaze_est: torch.Tensor, gaze_label: torch.Tensor, head_est: torch.Tensor, head_label: torch.Tensor
) -> torch.Tensor:
    """L_PL = eps_ang(m^g, m~g) + eps_ang(m^h, m~h)  ([0049]–[0050]), pitch/yaw (B, 2) radians.

    eps_ang is the true angle between the direction vectors (L2 norms, DESIGN §1), here in radians so that
    its weight is comparable to the image losses.
    """
    to_rad = torch.pi / 180.0
    gaze = angular_error_deg(gaze_est.float(), gaze_label.float()).mean() * to_rad
    head = angular_error_deg(head_est.float(), head_label.float()).mean() * to_rad
    return gaze + head


def orthogonality_loss(*, z_id: torch.Tensor, z_gaze: torch.Tensor, z_head: torch.Tensor) -> torch.Tensor:
    """L_ort = E[ ||Z_id ⊙ Z_{g,h}||_1 + ||Z_g ⊙ Z_h||_1 ]  ([0044]–[0045]), ⊙ element-wise.

    z_gaze, z_head: (B, K, 3); z_id: any shape with 2·K·3 elements per sample; Z_{g,h} = [Z_g, Z_h] flattened.
    Normalised by the element count so the weight does not depend on K.
    """
    b = z_gaze.shape[0]
    z_gh = torch.cat([z_gaze.reshape(b, -1), z_head.reshape(b, -1)], dim=1).float()  # (B, 6K)
    id_part = (z_id.reshape(b, -1).float() * z_gh).abs().mean()
    gh_part = (z_gaze.reshape(b, -1).float() * z_head.reshape(b, -1).float()).abs().mean()
    return id_part + gh_part


def latent_consistency_loss(*, rotated: dict[str, torch.Tensor], own: dict[str, torch.Tensor],
                            z_id_a: torch.Tensor, z_id_b: torch.Tensor,
                            rotated_est: dict[str, torch.Tensor], target_angles: dict[str, torch.Tensor]) -> torch.Tensor:
    """L_lat = sum_f mean ||R_f^{ab} Z_f^a - Z_f^b||^2 + mean ||Z_id^a - Z_id^b||^2 + sum_f eps_ang(E_f(R_f^{ab} Z_f^a), m_f^b)

    for the pose features f in {gaze, head} of a same-person pair: a's feature rotated to b's angles should be
    b's feature (the rotation is what CAS assumes), the identity features of one person should agree, and the
    auxiliary estimators should read the target angles off a rotated feature. rotated, own: {f: (B, K, 3)}
    (R^{ab} Z^a and Z^b); z_id_a, z_id_b (B, 2K, 3); rotated_est, target_angles: {f: (B, 2)} pitch/yaw radians.
    Features are RMS-normalised blocks (unit scale), so the squared distances need no further normalisation.
    """
    to_rad = torch.pi / 180.0
    loss = (z_id_a.float() - z_id_b.float()).pow(2).mean()
    for f in rotated:
        loss = loss + (rotated[f].float() - own[f].float()).pow(2).mean()
        loss = loss + angular_error_deg(rotated_est[f].float(), target_angles[f].float()).mean() * to_rad
    return loss


def redirection_loss(*, gaze_read: torch.Tensor, head_read: torch.Tensor, gaze_target: torch.Tensor,
                     head_target: torch.Tensor) -> torch.Tensor:
    """L_redir = eps_ang(E(X~)_g, m_g) + eps_ang(E(X~)_h, m_h): a frozen training-time estimator E reads the
    generated image X~ and is compared with the angles it was asked to show (ST-ED's redirection loss);
    pitch/yaw (B, 2) radians, the error in radians like L_PL. E must never be the evaluation estimator."""
    to_rad = torch.pi / 180.0
    gaze = angular_error_deg(gaze_read.float(), gaze_target.float()).mean() * to_rad
    head = angular_error_deg(head_read.float(), head_target.float()).mean() * to_rad
    return gaze + head


def generator_total(*, terms: dict[str, torch.Tensor], weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """L = sum_k lambda_k L_k ([0051]) over the generator's terms; a zero weight skips the term.

    Returns (total, logs) with logs holding the unweighted terms as detached tensors (no host sync here).
    """
    total = torch.zeros((), dtype=torch.float32, device=next(iter(terms.values())).device)
    logs = {}
    for name, value in terms.items():
        logs[name] = value.detach()
        w = weights.get(name, 0.0)
        if w:
            total = total + w * value
    logs["total"] = total.detach()
    return total, logs
