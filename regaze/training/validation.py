"""Validation during training, on held-out subjects: the stop criterion, and the score that chooses best.pt.

Two numbers with two jobs (higher is better for both):
- `val_psnr_db`: reconstruction PSNR of X^T on `val_pairs` fixed pairs, the similarity of the patent's stop
  criterion ([0041]/[0055], `stop_at_psnr`). It barely sees gaze (the eyes are ~3 % of the pixels) and the
  autoencoder shortcut scores well on it, so it does not choose best.pt.
- `val_score` chooses best.pt and includes redirection. The first `val_redirect_pairs` sources a of the
  pairs (a, b) are redirected, and the decoder's image is scored (compose="decode", DESIGN §4):
      gaze-only   to b's head-relative gaze put on a's head (in range, DESIGN §4), a's head kept
      head-only   to b's head, a's gaze kept
  kind "exact" (synthetic data whose renderer reproduces the file's images): a re-rendered at those angles
      is the exact target; val_score = the mean of val_psnr_db, val_gaze_eye_psnr_db (the gaze-only output
      inside the eye regions: squared errors weighted by framing.eye_mask at a's head) and val_head_psnr_db
      (the head-only output, whole image), all dB.
  kind "aux" (other data): the model's own auxiliary estimators read the outputs; val_score = val_psnr_db
      - AUX_DB_PER_DEG x the mean of val_gaze_aux_err_deg (gaze-only, to the target gaze) and
      val_head_aux_err_deg (head-only, to the target head): 2 degrees of redirection error weigh as 1 dB.
  kind "reconstruction" (val_redirect_pairs=0, or "aux" with untrained estimators, loss.label=0):
      val_score = val_psnr_db.
Every validation record carries `val_score_kind`. The targets are fixed (and rendered) once, when the set is
built; validation runs on rank 0 only and the loop hands its results to the other ranks.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from regaze.geometry import angular_error_deg, gaze_in_camera, gaze_in_head
from regaze.model.framing import eye_mask
from regaze.model.separation import CrossAttributeSeparation
from regaze.training.batches import pair_batch

__all__ = ["ValidationSet", "build_validation_set", "validate", "describe_score", "AUX_DB_PER_DEG", "SCORE_KINDS"]

AUX_DB_PER_DEG = 0.5  # kind "aux": dB of reconstruction PSNR that one degree of redirection error costs
SCORE_KINDS = {  # kind -> how val_score is made (summary.json's best_by)
    "exact": "val_score = mean(val_psnr_db, val_gaze_eye_psnr_db, val_head_psnr_db): reconstruction, and "
             "gaze-only (eye regions) and head-only redirections against exact synthetic targets, dB",
    "aux": f"val_score = val_psnr_db - {AUX_DB_PER_DEG} dB/deg x mean(val_gaze_aux_err_deg, val_head_aux_err_deg): "
           "reconstruction, and the auxiliary estimators' reading of gaze-only and head-only redirections",
    "reconstruction": "val_score = val_psnr_db: reconstruction PSNR alone (no redirection targets: "
                      "val_redirect_pairs=0, or loss.label=0 on data without exact targets)",
}


def describe_score(kind: str) -> str:
    """What chose best.pt, in words, for a `val_score_kind`."""
    return f"val_score, kind {kind!r}: {SCORE_KINDS[kind]}"


@dataclass(frozen=True)
class ValidationSet:
    pairs: np.ndarray  # (P, 2) int64 reconstruction pairs (a, b), same subject
    sources: np.ndarray  # (R,) int64 redirected images (R <= P)
    gaze_target: np.ndarray  # (R, 2) float32 rad: gaze-only target, camera frame
    head_target: np.ndarray  # (R, 2) float32 rad: head-only target
    exact_gaze: np.ndarray | None  # (R, S, S, 3) uint8 exact gaze-only targets (kind "exact")
    exact_head: np.ndarray | None  # (R, S, S, 3) uint8 exact head-only targets (kind "exact")
    kind: str  # one of SCORE_KINDS


def build_validation_set(dataset, pairs: np.ndarray, *, redirect_pairs: int, estimators_trained: bool) -> ValidationSet:
    """Fix the redirection targets of validation `pairs` (P, 2); render the exact ones where the data allows."""
    a, b = pairs[: min(redirect_pairs, len(pairs)), 0], pairs[: min(redirect_pairs, len(pairs)), 1]
    gaze_t = gaze_in_camera(gaze_in_head(dataset.gaze[b], dataset.head[b]), dataset.head[a]).astype(np.float32)  # (R, 2)
    head_t = dataset.head[b].astype(np.float32)  # (R, 2)
    kind, exact_gaze, exact_head = "reconstruction", None, None
    if len(a):
        render = _exact_renderer(dataset, a)
        if render is not None:
            kind = "exact"
            exact_gaze = render(head=dataset.head[a], gaze=gaze_t)  # the source at the gaze-only target
            exact_head = render(head=head_t, gaze=dataset.gaze[a])  # the source at the head-only target
        elif estimators_trained:
            kind = "aux"
    return ValidationSet(pairs=pairs, sources=a, gaze_target=gaze_t, head_target=head_t, exact_gaze=exact_gaze,
                         exact_head=exact_head, kind=kind)


def _exact_renderer(dataset, sources: np.ndarray):
    """render(head=, gaze=) -> uint8 images of `sources` at new angles, when the file is synthetic and this
    version of the renderer reproduces its images bit for bit; else None."""
    if not {"synth_identity", "synth_session"} <= set(dataset.array_keys):
        return None
    from regaze.data.synth import render

    identity, session = dataset.read_array("synth_identity", sources), dataset.read_array("synth_session", sources)

    def render_at(*, head, gaze) -> np.ndarray:
        return render(identity=identity, session=session, head=head, gaze=gaze, size=dataset.size)

    try:
        same = np.array_equal(render_at(head=dataset.head[sources], gaze=dataset.gaze[sources]), dataset.read_images(sources))
    except (ValueError, TypeError):  # parameters of another generator version
        same = False
    if not same:
        print(f"validation: {dataset.path} was rendered by another version of the synthetic renderer; best.pt is "
              "chosen by the auxiliary estimators' agreement instead of exact targets", file=sys.stderr)
        return None
    return render_at


@torch.no_grad()
def validate(vs: ValidationSet, *, model, pair_forward, source, dataset, device, batch_size: int) -> dict:
    """The validation record: val_psnr_db, val_l1, the redirection scores of `vs.kind`, val_score, val_score_kind.

    model: the Redirector validated (the EMA generator); pair_forward: a PairForward on it."""
    val = _reconstruction(pair_forward, source, dataset, vs.pairs, device=device, batch_size=batch_size)
    if not len(vs.sources):
        return {**val, "val_score": val["val_psnr_db"], "val_score_kind": "reconstruction"}
    sums: dict[str, float] = {}
    t = lambda arr: torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(device)  # noqa: E731
    for start in range(0, len(vs.sources), batch_size):
        rows = slice(start, start + batch_size)
        idx = vs.sources[rows]
        x = source.get(idx).to(device)  # (r, 3, S, S) in [-1, 1]
        gaze_s, head_s = t(dataset.gaze[idx]), t(dataset.head[idx])  # (r, 2) rad
        gaze_t, head_t = t(vs.gaze_target[rows]), t(vs.head_target[rows])
        kw = dict(source_gaze=gaze_s, source_head=head_s, compose="decode")
        gaze_only, _ = model.redirect(x, gaze=gaze_t, **kw)  # (r, 3, S, S)
        head_only, _ = model.redirect(x, head=head_t, **kw)
        read_g, read_h = model.encode(gaze_only), model.encode(head_only)
        gaze_t_z = gaze_in_head(gaze_t, head_s) if model.config.gaze_frame == "head" else gaze_t  # Z_g's frame
        parts = {"val_gaze_aux_err_deg": angular_error_deg(read_g.gaze_est.float(), gaze_t_z),  # (r,)
                 "val_head_aux_err_deg": angular_error_deg(read_h.head_est.float(), head_t)}
        if vs.kind == "exact":
            mask = eye_mask(head_s, size=dataset.size, framing=model.framing)  # (r, 1, S, S)
            parts["val_gaze_eye_psnr_db"] = _psnr_db(gaze_only, _unit(vs.exact_gaze[rows], device), weight=mask)
            parts["val_head_psnr_db"] = _psnr_db(head_only, _unit(vs.exact_head[rows], device))
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
    val.update({k: v / len(vs.sources) for k, v in sums.items()})
    if vs.kind == "exact":
        score = (val["val_psnr_db"] + val["val_gaze_eye_psnr_db"] + val["val_head_psnr_db"]) / 3.0
    elif vs.kind == "aux":
        score = val["val_psnr_db"] - AUX_DB_PER_DEG * 0.5 * (val["val_gaze_aux_err_deg"] + val["val_head_aux_err_deg"])
    else:
        score = val["val_psnr_db"]
    return {**val, "val_score": score, "val_score_kind": vs.kind}


def _reconstruction(pair_forward, source, dataset, pairs: np.ndarray, *, device, batch_size: int) -> dict:
    """Reconstruction PSNR / L1 of X^T on fixed held-out pairs (the similarity of [0041]/[0055])."""
    psnr_sum, l1_sum, n = 0.0, 0.0, 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = pair_batch(source, dataset, chunk, device)
        gaze_sel, head_sel = CrossAttributeSeparation.choose_target(len(chunk), mode="random", generator=torch.Generator().manual_seed(start))
        out = pair_forward(**batch, gaze_sel=gaze_sel.to(device), head_sel=head_sel.to(device))
        for o, t in ((out["out_a"], batch["x_a"]), (out["out_b"], batch["x_b"])):
            psnr_sum += float(_psnr_db(o, t).sum())
            l1_sum += float(((o.float().clamp(-1, 1) - t.float()) / 2.0).abs().mean()) * len(chunk)
            n += len(chunk)
    return {"val_psnr_db": psnr_sum / n, "val_l1": l1_sum / n}


def _unit(u8: np.ndarray, device) -> torch.Tensor:
    """uint8 (n, S, S, 3) -> float (n, 3, S, S) in [-1, 1]."""
    return torch.from_numpy(u8).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _psnr_db(output: torch.Tensor, target: torch.Tensor, *, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR (dB) of float (n, 3, S, S) images in [-1, 1], on [0, 1] intensities -> (n,); with
    `weight` (n, 1, S, S) the squared errors are a weighted mean (an eye-region PSNR)."""
    sq = ((output.float().clamp(-1, 1) - target.float()) / 2.0).pow(2)  # (n, 3, S, S)
    if weight is None:
        mse = sq.flatten(1).mean(1)
    else:
        w = weight.float().expand_as(sq)
        mse = (w * sq).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-12)
    return -10.0 * mse.clamp_min(1e-10).log10()
