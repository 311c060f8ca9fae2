"""`regaze redirect`: redirect gaze and/or head of normalized face crops stored as image files.

    records = redirect_files(["face.png"], run="runs/r64", out_dir="out", gaze_rad=(0.1, -0.3), head_rad=None)
    # out/face_redirected.png (+ out/face_sweep.png with sweep=True) and out/redirect.json

Inputs are normalized face crops (square, RGB; PNG or JPEG or anything else PIL reads). A square image not
at the model's size is resized (area filter when shrinking, bicubic when enlarging) with a warning; outputs
are at the model's size. The source angles are the model's auxiliary estimates (m~g, m~h) unless given.
Everything is checked (angles, every image, the checkpoint) and computed before the first file is written,
and each file is written atomically, so a bad input leaves no partial output.

Sweep grid (one PNG per input), rows top to bottom: gaze yaw, gaze pitch, head yaw, head pitch; the first
column is the input, then the swept angle at `sweep_steps` values in [-sweep_max, +sweep_max] degrees with
the swept factor's other angle at 0 and the other factor kept.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from regaze.errors import RegazeError
from regaze.geometry import MAX_PITCH_RAD, MAX_YAW_RAD

__all__ = ["parse_angles_deg", "check_angles_rad", "read_face_images", "redirect_files", "sweep_rows"]

SWEEP_ROWS = (("gaze", 1), ("gaze", 0), ("head", 1), ("head", 0))  # (factor, swept column: 0 pitch, 1 yaw)


def parse_angles_deg(text: str, *, name: str) -> np.ndarray:
    """'P,Y' in degrees -> (2,) float32 radians, checked: |pitch| <= 90°, |yaw| <= 180°."""
    try:
        values = [float(v) for v in str(text).split(",")]
    except ValueError as e:
        raise RegazeError(f"{name}: expected 'PITCH,YAW' in degrees, e.g. 10,-25; found {text!r}") from e
    if len(values) != 2:
        raise RegazeError(f"{name}: expected two numbers 'PITCH,YAW' in degrees, e.g. 10,-25; found {text!r}")
    angles = np.radians(np.array(values, dtype=np.float64))
    check_angles_rad(angles, name=name)
    return angles.astype(np.float32)


def check_angles_rad(angles, *, name: str) -> None:
    """(2,) pitch/yaw radians: finite, |pitch| <= pi/2, |yaw| <= pi; else RegazeError in degrees."""
    a = np.asarray(angles, dtype=np.float64)
    if a.shape != (2,) or not np.isfinite(a).all():
        raise RegazeError(f"{name}: expected finite (pitch, yaw); found {a.tolist()}")
    if abs(a[0]) > MAX_PITCH_RAD + 1e-9 or abs(a[1]) > MAX_YAW_RAD + 1e-9:
        raise RegazeError(f"{name}: ({math.degrees(a[0]):.1f}, {math.degrees(a[1]):.1f}) degrees is out of range; "
                          f"expected |pitch| <= 90 and |yaw| <= 180 degrees")


def read_face_images(paths, *, size: int, log=None) -> np.ndarray:
    """Image files -> (n, size, size, 3) uint8 RGB. Non-images and non-square images are RegazeErrors;
    square images of another size are resized with a message to `log` (default: warnings.warn)."""
    from PIL import Image, UnidentifiedImageError

    from regaze.image_io import resize_images

    log = log or (lambda msg: warnings.warn(msg, stacklevel=3))
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(map(Path, paths)):
        if not path.is_file():
            raise RegazeError(f"{path}: no such image file")
        try:
            with Image.open(path) as im:
                im.load()
                rgb = np.asarray(im.convert("RGB"))  # (H, W, 3); grey, palette and alpha images become RGB
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RegazeError(f"{path}: not an image file (expected a PNG or JPEG normalized face crop; {e})") from e
        h, w = rgb.shape[:2]
        if h != w:
            raise RegazeError(f"{path}: is {w}x{h}; expected a square normalized face crop ({size}x{size} for this "
                              f"model); for a raw photo add --photo")
        if h != size:
            log(f"{path}: {w}x{h} resized to {size}x{size}, the model's size")
            rgb = resize_images(rgb[None], size=size)[0]
        out[i] = rgb
    return out


def _output_names(paths) -> list[str]:
    stems = [Path(p).stem for p in paths]
    seen = {}
    for p, s in zip(paths, stems):
        if s in seen:
            raise RegazeError(f"{seen[s]} and {p} would write the same output name '{s}_*.png'; rename one of them")
        seen[s] = p
    return stems


@torch.no_grad()
def sweep_rows(model, images_u8: np.ndarray, *, source_gaze: torch.Tensor, source_head: torch.Tensor,
               values_rad: np.ndarray) -> list[list[np.ndarray]]:
    """One image (S, S, 3) uint8 -> rows of tiles: [input, v1, v2, ...] per SWEEP_ROWS entry (gaze yaw, gaze
    pitch, head yaw, head pitch). source_gaze, source_head: (1, 2) radians."""
    n = len(values_rad)
    batch = np.repeat(images_u8[None], n, axis=0)  # (n, S, S, 3)
    rows = []
    for factor, column in SWEEP_ROWS:
        target = np.zeros((n, 2), dtype=np.float32)
        target[:, column] = values_rad
        out, _ = model.redirect(batch, source_gaze=source_gaze.expand(n, 2), source_head=source_head.expand(n, 2),
                                **{factor: target})
        rows.append([images_u8, *out])
    return rows


def redirect_files(paths, *, run, out_dir, gaze_rad=None, head_rad=None, source_gaze_rad=None, source_head_rad=None,
                   sweep: bool = False, sweep_max_deg: float = 30.0, sweep_steps: int = 5, which: str = "best",
                   device: str = "auto", batch_size: int = 32, compose: str = "auto", log=None) -> list[dict]:
    """Redirect image files to `gaze_rad` / `head_rad` ((2,) radians; None keeps that factor) and/or write
    sweep grids; see the module docstring. `run`: a run directory or checkpoint (commands pick it with
    regaze.model.pretrained.resolve_run). Returns one record per input (also written to OUT_DIR/redirect.json,
    whose "model" says "reference" for the shipped reference model, else "run")."""
    from regaze.augment.augmentation import check_device
    from regaze.checkpoint import file_sha256
    from regaze.dist import pick_device
    from regaze.image_io import save_png, tile
    from regaze.model.pretrained import find_checkpoint, is_reference, load_redirector

    paths = [Path(p) for p in paths]
    if not paths:
        raise RegazeError("no input images given")
    if gaze_rad is None and head_rad is None and not sweep:
        raise RegazeError("nothing to do: give --gaze and/or --head, or --sweep")
    for name, value in (("gaze", gaze_rad), ("head", head_rad), ("source gaze", source_gaze_rad),
                        ("source head", source_head_rad)):
        if value is not None:
            check_angles_rad(value, name=name)
    if sweep and not (0 < sweep_max_deg <= 90 and sweep_steps >= 2):
        raise RegazeError(f"sweep needs 0 < sweep-max <= 90 degrees and sweep-steps >= 2; got {sweep_max_deg}, {sweep_steps}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RegazeError(f"{out_dir}: exists and is not a directory")
    stems = _output_names(paths)
    check_device(device)
    ckpt = find_checkpoint(run, which=which)
    model, info = load_redirector(ckpt, device=pick_device(device))
    size = model.config.image_size
    images = read_face_images(paths, size=size, log=log)  # (n, S, S, 3)

    # ---- compute everything first: an error below leaves nothing written
    n = len(images)
    given = lambda v: None if v is None else np.broadcast_to(np.asarray(v, np.float32), (n, 2))  # noqa: E731
    outputs, src_gaze, src_head = [], [], []
    for s in range(0, n, batch_size):
        sl = slice(s, s + batch_size)
        g, h = given(gaze_rad), given(head_rad)
        out, src = model.redirect(images[sl], gaze=None if g is None else g[sl], head=None if h is None else h[sl],
                                  source_gaze=None if source_gaze_rad is None else given(source_gaze_rad)[sl],
                                  source_head=None if source_head_rad is None else given(source_head_rad)[sl],
                                  compose=compose)
        outputs.append(out)
        src_gaze.append(src["gaze"].float().cpu())
        src_head.append(src["head"].float().cpu())
    src_gaze, src_head = torch.cat(src_gaze), torch.cat(src_head)  # (n, 2) radians
    redirected = np.concatenate(outputs) if (gaze_rad is not None or head_rad is not None) else None
    grids = []
    if sweep:
        values = np.radians(np.linspace(-sweep_max_deg, sweep_max_deg, sweep_steps)).astype(np.float32)
        for i in range(n):
            grids.append(tile(sweep_rows(model, images[i], source_gaze=src_gaze[i:i + 1], source_head=src_head[i:i + 1],
                                         values_rad=values)))

    # ---- write
    out_dir.mkdir(parents=True, exist_ok=True)
    deg = lambda v: None if v is None else [round(math.degrees(float(x)), 3) for x in v]  # noqa: E731
    records = []
    for i, (path, stem) in enumerate(zip(paths, stems)):
        rec = {"input": os.fspath(path), "source_gaze_deg": deg(src_gaze[i]), "source_head_deg": deg(src_head[i]),
               "source_angles": {"gaze": "given" if source_gaze_rad is not None else "estimated",
                                 "head": "given" if source_head_rad is not None else "estimated"},
               "target_gaze_deg": deg(gaze_rad), "target_head_deg": deg(head_rad)}
        if redirected is not None:
            rec["output"] = os.fspath(out_dir / f"{stem}_redirected.png")
            save_png(rec["output"], redirected[i])
        if sweep:
            rec["sweep"] = os.fspath(out_dir / f"{stem}_sweep.png")
            save_png(rec["sweep"], grids[i])
        records.append(rec)
    summary = {"model": "reference" if is_reference(ckpt) else "run",  # the shipped reference model, or a training run
               "checkpoint": os.fspath(ckpt), "checkpoint_sha256": file_sha256(ckpt), "checkpoint_step": info["step"],
               "image_size": size, "sweep_deg": list(np.linspace(-sweep_max_deg, sweep_max_deg, sweep_steps)) if sweep else None,
               "sweep_rows": [f"{f} {'yaw' if c else 'pitch'}" for f, c in SWEEP_ROWS] if sweep else None,
               "images": records}
    tmp = out_dir / ".redirect.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out_dir / "redirect.json")
    return records
