"""The generator side of one pair-training step (patent claims 5–6, [0030]–[0043]) as one module.

X_a, X_b show the same person in different poses. Per sample a *target* feature is chosen (claim 4: gaze
or head at random). With `cross_swap` (claim 5):

    Z^{ab} = R(target=b) R(source=a)^T Z^a_target      Z^{ba} = R(a) R(b)^T Z^b_target
    X_a^T  = Dec(Z_id^a, Z^{ba} in the target slot, a's own non-target feature)     must reproduce X_a
    X_b^T  = Dec(Z_id^b, Z^{ab} in the target slot, b's own non-target feature)     must reproduce X_b

Without `cross_swap` (an ablation, not the patent) each image is redirected whole from the other's features
to its own angles, ST-ED style: X_a^T = Dec(Z_id, R^{ba}_g Z_g^b, R^{ba}_h Z_h^b), and symmetrically; target
choice is then irrelevant.

`identity_swap` (claim 6) says which image's Z_id the decoder of X_a^T receives, in both modes:
    identity_swap=True   Z_id^b (the other image's: the identity cannot carry a's pose into X_a^T)
    identity_swap=False  Z_id^a (its own: the autoencoder shortcut stays open, DESIGN §1)
and symmetrically for X_b^T. The choice is made explicitly, after the pose features are in place, because
the two modes start from different images: cross swap fills a's own features, the whole redirection b's.

Rotations use the ground-truth labels as source and target angles (DESIGN §1). Wrapping this whole step
in one nn.Module lets DistributedDataParallel see a single forward per step. `generator_terms` gathers the
generator's loss terms of the step from its outputs (the losses themselves are in losses.py).
"""
from __future__ import annotations

import torch
from torch import nn

from regaze.model.redirector import Redirector
from regaze.training import losses

__all__ = ["PairForward", "generator_terms"]


class PairForward(nn.Module):
    """Encode a pair, rotate and swap target features, decode both reconstructions.

    forward(x_a, x_b (B, 3, S, S) in [-1, 1]; gaze_a, head_a, gaze_b, head_b (B, 2) rad;
            gaze_sel, head_sel (B,) bool from CrossAttributeSeparation.choose_target) -> dict with
        out_a, out_b (B, 3, S, S): the reconstructions X_a^T, X_b^T, which must reproduce x_a, x_b
        feats_a, feats_b: the encoders' Features (for the label and orthogonality losses)
    """

    def __init__(self, redirector: Redirector, *, cross_swap: bool = True, identity_swap: bool = True):
        super().__init__()
        self.redirector = redirector
        self.cross_swap = cross_swap
        self.identity_swap = identity_swap

    def forward(self, *, x_a, x_b, gaze_a, head_a, gaze_b, head_b, gaze_sel, head_sel):
        g = self.redirector
        cas = g.separation
        feats_a, feats_b = g.encode(torch.cat([x_a, x_b], dim=0)).split(x_a.shape[0])  # one pass over 2B images
        if self.cross_swap:
            # Z^{ab}: a's target feature rotated from a's angles to b's; it replaces b's target feature.
            feats_ab = cas.rotate_features(feats_a, source_gaze=gaze_a, source_head=head_a, target_gaze=gaze_b,
                                           target_head=head_b, gaze_sel=gaze_sel, head_sel=head_sel)
            feats_ba = cas.rotate_features(feats_b, source_gaze=gaze_b, source_head=head_b, target_gaze=gaze_a,
                                           target_head=head_a, gaze_sel=gaze_sel, head_sel=head_sel)
            rec_a = cas.swap(into=feats_a, from_=feats_ba, gaze_sel=gaze_sel, head_sel=head_sel)
            rec_b = cas.swap(into=feats_b, from_=feats_ab, gaze_sel=gaze_sel, head_sel=head_sel)
        else:
            # Ablation: redirect each image whole from the other's features to its own angles.
            rec_b = cas.rotate_features(feats_a, source_gaze=gaze_a, source_head=head_a, target_gaze=gaze_b, target_head=head_b)
            rec_a = cas.rotate_features(feats_b, source_gaze=gaze_b, source_head=head_b, target_gaze=gaze_a, target_head=head_a)
        id_a, id_b = (feats_b.z_id, feats_a.z_id) if self.identity_swap else (feats_a.z_id, feats_b.z_id)  # (B, 2K, 3)
        rec_a, rec_b = rec_a.replace(z_id=id_a), rec_b.replace(z_id=id_b)
        out_a, out_b = g.decode(rec_a.cat(rec_b)).split(x_a.shape[0])  # one decoder pass over 2B feature sets
        return {"out_a": out_a, "out_b": out_b, "feats_a": feats_a, "feats_b": feats_b}


def generator_terms(out: dict, batch: dict, *, fake_logits: torch.Tensor | None,
                    rec_weights: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The generator's loss terms of one step, float32 (names match LossWeights).

    rec_weights: optional per-pixel weights {"a": (B, 1, S, S), "b": ...} of the reconstructions (eye regions)."""
    fa, fb = out["feats_a"], out["feats_b"]
    w = rec_weights or {}
    terms = {
        "rec": 0.5
        * (
            losses.reconstruction_loss(output=out["out_a"], target=batch["x_a"], weight=w.get("a"))
            + losses.reconstruction_loss(output=out["out_b"], target=batch["x_b"], weight=w.get("b"))
        ),
        "label": 0.5
        * (
            losses.label_loss(gaze_est=fa.gaze_est, gaze_label=batch["gaze_a"], head_est=fa.head_est, head_label=batch["head_a"])
            + losses.label_loss(gaze_est=fb.gaze_est, gaze_label=batch["gaze_b"], head_est=fb.head_est, head_label=batch["head_b"])
        ),
        "ort": 0.5
        * (
            losses.orthogonality_loss(z_id=fa.z_id, z_gaze=fa.z_gaze, z_head=fa.z_head)
            + losses.orthogonality_loss(z_id=fb.z_id, z_gaze=fb.z_gaze, z_head=fb.z_head)
        ),
    }
    if fake_logits is not None:
        terms["gen"] = losses.generator_loss(fake_logits=fake_logits)
    return terms
