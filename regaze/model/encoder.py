"""Encoder (patent claim 1, [0019]): face image -> face feature f_e.

A plain residual CNN: a 4x4 stride-2 stem, then one 3x3 stride-2 conv per halving until the grid is at most
8x8 (128 px -> 8x8, 64 px -> 8x8, 224 px -> 7x7), with residual blocks at the coarsest levels. Widths
follow `channels_at` (double per halving, capped), so every level costs about the same FLOPs.
f_e keeps its grid, (B, C, g, g): the decomposition reads it spatially.
"""
from __future__ import annotations

import torch
from torch import nn

from regaze.model.layers import ResBlock, channels_at, conv_block

__all__ = ["Encoder", "grid_size", "level_resolutions"]


def grid_size(image_size: int) -> int:
    """The bottleneck grid: image_size halved until it is at most 8 (128 -> 8, 224 -> 7)."""
    r = image_size
    while r > 8:
        if r % 2:
            raise ValueError(f"image_size {image_size} cannot be halved down to <= 8 px")
        r //= 2
    return r


def level_resolutions(image_size: int) -> list[int]:
    """Feature resolutions after each halving, fine to coarse: 128 -> [64, 32, 16, 8]."""
    out, r = [], image_size
    g = grid_size(image_size)
    while r > g:
        r //= 2
        out.append(r)
    return out


class Encoder(nn.Module):
    """x (B, 3, S, S) in [-1, 1] -> f_e (B, out_channels, grid, grid).

    blocks: residual blocks per level, coarsest first ((1, 1): one at the grid, one at twice the grid).
    """

    def __init__(
        self,
        *,
        image_size: int,
        channel_base: int,
        channel_max: int,
        blocks: tuple[int, ...],
        norm: str = "none",
    ):
        super().__init__()
        width = lambda r: channels_at(r, channel_base=channel_base, channel_max=channel_max)  # noqa: E731
        resolutions = level_resolutions(image_size)
        self.grid = resolutions[-1]
        layers: list[nn.Module] = []
        in_ch = 3
        per_level = dict(zip(resolutions[::-1], blocks))  # resolution -> residual blocks
        for i, r in enumerate(resolutions):
            out_ch = width(r)
            # 4x4 stem: an even kernel sees every input pixel exactly evenly at stride 2.
            layers.append(conv_block(in_channels=in_ch, out_channels=out_ch, kernel_size=4 if i == 0 else 3, stride=2, norm=norm))
            layers += [ResBlock(channels=out_ch, norm=norm) for _ in range(per_level.get(r, 0))]
            in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C, g, g)
