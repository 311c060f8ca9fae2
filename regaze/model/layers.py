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
import torch.nn.functional as F
from torch import nn

__all__ = ["channels_at", "conv_block", "PointwiseConv2d", "ResBlock", "NEGATIVE_SLOPE"]

NEGATIVE_SLOPE = 0.2  # LeakyReLU slope, also used for the Kaiming init gain


def channels_at(resolution: int, *, channel_base: int, channel_max: int, channel_min: int = 8) -> int:
    """Width at a feature resolution: min(channel_max, channel_base // resolution) (StyleGAN's rule),
    so widths double each time the resolution halves and every level costs about the same FLOPs."""
    return int(max(channel_min, min(channel_max, channel_base // resolution)))


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution computed as a matrix product over the channels; every 1x1 conv in regaze is one.

    Why not `nn.Conv2d(c_in, c_out, 1)`: torch 2.13.0's bundled oneDNN corrupts the heap (segfault, "free():
    invalid size", or a hang with 2 threads) in the weight gradient of a 1x1 convolution on AVX2 CPUs
    (`jit_avx2_1x1_convolution_bwd_weights_t::execute_backward_weights`, reached through
    `mkldnn_convolution_backward_weights`). Measured trigger: stride 2, channels_last input, 2 <= c_in < 8,
    e.g. (30, 4, 32, 32) -> 8 channels; AVX-512 kernels and stride 1 were not seen to fail. A strided 1x1
    conv equals subsampling followed by a stride-1 one, and a stride-1 one is a GEMM over channels, which
    never enters that kernel. tests/test_onednn_guard.py reruns the trigger under ONEDNN_MAX_CPU_ISA=AVX2.

    Same parameters and state_dict keys as nn.Conv2d (weight (C_out, C_in, 1, 1), bias (C_out,)), so
    checkpoints of either load into the other.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, 1, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sy, sx = self.stride
        if (sy, sx) != (1, 1):
            x = x[:, :, ::sy, ::sx]  # (B, C_in, ceil(H / s), ceil(W / s)): nn.Conv2d's output grid for padding 0
        y = F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias)  # (B, H', W', C_out)
        return y.permute(0, 3, 1, 2)  # (B, C_out, H', W'), channels_last in memory


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
