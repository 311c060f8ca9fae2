"""Convolution blocks shared by the encoder and the decoder (the discriminator uses plain convs).

No BatchNorm anywhere in the generator: its statistics couple the samples of a batch, and the pair step
encodes a and b in one batch. The default is no normalisation at all (`norm="none"`), because a
per-image normalisation (GroupNorm) divides out global image statistics such as overall brightness, which
the decoder must reproduce from Z alone; residual branches are scaled by 1/sqrt(2) so activations keep
their scale without it. `norm="group"` is available for comparison.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["channels_at", "conv_block", "ResBlock", "NEGATIVE_SLOPE"]

NEGATIVE_SLOPE = 0.2  # LeakyReLU slope, also used for the Kaiming init gain


def channels_at(resolution: int, *, channel_base: int, channel_max: int, channel_min: int = 8) -> int:
    """Width at a feature resolution: min(channel_max, channel_base // resolution) (StyleGAN's rule),
    so widths double each time the resolution halves and every level costs about the same FLOPs."""
    return int(max(channel_min, min(channel_max, channel_base // resolution)))


def _init_conv(conv: nn.Conv2d, *, gain: float = 1.0) -> nn.Conv2d:
    nn.init.kaiming_normal_(conv.weight, a=NEGATIVE_SLOPE, nonlinearity="leaky_relu")
    conv.weight.data.mul_(gain)
    nn.init.zeros_(conv.bias)
    return conv


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "group":
        return nn.GroupNorm(num_groups=min(8, channels), num_channels=channels)
    raise ValueError(f"norm must be 'none' or 'group', got {kind!r}")


def conv_block(*, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, norm: str = "none") -> nn.Sequential:
    """conv -> [norm] -> LeakyReLU; 'same' padding for odd kernels, exact halving for (4, stride 2)."""
    padding = (kernel_size - 1) // 2 if kernel_size % 2 else (kernel_size - stride) // 2
    conv = _init_conv(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding))
    return nn.Sequential(conv, _norm(norm, out_channels), nn.LeakyReLU(NEGATIVE_SLOPE))


class ResBlock(nn.Module):
    """x -> (x + conv(act(conv(x)))) / sqrt(2) at constant width and resolution.

    The second conv starts at half the Kaiming gain (not zero: every parameter must receive a gradient
    from the first step, which the tests check).
    """

    def __init__(self, *, channels: int, norm: str = "none"):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(in_channels=channels, out_channels=channels, norm=norm),
            _init_conv(nn.Conv2d(channels, channels, 3, padding=1), gain=0.5),
            _norm(norm, channels),
        )
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act((x + self.body(x)) * (1.0 / math.sqrt(2.0)))  # (B, C, H, W)
