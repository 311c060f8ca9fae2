"""Decoder (patent claim 1, [0018]): detail features (Z_id, Z_g, Z_h) -> face image in [-1, 1].

The three blocks are flattened and concatenated (12K numbers), a fully connected layer lays them out on the
bottleneck grid (flat_channels x g x g), then the encoder is mirrored: residual blocks at the grid, and per
doubling a nearest-neighbour upsample followed by a 3x3 conv (no transposed convs: no checkerboard). The last
doubling goes straight to RGB, followed by tanh.

There are no skip connections from the encoder: everything the image shows must pass through Z, otherwise
the source pose would leak around the bottleneck and rotating Z_g / Z_h would not redirect anything.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regaze.model.encoder import level_resolutions
from regaze.model.layers import NEGATIVE_SLOPE, ResBlock, channels_at, conv_block

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """(z_id (B, 2K, 3), z_gaze (B, K, 3), z_head (B, K, 3)) -> image (B, 3, S, S) in [-1, 1].

    blocks: residual blocks per level, coarsest first ((1, 1, 1): at the grid, 2x and 4x the grid).
    """

    def __init__(
        self,
        *,
        image_size: int,
        k: int,
        channel_base: int,
        channel_max: int,
        blocks: tuple[int, ...],
        flat_channels: int,
        norm: str = "none",
    ):
        super().__init__()
        width = lambda r: channels_at(r, channel_base=channel_base, channel_max=channel_max)  # noqa: E731
        coarse_to_fine = level_resolutions(image_size)[::-1]  # e.g. [8, 16, 32, 64] for 128 px
        self.grid = g = coarse_to_fine[0]
        self.flat_channels = flat_channels
        self.fc = nn.Linear(12 * k, flat_channels * g * g)
        layers: list[nn.Module] = [
            nn.LeakyReLU(NEGATIVE_SLOPE),
            conv_block(in_channels=flat_channels, out_channels=width(g), norm=norm),
        ]
        per_level = dict(zip(coarse_to_fine, blocks))  # resolution -> residual blocks
        layers += [ResBlock(channels=width(g), norm=norm) for _ in range(per_level.get(g, 0))]
        for r in coarse_to_fine[1:]:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv_block(in_channels=width(r // 2), out_channels=width(r), norm=norm),
            ]
            layers += [ResBlock(channels=width(r), norm=norm) for _ in range(per_level.get(r, 0))]
        self.layers = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(width(coarse_to_fine[-1]), 3, 3, padding=1)

    def forward(self, *, z_id: torch.Tensor, z_gaze: torch.Tensor, z_head: torch.Tensor) -> torch.Tensor:
        b, g = z_id.shape[0], self.grid
        z = torch.cat([z_id.flatten(1), z_gaze.flatten(1), z_head.flatten(1)], dim=1)  # (B, 12K)
        h = self.fc(z).view(b, self.flat_channels, g, g)  # (B, flat, g, g)
        h = h.contiguous(memory_format=torch.channels_last)
        h = self.layers(h)  # (B, C, S/2, S/2)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, C, S, S)
        return torch.tanh(self.to_rgb(h))  # (B, 3, S, S)
