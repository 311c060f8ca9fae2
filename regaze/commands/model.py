"""`regaze model summary`: parameters per module, FLOPs per image and a forward timing.
`regaze model export-reference`: a run's generator as the slim, shippable reference checkpoint and its card.

    regaze model summary --size 128 [--k 128] [--batch 16] [--threads 2] [--json]
    regaze model export-reference runs/r64 --out regaze/reference/synth64 [--data data/synth64.h5] [--note TEXT]

FLOPs are counted by torch.utils.flop_counter.FlopCounterMode on one image (convolutions and matrix
products; a multiply-add counts as 2). The timing is encode + decode in eval mode under no_grad.
"""
from __future__ import annotations

import argparse
import json
import sys
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
            "decoder": count(lambda: g.decode(feats, base=x, base_feats=feats)),
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
                g(xb)
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


def _data_facts(path) -> dict:
    """The training data file's seed and generator from its attributes (best effort: {} when unreadable)."""
    from pathlib import Path

    from regaze.data.dataset import open_dataset
    from regaze.errors import RegazeError

    if not Path(path).exists():
        raise RegazeError(f"--data {path}: no such file (the run's training data, for card.json)")
    try:
        attrs = open_dataset(path).attrs
    except (RegazeError, OSError) as e:
        print(f"warning: {path}: attributes not readable ({e}); card.json gets no data_seed", file=sys.stderr)
        return {}
    return {"seed": int(attrs["seed"]) if "seed" in attrs else None, "generator": attrs.get("generator")}


def _export_command(args) -> int:
    from regaze.model.pretrained import export_reference

    facts = _data_facts(args.data) if args.data else {}
    if facts and facts.get("generator") != "regaze.data.synth":
        print(f"warning: {args.data} was not made by `regaze synth`; card.json still says 'trained on synthetic faces' "
              f"(the reference model is the synthetic one)", file=sys.stderr)
    card = export_reference(args.source, out_dir=args.out, which=args.which, note=args.note, data=args.data,
                            data_seed=facts.get("seed"), dtype=args.dtype)
    src = card["source_checkpoint"]
    print(f"{args.out}/reference.pt: {card['file_bytes'] / 1e6:.2f} MB ({card['weights_dtype']} weights, max output "
          f"difference {card['max_abs_output_diff_vs_source']:.2e}) from {src['path']} ({src['bytes'] / 1e6:.1f} MB, "
          f"step {src['step']}); card: {args.out}/card.json")
    return 0


EXPORT_EPILOG = """examples:
  regaze model export-reference runs/r64 --out regaze/reference/synth64 --data data/synth64.h5
  regaze model export-reference runs/r64/checkpoints/step_0005000.pt --out /tmp/ref --dtype float32

Writes OUT/reference.pt (a plain dict: the EMA generator's weights, config, step, framing, split, the source's
hash; loaded with weights_only=True by every --run), OUT/card.json (the training command, config, steps,
minutes, stop reason, data file and seed, file size, "metrics": {} to fill) and OUT/train_config.json (the
run's resolved config, for `regaze train --config`). --dtype auto stores float16 weights when the outputs
on a random batch move less than 2e-3 (images in [-1, 1]), else float32. Over 25 MB is refused.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("model", help="inspect the redirection model; export the reference checkpoint",
                                   description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("summary", help="parameters, FLOPs per image and a forward timing")
    p.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    p.add_argument("--k", type=int, default=None, help="3-vectors per pose feature (default: ModelConfig's)")
    p.add_argument("--batch", type=int, default=16, help="batch size of the forward timing (default 16)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_summary_command)
    p = sub.add_parser("export-reference", help="a run's generator as the slim reference checkpoint + card.json",
                       description="Export a training run's EMA generator as a slim checkpoint (the shipped\n"
                                   "reference model) with a card of its provenance.",
                       epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUN_DIR_OR_CKPT", help="training run directory or checkpoint .pt")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (e.g. regaze/reference/synth64)")
    p.add_argument("--which", choices=("best", "latest"), default="best", help="checkpoint of the run (default best)")
    p.add_argument("--note", help="free text for card.json")
    p.add_argument("--data", metavar="FILE", help="the run's training data file: recorded in card.json, its seed read")
    p.add_argument("--dtype", choices=("auto", "float32", "float16"), default="auto",
                   help="stored weight precision (default auto: float16 when the outputs stay within 2e-3)")
    p.set_defaults(func=_export_command)
