"""PatchGAN discriminator for the adversarial losses of [0046]-[0047].

`layers` 4x4 stride-2 convs with LeakyReLU, then a 3x3 conv to one logit per patch. With 3 layers each logit
sees a 38 x 38 px patch (about an eye region at 128 px), and a 128 px image gives a 16 x 16 logit map.
No normalisation layers; spectral normalisation (on by default) bounds each conv's Lipschitz constant
instead. Outputs are logits: the losses apply softplus (regaze/training/losses.py).
"""
from __future__ import annotations

import torch
from torch import nn

from regaze.model.layers import NEGATIVE_SLOPE, channels_at

__all__ = ["Discriminator"]


class Discriminator(nn.Module):
    """x (B, 3, S, S) in [-1, 1] -> logits (B, 1, S / 2**layers, S / 2**layers)."""

    def __init__(self, *, image_size: int, channel_base: int = 2048, channel_max: int = 256, layers: int = 3, spectral_norm: bool = True):
        super().__init__()
        if image_size % 2**layers:
            raise ValueError(f"image_size {image_size} is not divisible by 2**layers = {2 ** layers}")
        wrap = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        blocks: list[nn.Module] = []
        in_ch, r = 3, image_size
        for _ in range(layers):
            r //= 2
            out_ch = channels_at(r, channel_base=channel_base, channel_max=channel_max)
            blocks += [wrap(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1)), nn.LeakyReLU(NEGATIVE_SLOPE)]
            in_ch = out_ch
        blocks.append(wrap(nn.Conv2d(in_ch, 1, 3, padding=1)))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, 1, S / 2**layers, S / 2**layers)
