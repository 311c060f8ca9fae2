"""Decoder (patent claim 1, [0018]): detail features (Z_id, Z_g, Z_h) -> face image in [-1, 1].

The three blocks are flattened and concatenated (12K numbers), a fully connected layer lays them out on the
bottleneck grid (flat_channels x g x g), then the encoder is mirrored: residual blocks at the grid, and per
doubling a nearest-neighbour upsample followed by a 3x3 conv (no transposed convs: no checkerboard). The last
doubling goes to RGB (tanh), either straight or, with `full_res_channels`, through one 3x3 conv stage at the
image's own resolution (at 64 px the iris is 1-2 px wide: the patent's decoder decides it at S/2).

Two modes (`mode`):
- "pure": the patent's decoder. Everything the image shows passes through Z; there are no skips from the
  encoder (the source pose would leak around the bottleneck and rotating Z_g / Z_h would redirect nothing).
- "warp" (DeepWarp-style, not in the patent): the decoder also predicts a flow field and a blend mask, and
  warps the *base* image, the image whose Z_id it decodes (the other image of the pair under the identity
  swap, the source at inference):
      out = m * warp(base, flow) + (1 - m) * rendered          m, flow from the trunk at S/2, upsampled
  Texture, hair and background are copied, so they stay sharp, and the rendered image only has to fill what
  the warp cannot show (disocclusions, the iris). The flow and mask are computed from detail features only:
  the target's (Z_id, Z_g, Z_h) and the base image's own pose features (Z_g, Z_h before any rotation: a flow
  moves pixels *from* where the base shows them). No pixel of the base reaches the trunk; the base enters
  only through the sampling, so a zero flow shows the base's pose, which the losses reject.
  With `warp_refine` (issue 13), a small network at the image's own resolution then corrects the flow and the
  mask: it reads the first warp's result, the rendered image, the mask and the trunk's features, and predicts
  a residual of the three warp logits (zero-initialised: it starts as the plain warp), then the base is
  warped again with the corrected flow. The first warp misplaces edges by a pixel or two (its flow comes
  from the latent at S/2; at 64 px most of the head-only error lies on edges); the refinement sees where they
  landed. The base still enters only through sampling: the refinement sees it already warped into the output.
  Measured (docs/RESULTS.md): at half the width it costs 45 % of the steps and does not pay at equal CPU time; off.
  With `warp_upsample="convex"` (issue 13), the flow and mask logits go from S/2 to S not bilinearly but as
  RAFT does (Teed and Deng 2020): a 3x3 conv on the trunk predicts, for each of the four full-resolution pixels
  of a coarse pixel, softmax weights over its 3x3 coarse neighbours, so a flow edge (head against background)
  can stay a step instead of a two-pixel ramp. Zero-initialised weights give the 3x3 mean.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regaze.model.encoder import level_resolutions
from regaze.model.layers import NEGATIVE_SLOPE, ResBlock, channels_at, conv_block

__all__ = ["Decoder", "DECODER_MODES", "warp_image", "convex_upsample"]

DECODER_MODES = ("pure", "warp")
FLOW_MAX = 0.5  # largest displacement, in units of the half image ([-1, 1] coordinates): a quarter of the image


class Decoder(nn.Module):
    """(z_id (B, 2K, 3), z_gaze (B, K, 3), z_head (B, K, 3)[, base, base_gaze, base_head]) -> (B, 3, S, S) in [-1, 1].

    blocks: residual blocks per level, coarsest first ((1, 1, 1): at the grid, 2x and 4x the grid).
    mode: "pure" or "warp" (module docstring); full_res_channels: width of the stage at S (0 = none);
    warp_refine: width of the full-resolution flow and mask refinement ("warp" only; 0 = none);
    warp_upsample: "bilinear" or "convex", how the warp logits reach S ("warp" only).
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
        mode: str = "pure",
        full_res_channels: int = 0,
        warp_refine: int = 0,
        warp_upsample: str = "bilinear",
    ):
        super().__init__()
        if mode not in DECODER_MODES:
            raise ValueError(f"decoder mode must be one of {DECODER_MODES}, got {mode!r}")
        width = lambda r: channels_at(r, channel_base=channel_base, channel_max=channel_max)  # noqa: E731
        coarse_to_fine = level_resolutions(image_size)[::-1]  # e.g. [8, 16, 32, 64] for 128 px
        self.mode = mode
        self.grid = g = coarse_to_fine[0]
        self.flat_channels = flat_channels
        z_numbers = 12 * k + (6 * k if mode == "warp" else 0)  # warp: + the base's Z_g, Z_h
        self.fc = nn.Linear(z_numbers, flat_channels * g * g)
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
        last = width(coarse_to_fine[-1])  # channels at S/2
        self.full_res = None
        if full_res_channels:
            self.full_res = conv_block(in_channels=last, out_channels=full_res_channels, norm=norm)
            last_rgb = full_res_channels
        else:
            last_rgb = last
        self.to_rgb = nn.Conv2d(last_rgb, 3, 3, padding=1)
        self.to_warp = None
        if mode == "warp":
            self.to_warp = nn.Conv2d(last, 3, 3, padding=1)  # (flow x, flow y, mask logit) at S/2
            nn.init.zeros_(self.to_warp.weight)  # start as the identity warp, half blended
            nn.init.zeros_(self.to_warp.bias)
        self.upsample_weights = None
        if warp_upsample not in ("bilinear", "convex"):
            raise ValueError(f"warp_upsample must be 'bilinear' or 'convex', got {warp_upsample!r}")
        if warp_upsample == "convex":
            if mode != "warp":
                raise ValueError("convex upsampling needs the warping decoder (mode 'warp')")
            self.upsample_weights = nn.Conv2d(last, 9 * 4, 3, padding=1)  # (B, 9 neighbours x 4 sub-pixels, S/2, S/2)
            nn.init.zeros_(self.upsample_weights.weight)  # start as the 3x3 mean
            nn.init.zeros_(self.upsample_weights.bias)
        self.refine = None
        if warp_refine:
            if mode != "warp":
                raise ValueError("warp_refine needs the warping decoder (mode 'warp')")
            refine_in = 3 + 3 + 1 + last  # warped base, rendered image, mask, trunk features (upsampled)
            last_conv = nn.Conv2d(warp_refine, 3, 3, padding=1)  # residual of (flow x, flow y, mask logit)
            nn.init.zeros_(last_conv.weight)  # start as the plain warp
            nn.init.zeros_(last_conv.bias)
            self.refine = nn.Sequential(
                conv_block(in_channels=refine_in, out_channels=warp_refine, norm=norm),
                nn.Conv2d(warp_refine, warp_refine, 3, padding=2, dilation=2),  # receptive field 9 px at S
                nn.LeakyReLU(NEGATIVE_SLOPE),
                last_conv,
            )

    def forward(self, *, z_id: torch.Tensor, z_gaze: torch.Tensor, z_head: torch.Tensor,
                base: torch.Tensor | None = None, base_gaze: torch.Tensor | None = None,
                base_head: torch.Tensor | None = None) -> torch.Tensor:
        """base (B, 3, S, S) in [-1, 1], base_gaze / base_head (B, K, 3): required in "warp" mode, unused in "pure"."""
        b, g = z_id.shape[0], self.grid
        parts = [z_id.flatten(1), z_gaze.flatten(1), z_head.flatten(1)]
        if self.mode == "warp":
            if base is None or base_gaze is None or base_head is None:
                raise ValueError("the warping decoder needs base, base_gaze and base_head (the image it warps and its own pose features)")
            parts += [base_gaze.flatten(1), base_head.flatten(1)]
        z = torch.cat(parts, dim=1)  # (B, 12K) or (B, 18K)
        h = self.fc(z).view(b, self.flat_channels, g, g)  # (B, flat, g, g)
        h = h.contiguous(memory_format=torch.channels_last)
        h = self.layers(h)  # (B, C, S/2, S/2)
        full = full_h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, C, S, S)
        if self.full_res is not None:
            full = self.full_res(full)  # (B, C_full, S, S)
        rendered = torch.tanh(self.to_rgb(full))  # (B, 3, S, S)
        if self.to_warp is None:
            return rendered
        if self.upsample_weights is None:
            w = F.interpolate(self.to_warp(h).float(), scale_factor=2.0, mode="bilinear", align_corners=False)  # (B, 3, S, S)
        else:
            w = convex_upsample(self.to_warp(h).float(), weights=self.upsample_weights(h).float())  # (B, 3, S, S)
        flow = FLOW_MAX * torch.tanh(w[:, :2])  # (B, 2, S, S) in [-1, 1] image coordinates
        mask = torch.sigmoid(w[:, 2:3])  # (B, 1, S, S): 1 = the warped base, 0 = the rendered image
        warped = warp_image(base.float(), flow=flow)  # (B, 3, S, S)
        if self.refine is not None:
            r_in = torch.cat([warped, rendered.float(), 2.0 * mask - 1.0, full_h.float()], dim=1)  # (B, 7 + C, S, S)
            w = w + self.refine(r_in.to(h.dtype)).float()  # (B, 3, S, S): corrected warp logits
            flow = FLOW_MAX * torch.tanh(w[:, :2])
            mask = torch.sigmoid(w[:, 2:3])
            warped = warp_image(base.float(), flow=flow)
        return (mask * warped + (1.0 - mask) * rendered.float()).to(rendered.dtype)


