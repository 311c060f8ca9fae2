"""Irrelevant Attribute Decomposition (patent claim 1, [0020]) and the `Features` it produces.

    f_un = D(f_e)                 decomposer: the identity part of the face feature
    f_re = f_e - f_un             the rest: gaze and head
    Z_id = F_id(f_un)             (B, 2K, 3)  identity, lighting, background, expression: everything else
    Z_g, Z_h = F_gh(f_re)         (B, K, 3) each: blocks of 3-vectors that a 3x3 rotation acts on
    m~g = E_g(Z_g), m~h = E_h(Z_h)   auxiliary estimators ([0020], [0050]): (pitch, yaw) in radians

D is a position-wise two-layer MLP (1x1 convs) on the grid. F_id and F_gh are fully connected layers, as in
the patent, factorised as a 1x1 conv to `flat_channels` followed by a Linear on the flattened grid (a
low-rank FC: 8x8x256 -> 6K directly would cost 12.6 M parameters per head at K = 128).
Z_id has as many elements as Z_g and Z_h together, so that the element-wise products of the orthogonality
loss ([0044]) are defined.

Feature-norm collapse: L_ort can be lowered by shrinking the features instead of separating them. With
`z_norm="rms"` each block is scaled, per sample, to unit root-mean-square over all its K x 3 (or 2K x 3)
elements. A norm over the whole block is invariant under any rotation of the 3-vectors, so the scaling
commutes with the rotation of the separation module (rotate-then-normalise = normalise-then-rotate).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from regaze.geometry import canonical_pitchyaw
from regaze.model.layers import NEGATIVE_SLOPE, PointwiseConv2d

__all__ = ["Features", "IrrelevantAttributeDecomposition", "rms_normalize"]


@dataclass(frozen=True)
class Features:
    """The detail features of a batch. Angles are (pitch, yaw) radians, the auxiliary estimates of the
    *encoded* images; rotating a feature leaves them as they were.

    z_id (B, 2K, 3); z_gaze, z_head (B, K, 3); gaze_est, head_est (B, 2).
    """

    z_id: torch.Tensor
    z_gaze: torch.Tensor
    z_head: torch.Tensor
    gaze_est: torch.Tensor
    head_est: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.z_id.shape[0]

    def replace(self, **changes: torch.Tensor) -> "Features":
        """A copy with some fields replaced, e.g. feats.replace(z_gaze=rotated)."""
        return dataclasses.replace(self, **changes)

    def split(self, split_size: int) -> tuple["Features", ...]:
        """Split along the batch like torch.split: feats.split(B) of a 2B batch -> (first B, last B)."""
        parts = [getattr(self, f.name).split(split_size) for f in dataclasses.fields(self)]
        return tuple(Features(*fields) for fields in zip(*parts))

    def cat(self, *others: "Features") -> "Features":
        """Concatenate along the batch: a.cat(b) -> (B_a + B_b, ...)."""
        return Features(*(torch.cat([getattr(x, f.name) for x in (self, *others)]) for f in dataclasses.fields(self)))

    def detach(self) -> "Features":
        return Features(*(getattr(self, f.name).detach() for f in dataclasses.fields(self)))


def rms_normalize(z: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """(B, N, 3) -> same, divided per sample by the RMS over all N x 3 elements (rotation-invariant)."""
    rms = z.float().pow(2).mean(dim=(1, 2), keepdim=True).add(eps).sqrt()  # (B, 1, 1)
    return (z.float() / rms).to(z.dtype)  # (B, N, 3)


class _FlatFC(nn.Module):
    """Fully connected layer on a grid: 1x1 conv (C -> flat_channels), flatten, Linear -> out_features."""

    def __init__(self, *, in_channels: int, grid: int, flat_channels: int, out_features: int):
        super().__init__()
        self.reduce = PointwiseConv2d(in_channels, flat_channels)
        self.fc = nn.Linear(flat_channels * grid * grid, out_features)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.reduce(f).flatten(1))  # (B, out_features)


def _estimator(*, k: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * k, hidden), nn.LeakyReLU(NEGATIVE_SLOPE), nn.Linear(hidden, 2))


class IrrelevantAttributeDecomposition(nn.Module):
    """f_e (B, C, g, g) -> Features (Z_id, Z_g, Z_h, m~g, m~h)."""

    def __init__(self, *, in_channels: int, grid: int, k: int, flat_channels: int, estimator_hidden: int, z_norm: str = "rms"):
        super().__init__()
        if z_norm not in ("rms", "none"):
            raise ValueError(f"z_norm must be 'rms' or 'none', got {z_norm!r}")
        self.k = k
        self.z_norm = z_norm
        self.decomposer = nn.Sequential(
            PointwiseConv2d(in_channels, in_channels), nn.LeakyReLU(NEGATIVE_SLOPE), PointwiseConv2d(in_channels, in_channels)
        )
        fc = dict(in_channels=in_channels, grid=grid, flat_channels=flat_channels, out_features=6 * k)
        self.identity_fc = _FlatFC(**fc)  # F(f_un) = Z_id
        self.pose_fc = _FlatFC(**fc)  # F(f_re) = Z_g, Z_h
        self.gaze_estimator = _estimator(k=k, hidden=estimator_hidden)  # m~g from Z_g
        self.head_estimator = _estimator(k=k, hidden=estimator_hidden)  # m~h from Z_h

    def _norm(self, z: torch.Tensor) -> torch.Tensor:
        return rms_normalize(z) if self.z_norm == "rms" else z

    def forward(self, f_e: torch.Tensor) -> Features:
        b, k = f_e.shape[0], self.k
        f_un = self.decomposer(f_e)  # (B, C, g, g)
        f_re = f_e - f_un  # (B, C, g, g)
        z_id = self._norm(self.identity_fc(f_un).view(b, 2 * k, 3))  # (B, 2K, 3)
        z_gaze, z_head = self.pose_fc(f_re).view(b, 2, k, 3).unbind(1)  # (B, K, 3) each
        z_gaze, z_head = self._norm(z_gaze), self._norm(z_head)
        # (B, 2) rad, on the labels' branch: pitch in [-pi/2, pi/2], yaw in [-pi, pi) (geometry.canonical_pitchyaw)
        gaze_est = canonical_pitchyaw(self.gaze_estimator(z_gaze))
        head_est = canonical_pitchyaw(self.head_estimator(z_head))
        return Features(z_id=z_id, z_gaze=z_gaze, z_head=z_head, gaze_est=gaze_est, head_est=head_est)
