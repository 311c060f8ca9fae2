"""The swapped-feature reconstruction of claim 5 learns on a tiny self-made pair set (wiring, not quality)."""
from __future__ import annotations

import pytest
import torch

from regaze.config import ModelConfig
from regaze.model import Redirector

SIZE, PAIRS, IDENTITIES = 32, 8, 4


def toy_pairs(*, seed: int = 0):
    """8 same-identity pairs at 32 px: identity = background and face colours; head (pitch, yaw) moves a
    large blob, gaze moves a small dark blob relative to it. Returns x_a, x_b (8, 3, 32, 32) in [-1, 1] and
    angles_a, angles_b (8, 4) = gaze (pitch, yaw), head (pitch, yaw) radians."""
    gen = torch.Generator().manual_seed(seed)
    palette = torch.rand(IDENTITIES, 2, 3, generator=gen) * 1.6 - 0.8  # (identity, background|face, RGB)
    angles = (torch.rand(2, PAIRS, 4, generator=gen) * 2 - 1) * 0.5  # (a|b, pair, 4)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")

    def blob(cx, cy, sigma):
        return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (sigma * SIZE) ** 2))  # (S, S)

    def render(identity: int, a: torch.Tensor) -> torch.Tensor:
        hx, hy = SIZE / 2 + 0.25 * SIZE * a[3], SIZE / 2 + 0.25 * SIZE * a[2]
        head, eye = blob(hx, hy, 0.18), blob(hx + 0.15 * SIZE * a[1], hy + 0.15 * SIZE * a[0], 0.07)
        bg, face = palette[identity, 0, :, None, None], palette[identity, 1, :, None, None]
        img = bg * (1 - head) + face * head
        return (img * (1 - eye) - face * eye).clamp(-1, 1)  # (3, S, S)

    x = torch.stack([torch.stack([render(p % IDENTITIES, angles[s, p]) for p in range(PAIRS)]) for s in range(2)])
    return x[0], x[1], angles[0], angles[1]


def swapped_reconstruction(g: Redirector, x_a, x_b, ang_a, ang_b, gaze_sel, head_sel) -> torch.Tensor:
    """X_a^T from (Z_id^a, b's target feature rotated to a's angles, a's other feature), and symmetrically."""
    cas = g.separation
    feats_a, feats_b = g.encode(torch.cat([x_a, x_b])).split(x_a.shape[0])
    sel = dict(gaze_sel=gaze_sel, head_sel=head_sel)
    f_ba = cas.rotate_features(feats_b, source_gaze=ang_b[:, :2], source_head=ang_b[:, 2:], target_gaze=ang_a[:, :2], target_head=ang_a[:, 2:], **sel)
    f_ab = cas.rotate_features(feats_a, source_gaze=ang_a[:, :2], source_head=ang_a[:, 2:], target_gaze=ang_b[:, :2], target_head=ang_b[:, 2:], **sel)
    rec = cas.swap(into=feats_a, from_=f_ba, **sel).cat(cas.swap(into=feats_b, from_=f_ab, **sel))
    return g.decode(rec)  # (2B, 3, S, S): targets x_a then x_b


@pytest.mark.isolated(timeout=300)
def test_swapped_reconstruction_learns():
    """300 Adam steps (lr 1e-3, full batch of the 8 pairs, random target per sample) on a 0.44 M-parameter
    model at 32 px. Measured (CPU, 2 threads, ~8 s on a quiet machine): L1 0.32 at step 0; after step 300, in
    eval mode, 0.017 with gaze as the target and 0.016 with head, in [-1, 1] units.
    Threshold 0.05: three times the measured figure, six times below the start."""
    torch.manual_seed(0)
    x_a, x_b, ang_a, ang_b = toy_pairs()
    target = torch.cat([x_a, x_b])
    cfg = ModelConfig(image_size=SIZE, k=16, channel_base=512, channel_max=64, flat_channels=8, estimator_hidden=32)
    g = Redirector(cfg)
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(300):
        gaze_sel, head_sel = g.separation.choose_target(PAIRS, mode="random", generator=gen)
        loss = (swapped_reconstruction(g, x_a, x_b, ang_a, ang_b, gaze_sel, head_sel) - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    g.eval()
    with torch.no_grad():
        l1 = {}
        for mode in ("gaze", "head"):
            gaze_sel, head_sel = g.separation.choose_target(PAIRS, mode=mode)
            l1[mode] = float((swapped_reconstruction(g, x_a, x_b, ang_a, ang_b, gaze_sel, head_sel) - target).abs().mean())
    assert max(l1.values()) < 0.05, l1
