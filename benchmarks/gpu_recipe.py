"""What the GPU benchmarks share: synthetic data at a size, the GPU presets, a training step's FLOPs, and
the pairs/s a GPU would consume at a fraction of its peak.

A step's FLOPs are counted, not estimated from a formula: torch.utils.flop_counter.FlopCounterMode
watches `regaze.training.loop.train` run 2 steps and 1 step (D step, G step with backward, EMA; the same
tiny validation in both), and the difference is one step. Convolutions and matrix products are what it
counts (the rest is a few per cent); FLOPs are linear in the batch, so a small batch counts them and
the figure is per pair.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {128: ROOT / "configs" / "xgaze128.json", 224: ROOT / "configs" / "xgaze224.json"}
# NVIDIA's H100 SXM datasheet: 989.4 TFLOPS of dense bf16 tensor-core math (1,979 with 2:4 sparsity)
H100_BF16_DENSE_FLOPS = 989.4e12
UTILISATION = 0.40  # the fraction of peak the estimate assumes


def preset_config(size: int, **overrides):
    """The GPU preset of `size` px as a TrainConfig, with `overrides` (dotted keys as on the command line)."""
    from regaze.config import build_config

    return build_config(config_file=str(PRESETS[size]), overrides=[f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def synthetic_file(path: Path, *, size: int, subjects: int, per_subject: int, seed: int = 11,
                   compression: str = "lzf") -> Path:
    from regaze.data.synth.generate import write_synthetic_dataset

    return write_synthetic_dataset(path, subjects=subjects, per_subject=per_subject, size=size, seed=seed,
                                   compression=compression, progress=False)


def step_flops_per_pair(cfg, *, data: Path, batch_size: int = 2) -> float:
    """FLOPs of one training step of `cfg` (D step + G step + EMA), per pair, counted on the CPU."""
    from dataclasses import replace

    from torch.utils.flop_counter import FlopCounterMode

    from regaze.training.loop import train

    small = replace(cfg, batch_size=batch_size, val_pairs=1, val_redirect_pairs=0, log_every=1, val_every=10**9,
                    ckpt_every=10**9, device="cpu", amp="off", compile=False, channels_last=False,
                    data=replace(cfg.data, loader_workers=0))
    counts = []
    for steps in (1, 2):
        with tempfile.TemporaryDirectory(prefix="regaze-flops-") as tmp, FlopCounterMode(display=False) as counter:
            train(replace(small, max_steps=steps), data=data, out=Path(tmp) / "run", progress=False)
        counts.append(counter.get_total_flops())
    return (counts[1] - counts[0]) / batch_size


def gpu_consumption_pairs_per_s(flops_per_pair: float, *, peak_flops: float = H100_BF16_DENSE_FLOPS,
                                utilisation: float = UTILISATION) -> float:
    """Pairs/s a training step consumes on a GPU running at `utilisation` of `peak_flops`."""
    return utilisation * peak_flops / flops_per_pair
