"""Child script of tests/test_onednn_guard.py: the oneDNN AVX2 1x1-conv weight-gradient bug, and our way round it.

    ONEDNN_MAX_CPU_ISA=AVX2 python tests/onednn_trigger.py {plain|pointwise|estimator|redirector}

plain: the measured trigger itself through nn.Conv2d (stride 2, channels_last, 4 -> 8 channels, 1 thread):
heap corruption in torch 2.13.0's oneDNN. pointwise: the same through regaze's PointwiseConv2d. estimator /
redirector: one training step (forward, backward, optimizer step) of the networks as regaze builds them.
Prints "ok" and exits 0 when the backward pass completed.
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from regaze.config import ModelConfig
from regaze.evaluation.estimator.network import EstimatorConfig, GazeHeadEstimator
from regaze.model import Redirector
from regaze.model.layers import PointwiseConv2d

TRIGGER = dict(batch=30, in_channels=4, size=32, out_channels=8, stride=2)  # the estimator's first skip at width 4


def _conv_step(conv: nn.Module) -> None:
    t = TRIGGER
    x = torch.randn(t["batch"], t["in_channels"], t["size"], t["size"]).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        conv(x).square().mean().backward()  # the weight gradient is where oneDNN failed


def _train_step(net: nn.Module, x: torch.Tensor, loss_of) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        loss_of(net, x).backward()
        opt.step()


def main(mode: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t = TRIGGER
    if mode == "plain":
        _conv_step(nn.Conv2d(t["in_channels"], t["out_channels"], 1, stride=t["stride"], bias=False))
    elif mode == "pointwise":
        _conv_step(PointwiseConv2d(t["in_channels"], t["out_channels"], stride=t["stride"], bias=False))
    elif mode == "estimator":
        net = GazeHeadEstimator(EstimatorConfig(image_size=64, width=4, eye_width=4, n_subjects=4))
        x = torch.rand(30, 3, 64, 64).mul(2).sub(1).contiguous(memory_format=torch.channels_last)
        _train_step(net, x, lambda n, im: sum(v.square().mean() for k, v in n(im).items() if k != "embedding"))
    elif mode == "redirector":
        net = Redirector(ModelConfig(image_size=64, channel_base=128, channel_max=32, k=8, flat_channels=4,
                                     estimator_hidden=8))
        x = torch.rand(8, 3, 64, 64).mul(2).sub(1)
        _train_step(net, x, lambda n, im: (n.decode(n.encode(im)) - im).abs().mean())
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
