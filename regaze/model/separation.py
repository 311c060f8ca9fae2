"""Cross Attribute Separation (patent claims 1-4, [0023]-[0029]): rotate and swap the target feature.

The *target feature* is Z_g (gaze) or Z_h (head), a block of K 3-vectors (B, K, 3). Redirecting it from its
current angle c_s to a target angle c_t multiplies every 3-vector by

    R^{st} = R(c_t) . R(c_s)^T,   R(pitch, yaw) = R_y(yaw) . R_x(pitch)   (claim 3, geometry.relative_rotation)
    z'_k = R^{st} z_k             i.e. Z' = einsum('bij,bkj->bki', R, Z)

Gaze and head act on separate features, so rotating gaze then head equals rotating both at once, exactly.

API (no parameters; every method is a pure function of its inputs):
    rotate(z, source=, target=)                 one block, every sample
    choose_target(B, mode=, generator=)         per-sample target choice (claim 4) -> (gaze_sel, head_sel)
    rotate_features(feats, source_gaze=, ..., gaze_sel=, head_sel=)
                                                rotates only the selected features; the others come back
                                                bitwise unchanged (torch.where on a per-sample mask)
    swap(into=, from_=, gaze_sel=, head_sel=)   the (rotated) target feature of one image replaces the target
                                                feature of the other (claim 5's feature exchange)

Claim-5 pair step with these pieces (the trainer's `PairForward` does the same with the labels):
    feats_ab = cas.rotate_features(feats_a, source_gaze=g_a, source_head=h_a, target_gaze=g_b, target_head=h_b,
                                   gaze_sel=gs, head_sel=hs)
    rec_b = cas.swap(into=feats_b, from_=feats_ab, gaze_sel=gs, head_sel=hs)   # decode -> must reproduce X_b

Rotations run in float32 with autocast off (angles and rotations are precision-sensitive, STYLE 9) and are
returned in the input dtype.
"""
from __future__ import annotations

import torch
from torch import nn

from regaze.geometry import relative_rotation
from regaze.model.decomposition import Features

__all__ = ["CrossAttributeSeparation", "TARGET_MODES"]

TARGET_MODES = ("random", "gaze", "head", "both")


def _pick(sel: torch.Tensor, when_true: torch.Tensor, when_false: torch.Tensor) -> torch.Tensor:
    """Per-sample choice between two (B, ...) tensors; rows not selected are `when_false` bit for bit."""
    return torch.where(sel.to(when_true.device).view(-1, *([1] * (when_true.dim() - 1))), when_true, when_false)


class CrossAttributeSeparation(nn.Module):
    """Rotation and exchange of the target features; holds no parameters."""

    def rotate(self, z: torch.Tensor, *, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """z (B, K, 3); source, target (B, 2) pitch/yaw radians -> R(target) R(source)^T z, (B, K, 3)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            r = relative_rotation(source.float(), target.float())  # (B, 3, 3)
            # z'_k = R z_k for every 3-vector k: Z' = Z R^T (= einsum('bij,bkj->bki', R, Z)).
            out = torch.matmul(z.float(), r.transpose(1, 2))  # (B, K, 3)
        return out.to(z.dtype)

    @staticmethod
    def choose_target(
        batch_size: int, *, mode: str = "random", generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Which feature is the target, per sample (claim 4) -> (gaze_sel, head_sel), bool (B,) on the CPU.

        random: each sample independently gaze XOR head, probability 1/2 (a pair batch may mix);
        gaze / head: always that one; both: both features (an ablation, and the redirect() case).
        """
        if mode == "random":
            gaze_sel = torch.rand(batch_size, generator=generator) < 0.5  # (B,)
            return gaze_sel, ~gaze_sel
        if mode not in TARGET_MODES:
            raise ValueError(f"target mode must be one of {TARGET_MODES}, got {mode!r}")
        gaze_sel = torch.full((batch_size,), mode in ("gaze", "both"))
        head_sel = torch.full((batch_size,), mode in ("head", "both"))
        return gaze_sel, head_sel

    def rotate_features(
        self,
        feats: Features,
        *,
        source_gaze: torch.Tensor | None = None,
        source_head: torch.Tensor | None = None,
        target_gaze: torch.Tensor | None = None,
        target_head: torch.Tensor | None = None,
        gaze_sel: torch.Tensor | None = None,
        head_sel: torch.Tensor | None = None,
    ) -> Features:
        """Rotate Z_g from source_gaze to target_gaze and Z_h from source_head to target_head, (B, 2) radians.

        A feature whose target angle is None is left as it is. With gaze_sel / head_sel (bool (B,)) only the
        selected samples are rotated; the rows not selected, Z_id and the estimates are returned unchanged,
        bit for bit. A source angle left as None defaults to the features' own estimate (m~g, m~h), detached.
        """
        z_gaze, z_head = feats.z_gaze, feats.z_head
        if target_gaze is not None:
            src = feats.gaze_est.detach() if source_gaze is None else source_gaze
            rotated = self.rotate(z_gaze, source=src, target=target_gaze)  # (B, K, 3)
            z_gaze = rotated if gaze_sel is None else _pick(gaze_sel, rotated, z_gaze)
        if target_head is not None:
            src = feats.head_est.detach() if source_head is None else source_head
            rotated = self.rotate(z_head, source=src, target=target_head)  # (B, K, 3)
            z_head = rotated if head_sel is None else _pick(head_sel, rotated, z_head)
        return feats.replace(z_gaze=z_gaze, z_head=z_head)

    def swap(self, *, into: Features, from_: Features, gaze_sel: torch.Tensor, head_sel: torch.Tensor) -> Features:
        """`into` with its gaze / head feature replaced by `from_`'s where gaze_sel / head_sel (bool (B,)).

        Z_id, the estimates and the features not selected stay `into`'s, bit for bit.
        """
        return into.replace(
            z_gaze=_pick(gaze_sel, from_.z_gaze, into.z_gaze),  # (B, K, 3)
            z_head=_pick(head_sel, from_.z_head, into.z_head),  # (B, K, 3)
        )

    def forward(self, feats: Features, **angles_and_masks) -> Features:
        """Same as rotate_features."""
        return self.rotate_features(feats, **angles_and_masks)
