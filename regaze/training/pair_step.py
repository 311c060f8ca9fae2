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

Two additions of issue 13 (not in the patent), each off unless asked for:
- `random_gaze, random_head` (B, 2): X_a is also redirected whole to these angles (its own Z_id, rotated Z_g and
  Z_h; out["out_random"]), for the training-time estimator's loss on targets pair training never shows;
- `latent=True`: out["latent"] holds each image's pose features rotated to the other's angles, the originals,
  and the auxiliary estimators' readings of the rotated ones (losses.latent_consistency_loss).

Rotations use the ground-truth labels as source and target angles (DESIGN §1); with model.gaze_frame="head"
(lever 6) the gaze labels are first turned into head coordinates (geometry.gaze_in_head), and so are the
random gaze targets. Wrapping this whole step in one nn.Module lets DistributedDataParallel see a single
forward per step. `generator_terms` gathers the
generator's loss terms of the step from its outputs (the losses themselves are in losses.py).
"""
from __future__ import annotations

import torch
from torch import nn

from regaze.geometry import gaze_in_head
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

    def __init__(self, redirector: Redirector, *, cross_swap: bool = True, identity_swap: bool = True, latent: bool = False):
        super().__init__()
        self.redirector = redirector
        self.cross_swap = cross_swap
        self.identity_swap = identity_swap
        self.latent = latent

    def forward(self, *, x_a, x_b, gaze_a, head_a, gaze_b, head_b, gaze_sel, head_sel, random_gaze=None, random_head=None):
        g = self.redirector
        cas = g.separation
        if g.config.gaze_frame == "head":  # Z_g holds head-relative gaze: rotate it between head-relative labels
            gaze_a, gaze_b = gaze_in_head(gaze_a, head_a), gaze_in_head(gaze_b, head_b)
            if random_gaze is not None:
                random_gaze = gaze_in_head(random_gaze, random_head)
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
        # The warping decoder warps the image whose identity it decodes: X_b for X_a^T under the identity swap.
        base_images = torch.cat([x_b, x_a] if self.identity_swap else [x_a, x_b])  # (2B, 3, S, S)
        base_feats = feats_b.cat(feats_a) if self.identity_swap else feats_a.cat(feats_b)
        decode_feats = rec_a.cat(rec_b)
        if random_gaze is not None:  # X_a redirected whole to random targets: its own identity, warped from itself
            rand = cas.rotate_features(feats_a, source_gaze=gaze_a, source_head=head_a, target_gaze=random_gaze, target_head=random_head)
            decode_feats, base_images, base_feats = decode_feats.cat(rand), torch.cat([base_images, x_a]), base_feats.cat(feats_a)
        outs = g.decode(decode_feats, base=base_images, base_feats=base_feats).split(x_a.shape[0])  # one pass over 2B or 3B
        out = {"out_a": outs[0], "out_b": outs[1], "feats_a": feats_a, "feats_b": feats_b,
               "gaze_labels": {"a": gaze_a, "b": gaze_b}}  # (B, 2) each, in the frame of Z_g (the label loss's)
        if random_gaze is not None:
            out["out_random"] = outs[2]
        if self.latent:
            both = feats_a.cat(feats_b)
            rot = cas.rotate_features(both, source_gaze=torch.cat([gaze_a, gaze_b]), source_head=torch.cat([head_a, head_b]),
                                      target_gaze=torch.cat([gaze_b, gaze_a]), target_head=torch.cat([head_b, head_a]))
            own = feats_b.cat(feats_a)  # what each rotated feature should equal: the other image's
            dec = g.decomposition
            out["latent"] = {
                "rotated": {"gaze": rot.z_gaze, "head": rot.z_head}, "own": {"gaze": own.z_gaze, "head": own.z_head},
                "z_id_a": feats_a.z_id, "z_id_b": feats_b.z_id,
                "rotated_est": {"gaze": dec.gaze_estimator(rot.z_gaze), "head": dec.head_estimator(rot.z_head)},  # (2B, 2)
                "target_angles": {"gaze": torch.cat([gaze_b, gaze_a]), "head": torch.cat([head_b, head_a])},
            }
        return out


def generator_terms(out: dict, batch: dict, *, fake_logits: torch.Tensor | None,
                    rec_weights: dict[str, torch.Tensor] | None = None, guide=None,
                    random_targets: dict[str, torch.Tensor] | None = None, edge: bool = False) -> dict[str, torch.Tensor]:
    """The generator's loss terms of one step, float32 (names match LossWeights).

    rec_weights: optional per-pixel weights {"a": (B, 1, S, S), "b": ...} of the reconstructions (eye regions).
    guide: the frozen training-time estimator, images (N, 3, S, S) -> {"gaze", "head": (N, 2) rad}; with it the
    reconstructions are read (term "guide") and, with random_targets {"gaze", "head": (B, 2)}, out["out_random"]
    (term "guide_random"). edge: also the image-gradient term "edge" of the reconstructions (same weights)."""
    fa, fb = out["feats_a"], out["feats_b"]
    # the auxiliary gaze estimator reads gaze in Z_g's frame; the guide reads the images in the camera frame
    gaze_labels = out.get("gaze_labels") or {"a": batch["gaze_a"], "b": batch["gaze_b"]}
    w = rec_weights or {}
    terms = {
        "rec": 0.5
        * (
            losses.reconstruction_loss(output=out["out_a"], target=batch["x_a"], weight=w.get("a"))
            + losses.reconstruction_loss(output=out["out_b"], target=batch["x_b"], weight=w.get("b"))
        ),
        "label": 0.5
        * (
            losses.label_loss(gaze_est=fa.gaze_est, gaze_label=gaze_labels["a"], head_est=fa.head_est, head_label=batch["head_a"])
            + losses.label_loss(gaze_est=fb.gaze_est, gaze_label=gaze_labels["b"], head_est=fb.head_est, head_label=batch["head_b"])
        ),
        "ort": 0.5
        * (
            losses.orthogonality_loss(z_id=fa.z_id, z_gaze=fa.z_gaze, z_head=fa.z_head)
            + losses.orthogonality_loss(z_id=fb.z_id, z_gaze=fb.z_gaze, z_head=fb.z_head)
        ),
    }
    if edge:
        terms["edge"] = 0.5 * (losses.edge_loss(output=out["out_a"], target=batch["x_a"], weight=w.get("a"))
                               + losses.edge_loss(output=out["out_b"], target=batch["x_b"], weight=w.get("b")))
    if fake_logits is not None:
        terms["gen"] = losses.generator_loss(fake_logits=fake_logits)
    if "latent" in out:
        terms["latent"] = losses.latent_consistency_loss(**out["latent"])
    if guide is not None:
        images = [out["out_a"], out["out_b"]] + ([out["out_random"]] if "out_random" in out else [])
        read = guide(torch.cat(images).float())  # one pass over 2B or 3B images
        gaze_read, head_read = read["gaze"].split(batch["x_a"].shape[0]), read["head"].split(batch["x_a"].shape[0])
        terms["guide"] = 0.5 * sum(
            losses.redirection_loss(gaze_read=gaze_read[i], head_read=head_read[i], gaze_target=batch[f"gaze_{k}"],
                                    head_target=batch[f"head_{k}"]) for i, k in enumerate("ab"))
        if "out_random" in out:
            terms["guide_random"] = losses.redirection_loss(gaze_read=gaze_read[2], head_read=head_read[2],
                                                            gaze_target=random_targets["gaze"], head_target=random_targets["head"])
    return terms
