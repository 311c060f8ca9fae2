"""Redirector: the patent's redirection model (claim 1) = Encoder -> IAD -> CAS -> Decoder.

    feats = redirector.encode(x)          Features: z_id (B, 2K, 3), z_gaze, z_head (B, K, 3), gaze_est, head_est (B, 2)
    feats = redirector.separation.rotate_features(feats, source_gaze=..., target_gaze=..., ...)
    x_new = redirector.decode(feats)      (B, 3, S, S) in [-1, 1]
    out, sources = redirector.redirect(images, gaze=..., head=...)   user-facing, validated, no_grad

Widths (defaults of ModelConfig at 128 px), and why. The budget is a CPU one: a training step of 4 pairs
(encode 8 images, decode 4, discriminator, backward, Adam) in < 1/23 s on two cores, and encode + decode at
>= 130 images/s. Dense convs run at ~200 GFLOP/s forward on two AVX-512 cores (oneDNN), so that is about
5 GFLOPs of forward work per training step and < 1 GFLOP per image. FLOPs go to the decoder first: it
renders the identity detail, the encoder only has to extract it.
- Z is what reaches the decoder: 12K = 1536 numbers at K = 128 (Z_id 768, Z_g 384, Z_h 384), against
  ST-ED's 16 3-vectors per factor. See the ModelConfig note on K.
- Widths min(256, 1536 / r): 24, 48, 96, 192 channels at 64, 32, 16, 8 px, so every level costs about the
  same FLOPs. Stride-2 convs reach the 8x8 grid early (a 4x4 stem, then one 3x3 stride-2 conv per halving).
- Encoder (0.24 GFLOPs/image): residual blocks at 8x8 and 16x16 only.
- Decoder (0.54 GFLOPs/image): a fully connected layer lays Z out as 32 x 8 x 8, residual blocks at 8, 16
  and 32 px (where the eyes and the face layout are decided: an eye is ~5 px wide at 32 px), nearest-upsample
  + 3x3 conv per doubling (no checkerboard), and the last doubling straight to RGB: a 24-channel 64 px map is
  the finest feature map, because a full-width 128 px stage would cost more than the rest of the decoder.
- No encoder-to-decoder skips (pose would leak around the bottleneck and rotating Z would redirect
  nothing); no BatchNorm or GroupNorm (layers.py says why); dense 3x3 convs, not depthwise-separable ones
  (memory-bound on a CPU); feature maps channels_last.
- Scaling up (a GPU, or quality first): raise channel_base (2048 -> 32..256 channels; 1.4 GFLOPs/image)
  and the block counts; every figure is printed by `regaze model summary`.
Measured figures: benchmarks/results/model_speed.json (`python -m benchmarks.model_speed`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from regaze.config import ModelConfig
from regaze.errors import RegazeError
from regaze.model.framing import eye_mask, framing_from_attrs
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD, gaze_in_camera, gaze_in_head
from regaze.model.decoder import Decoder
from regaze.model.decomposition import Features, IrrelevantAttributeDecomposition
from regaze.model.encoder import Encoder
from regaze.model.separation import CrossAttributeSeparation

__all__ = ["Redirector"]


class Redirector(nn.Module):
    """The generator. Owns no optimizer, loss or device; `.to(device)` as any module."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = cfg = config if config is not None else ModelConfig()
        widths = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, norm=cfg.norm)
        self.encoder = Encoder(image_size=cfg.image_size, blocks=cfg.encoder_blocks, **widths)
        self.decomposition = IrrelevantAttributeDecomposition(
            in_channels=self.encoder.out_channels, grid=self.encoder.grid, k=cfg.k,
            flat_channels=cfg.flat_channels, estimator_hidden=cfg.estimator_hidden, z_norm=cfg.z_norm,
        )
        self.separation = CrossAttributeSeparation()
        self.decoder = Decoder(image_size=cfg.image_size, k=cfg.k, blocks=cfg.decoder_blocks, flat_channels=cfg.flat_channels,
                               mode=cfg.decoder_mode, full_res_channels=cfg.decoder_full_res,
                               warp_refine=cfg.decoder_warp_refine,
                               warp_upsample=cfg.decoder_warp_upsample, **widths)
        self.to(memory_format=torch.channels_last)
        # Where the eyes are in this model's images (for compose="eyes"): the framing of the training data,
        # set by train() and load_redirector() from the checkpoint; ETH-XGaze's normalization until then.
        self.framing = framing_from_attrs({}, size=cfg.image_size)

    # ------------------------------------------------------------------------------- training API
    def encode(self, x: torch.Tensor) -> Features:
        """x (B, 3, S, S) float in [-1, 1] -> Features (differentiable)."""
        f_e = self.encoder(x.contiguous(memory_format=torch.channels_last))  # (B, C, g, g)
        return self.decomposition(f_e)

    def decode(self, feats: Features, *, base: torch.Tensor | None = None, base_feats: Features | None = None) -> torch.Tensor:
        """Features -> (B, 3, S, S) in [-1, 1] (differentiable).

        base (B, 3, S, S), base_feats: the image whose Z_id `feats` carries and its own (unrotated) features;
        the warping decoder (config decoder_mode="warp") needs them, the patent's decoder ignores them."""
        if self.decoder.mode == "warp" and (base is None or base_feats is None):
            raise RegazeError("this model's decoder warps the image it redirects: decode(feats, base=images, base_feats=encode(images))")
        extra = {}
        if self.decoder.mode == "warp":
            extra = dict(base=base, base_gaze=base_feats.z_gaze, base_head=base_feats.z_head)
        return self.decoder(z_id=feats.z_id, z_gaze=feats.z_gaze, z_head=feats.z_head, **extra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain reconstruction Dec(Enc(x)), (B, 3, S, S)."""
        feats = self.encode(x)
        return self.decode(feats, base=x, base_feats=feats)

    # ------------------------------------------------------------------------------- user API
    @torch.no_grad()
    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose: str = "auto"):
        """Re-render `images` with new gaze and/or head angles ([0021]).

        images: uint8 NumPy (B, S, S, 3) or (S, S, 3) RGB, or a float tensor (B, 3, S, S) or (3, S, S) in [-1, 1].
        gaze, head: target (pitch, yaw) in radians, (B, 2) or (2,) for the whole batch; None keeps that feature.
        source_gaze, source_head: the images' current angles; None uses the auxiliary estimators (m~g, m~h).
        Returns (images, sources): the redirected images in the input's kind and layout (uint8 NumPy or a float
        tensor), and {"gaze": ..., "head": ...} the source angles used, float32 tensors (B, 2), or (2,) for one
        image. Every angle here is in the camera frame, also for a model whose Z_g is head-relative
        (config.gaze_frame="head": converted with the source and target head poses). Gaze is rotated first,
        then head; the two act on separate features, so this equals rotating both at once.
        compose: "decode" returns the decoder's image (the patent's output). "eyes" pastes the decoder's eye
        regions into the source image with a soft mask placed by the source head pose (regaze/eye_regions.py,
        `self.framing`): for a gaze-only change nothing outside the eyes can move, and the source keeps its
        sharpness. "auto" (default): "eyes" for the images whose gaze changes and whose head does not (head
        None, or equal to the source head), "decode" for the others and for plain reconstructions.
        """
        if compose not in ("auto", "decode", "eyes"):
            raise RegazeError(f"compose must be 'auto', 'decode' or 'eyes'; found {compose!r}")
        x, single, numpy_in = self._input_images(images)  # (B, 3, S, S)
        b = x.shape[0]
        gaze, head = _angles(gaze, "gaze", b, x.device), _angles(head, "head", b, x.device)
        source_gaze = _angles(source_gaze, "source_gaze", b, x.device)
        source_head = _angles(source_head, "source_head", b, x.device)
        feats = source_feats = self.encode(x)
        if source_head is None:
            source_head = feats.head_est.float()  # (B, 2)
        if source_gaze is None:
            source_gaze = feats.gaze_est.float()  # (B, 2), in the model's gaze frame
            if self.config.gaze_frame == "head":
                source_gaze = gaze_in_camera(source_gaze, source_head)
        cas = self.separation
        z_source_gaze, z_target_gaze = source_gaze, gaze  # the angles Z_g is rotated between
        if self.config.gaze_frame == "head" and (gaze is not None or head is not None):
            # Z_g holds gaze in head coordinates: a left-out gaze keeps its camera-frame direction (as for a
            # camera-frame model), so a head change alone turns Z_g too.
            z_source_gaze = gaze_in_head(source_gaze, source_head)
            z_target_gaze = gaze_in_head(source_gaze if gaze is None else gaze, source_head if head is None else head)
        feats = cas.rotate_features(feats, source_gaze=z_source_gaze, target_gaze=z_target_gaze)  # gaze first ...
        feats = cas.rotate_features(feats, source_head=source_head, target_head=head)  # ... then head
        out = self.decode(feats, base=x, base_feats=source_feats)  # (B, 3, S, S)
        if compose != "decode" and gaze is not None:
            paste = torch.ones(b, dtype=torch.bool, device=x.device)  # (B,) which images get the eye composite
            if compose == "auto" and head is not None:
                paste = (head - source_head).abs().amax(dim=1) < 1e-6  # head unchanged
            mask = eye_mask(source_head, size=self.config.image_size, framing=self.framing)  # (B, 1, S, S) in [0, 1]
            pasted = x + mask.to(out.dtype) * (out - x)  # source outside the eyes, decoder inside
            out = torch.where(paste.view(b, 1, 1, 1), pasted, out)
        sources = {"gaze": source_gaze, "head": source_head}
        if numpy_in:
            out = ((out.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        else:
            out = out.to(images.dtype)
        if single:
            out, sources = out[0], {k: v[0] for k, v in sources.items()}
        return out, sources

    def _input_images(self, images) -> tuple[torch.Tensor, bool, bool]:
        """Validate `images` -> (float (B, 3, S, S) on the model's device, single image?, NumPy input?)."""
        s = self.config.image_size
        param = next(self.parameters())
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8:
                raise RegazeError(f"NumPy images must be uint8 RGB (H, W, 3) or (B, H, W, 3); found dtype {images.dtype}")
            if images.ndim not in (3, 4) or images.shape[-3:] != (s, s, 3):
                raise RegazeError(f"NumPy images must have shape ({s}, {s}, 3) or (B, {s}, {s}, 3) for this {s} px model; found {images.shape}")
            single = images.ndim == 3
            u8 = torch.from_numpy(np.ascontiguousarray(images[None] if single else images))  # (B, S, S, 3)
            return u8.to(param.device).permute(0, 3, 1, 2).to(param.dtype) / 127.5 - 1.0, single, True
        if isinstance(images, torch.Tensor):
            if not images.is_floating_point():
                raise RegazeError(f"tensor images must be float in [-1, 1], (B, 3, {s}, {s}) or (3, {s}, {s}); found dtype {images.dtype} (for uint8 use x.float() / 127.5 - 1)")
            if images.dim() not in (3, 4) or tuple(images.shape[-3:]) != (3, s, s):
                raise RegazeError(f"tensor images must have shape (B, 3, {s}, {s}) or (3, {s}, {s}) for this {s} px model; found {tuple(images.shape)}")
            single = images.dim() == 3
            x = (images[None] if single else images).to(param.device, param.dtype)
            lo, hi = float(x.min()), float(x.max())
            if not np.isfinite(lo + hi) or lo < -1.001 or hi > 1.001:
                raise RegazeError(f"tensor images must be finite and in [-1, 1]; found values in [{lo:.3g}, {hi:.3g}]")
            return x, single, False
        raise RegazeError(f"images must be a uint8 NumPy array or a float torch tensor; found {type(images).__name__}")


def _angles(value, name: str, batch_size: int, device) -> torch.Tensor | None:
    """(2,) or (B, 2) pitch/yaw radians (tensor, array or sequence) -> float32 (B, 2) on `device`, checked."""
    if value is None:
        return None
    try:
        t = torch.as_tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64))
    except (TypeError, ValueError) as e:
        raise RegazeError(f"{name} must be (pitch, yaw) radians, shape (2,) or ({batch_size}, 2); found {value!r}") from e
    if t.shape == (2,):
        t = t.expand(batch_size, 2)
    if t.dim() != 2 or t.shape != (batch_size, 2):
        raise RegazeError(f"{name} must be (pitch, yaw) radians of shape (2,) or ({batch_size}, 2); found shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise RegazeError(f"{name} contains NaN or inf")
    pitch, yaw = t[:, 0].abs().max().item(), t[:, 1].abs().max().item()
    if pitch > MAX_PITCH_RAD + 1e-6 or yaw > MAX_YAW_RAD + 1e-6:
        hint = " (angles are radians, not degrees)" if max(pitch, yaw) > MAX_YAW_RAD else ""
        raise RegazeError(
            f"{name} out of range: pitch must be in [-pi/2, pi/2] and yaw in [-pi, pi] radians; "
            f"found max |pitch| = {pitch:.3f}, max |yaw| = {yaw:.3f}{hint}"
        )
    return t.to(device=device, dtype=torch.float32)
