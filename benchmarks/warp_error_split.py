"""Where a warping model's head-only error lies: in what it warps or in what it renders (issue 13).

The warping decoder's output is  out = m * warp(base, flow) + (1 - m) * rendered  (regaze/model/decoder.py).
For head-only redirections of held-out synthetic faces (change >= 15 deg, in-range targets, the exact render
of the source's own parameters as the target), this replaces one part at a time by the exact target and
reports the PSNR each replacement reaches, with the mask kept as the model predicts it:
- `oracle_rendered`: m * warped + (1 - m) * target: what a perfect renderer would give (the warp's share left);
- `oracle_warped`:   m * target + (1 - m) * rendered: what a perfect warp would give (the renderer's share left);
- `rendered_as_blur_1px`: the rendered part replaced by the target blurred by sigma = 1 px.
It also gives the share of the squared error on the sharpest 20 % of the target's pixels (its gradient).

    python -m benchmarks.warp_error_split --run regaze/reference/synth64/reference.pt --data data/synth64_ref.h5

Writes benchmarks/results/warp_error_split.json and a picture (source | warped | rendered | mask | output |
target per row) next to it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.machine import describe
from benchmarks.result_file import write_result

RESULT = Path(__file__).parent / "results" / "warp_error_split.json"
MIN_HEAD_CHANGE_DEG = 15.0  # the demo report's head-only row


def _u8(x: torch.Tensor) -> np.ndarray:
    """(n, 3, S, S) in [-1, 1] -> uint8 (n, S, S, 3)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def decoder_parts(model, images: np.ndarray, *, head: np.ndarray, gaze: np.ndarray, source_head: np.ndarray) -> dict:
    """Head-only redirection of uint8 `images` (n, S, S, 3) to `head` (n, 2) rad with the labels as source
    angles -> uint8 (n, S, S, 3) "output", "warped", "rendered" and float (n, S, S) "mask" (1 = warped)."""
    from regaze.model.decoder import FLOW_MAX, warp_image

    dec = model.decoder
    if dec.mode != "warp" or dec.refine is not None:
        raise SystemExit("warp_error_split needs a warping decoder without the refinement (model.decoder_mode 'warp')")
    seen = {}
    hooks = [dec.to_warp.register_forward_hook(lambda m, i, o: seen.update(logits=o, trunk=i[0])),
             dec.to_rgb.register_forward_hook(lambda m, i, o: seen.update(rendered=torch.tanh(o)))]
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    try:
        with torch.no_grad():
            out, _ = model.redirect(images, head=t(head), source_gaze=t(gaze), source_head=t(source_head), compose="decode")
    finally:
        for h in hooks:
            h.remove()
    w = torch.nn.functional.interpolate(seen["logits"].float(), scale_factor=2.0, mode="bilinear", align_corners=False)
    base = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (n, 3, S, S)
    warped = warp_image(base, flow=FLOW_MAX * torch.tanh(w[:, :2]))
    return {"output": out, "warped": _u8(warped), "rendered": _u8(seen["rendered"]),
            "mask": torch.sigmoid(w[:, 2]).numpy()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="regaze/reference/synth64/reference.pt", help="run directory or checkpoint")
    parser.add_argument("--data", type=Path, default=Path("data/synth64_ref.h5"), help="synthetic file with a test split")
    parser.add_argument("--images", type=int, default=128, help="held-out sources drawn (default 128)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from regaze.data.dataset import open_dataset
    from regaze.data.synth import render
    from regaze.evaluation.blur_controls import gaussian_blur_u8
    from regaze.evaluation.eval_pairs import held_out_indices, in_range_targets
    from regaze.image_metrics import psnr_db
    from regaze.model.pretrained import load_redirector

    from regaze.errors import RegazeError

    try:
        model, info = load_redirector(args.run)
        ds = open_dataset(args.data)
    except (RegazeError, OSError) as e:
        raise SystemExit(f"warp_error_split: {e}") from None
    pool, split = held_out_indices(ds, split="test")
    rng = np.random.default_rng(args.seed)
    src = np.sort(rng.choice(pool, min(args.images, len(pool)), replace=False))
    targets = in_range_targets(gaze=ds.gaze, head=ds.head, source=src, seed=args.seed)
    change = np.degrees(np.linalg.norm(targets["head_only_head"] - ds.head[src], axis=1))
    keep = targets["head_only_feasible"] & (change >= MIN_HEAD_CHANGE_DEG)
    src, head = src[keep], targets["head_only_head"][keep]
    gaze, source_head = ds.gaze[src], ds.head[src]
    parts = decoder_parts(model, ds.read_images(src), head=head, gaze=gaze, source_head=source_head)
    target = render(identity=ds.read_array("synth_identity", src), session=ds.read_array("synth_session", src),
                    head=head, gaze=gaze, size=ds.size)  # uint8 (n, S, S, 3): the exact head-only target

    m = parts["mask"][..., None]  # (n, S, S, 1)
    blend = lambda a, b: np.clip(np.round(m * a + (1 - m) * b), 0, 255).astype(np.uint8)  # noqa: E731
    score = lambda x: float(psnr_db(x, target).mean())  # noqa: E731
    grey = target.astype(np.float64).mean(-1)
    grad = np.abs(np.diff(grey, axis=1, append=grey[:, -1:])) + np.abs(np.diff(grey, axis=2, append=grey[:, :, -1:]))
    sq_err = ((parts["output"].astype(np.float64) - target) ** 2).mean(-1)  # (n, S, S)
    sharp = grad > np.percentile(grad, 80)
    result = {
        "run": str(args.run), "step": info["step"], "data": str(args.data), "split": split, "images": int(len(src)),
        "psnr_db": {
            "model": score(parts["output"]),
            "oracle_rendered": score(blend(parts["warped"], target)),
            "oracle_warped": score(blend(target, parts["rendered"])),
            "rendered_as_blur_1px": score(blend(parts["warped"], gaussian_blur_u8(target, sigma_px=1.0))),
            "warped_alone": score(parts["warped"]), "rendered_alone": score(parts["rendered"]),
            "target_blur_1px": score(gaussian_blur_u8(target, sigma_px=1.0)),
        },
        "mask_mean": float(parts["mask"].mean()),
        "squared_error_share_on_sharpest_20pct": float(sq_err[sharp].sum() / sq_err.sum()),
        "machine": describe(),
    }
    write_result(args.out, result)
    rows = [np.concatenate([ds.read_images(src[k:k + 1])[0], parts["warped"][k], parts["rendered"][k],
                            np.repeat((parts["mask"][k, ..., None] * 255).astype(np.uint8), 3, -1),
                            parts["output"][k], target[k]], axis=1) for k in range(0, min(len(src), 40), 5)]
    picture = np.concatenate(rows, axis=0)
    Image.fromarray(picture).resize((picture.shape[1] * 2, picture.shape[0] * 2), Image.NEAREST).save(args.out.with_suffix(".png"))
    print(result["psnr_db"], f"mask mean {result['mask_mean']:.2f}",
          f"error share on sharp pixels {result['squared_error_share_on_sharpest_20pct']:.2f}", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
