"""Angle sweeps of one held-out person: does the model follow the angles it is asked for?

One test image (by default the test split's most frontal image) is redirected along four sweeps:
gaze yaw -30..+30 deg, gaze pitch -20..+20, head yaw -30..+30 and head pitch -20..+20, the other angles of the
source kept (a head sweep keeps the gaze in camera coordinates, like a head-only change). Under each row of
the model's outputs lies the exact target render of the same person at the same angles (regaze.data.synth.render
with the image's stored identity and session), so a reader sees at a glance whether the model follows.

The angles stay in the data's range: each head angle within the data's head labels (per axis, the same
quantiles as pose_range.EYE_RANGE_QUANTILE), and the gaze within the data's eye-in-head range of the face
direction (pose_range.eye_range_deg); a gaze further out is pulled back towards the face direction, for the
model and the exact render alike.

    sweep = sweep_targets(dataset=ds)                  # angles and exact renders, once per report
    outputs = sweep_outputs(model, sweep=sweep)        # {row: (k, S, S, 3) uint8}, once per model
    save_png("sweep.png", sweep_image(sweep=sweep, outputs=outputs))
"""
from __future__ import annotations

import numpy as np
import torch

from regaze.data.pose_range import EYE_RANGE_QUANTILE, eye_range_deg
from regaze.geometry import gaze_in_camera, gaze_in_head, pitchyaw_to_vector, vector_to_pitchyaw
from regaze.image_io import tile, to_u8
from regaze.image_metrics import psnr_db

__all__ = ["SWEEPS", "pick_sweep_source", "clip_eye_in_head", "sweep_targets", "sweep_outputs", "sweep_image"]

SWEEPS = {  # row key -> (label, which angle moves, axis: 0 = pitch, 1 = yaw, values in degrees)
    "gaze_yaw": ("gaze yaw", "gaze", 1, (-30.0, -15.0, 0.0, 15.0, 30.0)),
    "gaze_pitch": ("gaze pitch", "gaze", 0, (-20.0, -10.0, 0.0, 10.0, 20.0)),
    "head_yaw": ("head yaw", "head", 1, (-30.0, -15.0, 0.0, 15.0, 30.0)),
    "head_pitch": ("head pitch", "head", 0, (-20.0, -10.0, 0.0, 10.0, 20.0)),
}


def pick_sweep_source(dataset, *, split: str = "test") -> int:
    """The index of the most frontal image of `split` (smallest largest |angle| of gaze and head): a source
    from which the sweeps move both ways about as far before the range stops them."""
    idx = dataset.split_indices(split)
    angles_deg = np.degrees(np.abs(np.concatenate([dataset.gaze[idx], dataset.head[idx]], axis=1)))  # (n, 4)
    return int(idx[np.argmin(angles_deg.max(axis=1))])


def clip_eye_in_head(*, gaze: np.ndarray, head: np.ndarray, limit_deg: float) -> np.ndarray:
    """Camera-frame gaze (n, 2) rad whose angle to the face direction of head (n, 2) exceeds limit_deg, pulled
    back along the great circle towards the face direction to limit_deg -> gaze (n, 2) float32 rad."""
    rel = pitchyaw_to_vector(gaze_in_head(np.asarray(gaze, np.float64), np.asarray(head, np.float64)))  # (n, 3)
    forward = np.array([0.0, 0.0, -1.0])  # the face direction in head coordinates, pitchyaw (0, 0)
    cos_off = np.clip(rel @ forward, -1.0, 1.0)  # (n,)
    side = rel - cos_off[:, None] * forward  # (n, 3) the component away from the face direction
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-12)
    limit = np.radians(limit_deg)
    clipped = np.cos(limit) * forward + np.sin(limit) * side  # (n, 3) on the range's edge
    rel = np.where((np.degrees(np.arccos(cos_off)) > limit_deg)[:, None], clipped, rel)
    return gaze_in_camera(vector_to_pitchyaw(rel), np.asarray(head, np.float64)).astype(np.float32)