def convex_upsample(x: torch.Tensor, *, weights: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W), weights (B, 9 * 4, H, W) logits -> (B, C, 2H, 2W): full-resolution pixel (2y + i, 2x + j)
    = sum_k softmax_k(weights[:, k * 4 + 2i + j]) x[neighbour k of (y, x)], k over the 3x3 neighbours in
    row-major order (edges repeated). Written with shifted slices, not unfold, so that it exports to ONNX."""
    b, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # (B, C, H + 2, W + 2)
    neighbours = torch.stack([padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], dim=2)  # (B, C, 9, H, W)
    m = weights.view(b, 9, 4, h, w).softmax(dim=1)  # (B, 9, 4, H, W)
    out = (neighbours.unsqueeze(3) * m.unsqueeze(1)).sum(dim=2)  # (B, C, 4, H, W)
    return out.view(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


def warp_image(image: torch.Tensor, *, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out(p) = image(p + flow(p)), bilinear, border pixels repeated outside.

    image (B, C, H, W); flow (B, 2, H, W) as (x, y) displacements in [-1, 1] image coordinates
    (align_corners=False: -1 and 1 are the outer edges of the border pixels)."""
    b, _, h, w = image.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=image.device, dtype=flow.dtype)  # pixel centres
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=image.device, dtype=flow.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    grid = torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0) + flow.permute(0, 2, 3, 1)  # (B, H, W, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
