"""`regaze model summary`: parameters per module, FLOPs per image and a forward timing.

    regaze model summary --size 128 [--k 128] [--batch 16] [--threads 2] [--json]

FLOPs are counted by torch.utils.flop_counter.FlopCounterMode on one image (convolutions and matrix
products; a multiply-add counts as 2). The timing is encode + decode in eval mode under no_grad.
"""
from __future__ import annotations

import json
import time

__all__ = ["register", "model_summary"]


def model_summary(config, *, batch_size: int = 16, time_forward: bool = True, repeats: int = 5) -> dict:
    """Parameters and FLOPs per image of each module of `config` (a ModelConfig), and optionally the
    median time of an eval-mode encode + decode of `batch_size` images."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from regaze.model import Discriminator, Redirector

    g = Redirector(config).eval()
    d = Discriminator(**config.discriminator_kwargs()).eval()
    s = config.image_size
    x = torch.zeros(1, 3, s, s)

    def count(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return int(counter.get_total_flops())

    with torch.no_grad():
        f_e = g.encoder(x)
        feats = g.decomposition(f_e)
        flops = {
            "encoder": count(lambda: g.encoder(x)),
            "decomposition": count(lambda: g.decomposition(f_e)),
            "decoder": count(lambda: g.decode(feats)),
            "discriminator": count(lambda: d(x)),
        }
    flops["generator"] = flops["encoder"] + flops["decomposition"] + flops["decoder"]
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    params = {"encoder": n(g.encoder), "decomposition": n(g.decomposition), "decoder": n(g.decoder), "generator": n(g), "discriminator": n(d)}
    out = {
        "config": config.to_dict(),
        "parameters": params,
        "flops_per_image": flops,
        "shapes": {"f_e": list(f_e.shape[1:]), "z_id": list(feats.z_id.shape[1:]), "z_gaze": list(feats.z_gaze.shape[1:]),
                   "z_head": list(feats.z_head.shape[1:]), "discriminator_logits": list(d(x).shape[1:])},
    }
    if time_forward:
        xb = torch.rand(batch_size, 3, s, s) * 2 - 1
        times = []
        with torch.no_grad():
            for i in range(repeats + 2):
                t0 = time.perf_counter()
                g.decode(g.encode(xb))
                if i >= 2:  # the first calls pick kernels
                    times.append(time.perf_counter() - t0)
        t = sorted(times)[len(times) // 2]
        out["forward"] = {"batch": batch_size, "threads": torch.get_num_threads(), "ms_per_batch": 1e3 * t, "images_per_s": batch_size / t}
    return out


def _print(summary: dict) -> None:
    cfg = summary["config"]
    print(f"Redirector at {cfg['image_size']} px, K = {cfg['k']}  (shapes per image: {summary['shapes']})")
    print(f"{'module':<16}{'parameters':>14}{'GFLOPs/image':>14}")
    for name in ("encoder", "decomposition", "decoder", "generator", "discriminator"):
        print(f"{name:<16}{summary['parameters'][name]:>14,}{summary['flops_per_image'][name] / 1e9:>14.3f}")
    if "forward" in summary:
        f = summary["forward"]
        print(f"forward (encode + decode, eval, no_grad): {f['ms_per_batch']:.1f} ms per batch of {f['batch']} "
              f"= {f['images_per_s']:.0f} images/s on {f['threads']} thread(s)")


def _summary_command(args) -> int:
    import torch

    from regaze.config import ModelConfig
    from regaze.errors import RegazeError

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch < 1:
        raise RegazeError(f"--batch must be >= 1, got {args.batch}")
    fields = {"image_size": args.size}
    if args.k is not None:
        fields["k"] = args.k
    summary = model_summary(ModelConfig(**fields), batch_size=args.batch)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="inspect the redirection model", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("summary", help="parameters, FLOPs per image and a forward timing")
    p.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    p.add_argument("--k", type=int, default=None, help="3-vectors per pose feature (default: ModelConfig's)")
    p.add_argument("--batch", type=int, default=16, help="batch size of the forward timing (default 16)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_summary_command)