def sweep_targets(*, dataset, index: int | None = None) -> dict:
    """Sweep angles and exact renders for dataset[index] (default pick_sweep_source).

    Returns {"index", "subject", "source" (S, S, 3) uint8, "gaze" (2,), "head" (2,) rad, "limit_deg", "rows":
    {key: {"label", "moved" ("gaze" | "head"), "values_deg" (k,), "gaze" (k, 2), "head" (k, 2) rad, "target"
    (k, S, S, 3) uint8}}}."""
    from regaze.data.synth import render

    index = pick_sweep_source(dataset) if index is None else int(index)
    gaze, head = dataset.gaze[index].astype(np.float64), dataset.head[index].astype(np.float64)  # (2,) rad
    limit = eye_range_deg(gaze=dataset.gaze, head=dataset.head)
    q = (1.0 - EYE_RANGE_QUANTILE) / 2
    head_lo, head_hi = np.quantile(dataset.head, [q, 1.0 - q], axis=0)  # (2,), (2,) rad: the data's head range
    identity, session = (dataset.read_array(k, [index]) for k in ("synth_identity", "synth_session"))
    rows = {}
    for key, (label, moved, axis, values_deg) in SWEEPS.items():
        k = len(values_deg)
        g, h = np.tile(gaze, (k, 1)), np.tile(head, (k, 1))  # (k, 2) rad
        if moved == "gaze":
            g[:, axis] = np.radians(values_deg)
        else:
            h[:, axis] = np.clip(np.radians(values_deg), head_lo[axis], head_hi[axis])
        g = clip_eye_in_head(gaze=g, head=h, limit_deg=limit)  # (k, 2) float32
        h = h.astype(np.float32)
        target = render(identity=np.repeat(identity, k, axis=0), session=np.repeat(session, k, axis=0),
                        head=h, gaze=g, size=dataset.size)  # (k, S, S, 3)
        rows[key] = {"label": label, "moved": moved, "values_deg": np.asarray(values_deg), "gaze": g, "head": h,
                     "target": target}
    return {"index": index, "subject": int(dataset.subject[index]), "source": dataset.read_images([index])[0],
            "gaze": gaze.astype(np.float32), "head": head.astype(np.float32), "limit_deg": limit, "rows": rows}


@torch.no_grad()
def sweep_outputs(model, *, sweep: dict, compose: str = "auto") -> dict[str, dict[str, np.ndarray]]:
    """The model's redirections of the sweep's source to every row's angles (`compose` as in
    Redirector.redirect: by default the eyes pasted into the source where only the gaze moves) ->
    {key: {"output": (k, S, S, 3) uint8, "psnr_db": (k,) against the exact render}}."""
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    x = torch.from_numpy(sweep["source"][None]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)  # (1, 3, S, S)
    out = {}
    for key, row in sweep["rows"].items():
        k = len(row["gaze"])
        src = lambda a: torch.from_numpy(np.tile(a, (k, 1))).to(device)  # noqa: E731  (k, 2)
        images, _ = model.redirect(x.expand(k, -1, -1, -1), gaze=torch.from_numpy(row["gaze"]).to(device),
                                   head=torch.from_numpy(row["head"]).to(device), source_gaze=src(sweep["gaze"]),
                                   source_head=src(sweep["head"]), compose=compose)
        output = to_u8(images)  # (k, S, S, 3)
        out[key] = {"output": output, "psnr_db": psnr_db(output, row["target"])}
    return out


def sweep_image(*, sweep: dict, outputs: dict) -> np.ndarray:
    """One grid, two rows per sweep: source | the model's redirections, then a blank | the exact renders at the
    same angles -> (H, W, 3) uint8 of tile()'s layout."""
    blank = np.full_like(sweep["source"], 255)
    rows = []
    for key, row in sweep["rows"].items():
        rows.append([sweep["source"], *outputs[key]["output"]])
        rows.append([blank, *row["target"]])
    return tile(rows)
