"""Identity preservation: does the redirected output still show the source's person?

The measure, and why. We need one that downloads no weights (no face-recognition network) and that is
specific to identity. Cosine similarity of generic features is not: an estimator's penultimate features
encode pose, so a copy of the source scores 1 and a faithful redirection scores lower for the wrong reason.
Instead the independent estimator (regaze/evaluation/estimator/) carries an identity head: a unit-norm
embedding trained with a cosine softmax to tell the *training* subjects apart, on images of every pose and,
with its augmentation, every brightness and contrast, so that it learns what stays constant for a person and
not the pose. Evaluation uses it on *held-out* subjects, which it never saw, like a face-verification embedding.

An image's score is its cosine to the pair's reference: the mean embedding of other images of the source's
subject (identity_controls.py). A cosine means nothing alone, so the same score is given on every pair to
  model                          the redirected output (the decoder's image)
  source_itself                  the source image (a real photo of the person)                must score best
  different_subject_same_pose    another held-out subject at the target's pose                must be clearly worse
  mean_face_target_pose          the data set's mean face at the target's pose                must be worse than the source
  real_target                    the real target image (same person, target pose)
  exact_render                   synthetic data: the exact target render
`checks` says whether the three controls come out in that order; only then do the model's numbers mean
something. Summaries: `normalised` = (model - stranger) / (source - stranger) on the means (1 = as much the
person as the source photo, 0 = as much as a stranger at the same pose), `closer_than_stranger` = the fraction
of pairs where the output scores above the stranger (0.5 = chance).
"""
from __future__ import annotations

import numpy as np

__all__ = ["cosine", "identity_summary", "IDENTITY_ROWS", "CLEARLY_WORSE_FRACTION"]

IDENTITY_ROWS = ("model", "source_itself", "real_target", "exact_render", "different_subject_same_pose",
                 "mean_face_target_pose")
# "clearly worse": the source scores above the stranger in at least this fraction of the pairs
CLEARLY_WORSE_FRACTION = 0.9


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, E), (n, E) -> (n,) cosine similarity."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(1)


def identity_summary(scores: dict[str, np.ndarray]) -> dict:
    """Per-pair scores {row: (n,)} (rows of IDENTITY_ROWS; the stranger and mean face may be absent) -> means,
    the controls' checks and the summaries described in the module docstring."""
    means = {k: float(np.mean(v)) for k, v in scores.items() if len(v)}
    out: dict = {"reference": "mean identity embedding of other images of the source's subject", "scores": means}
    source, stranger, mean_face = (scores.get(k) for k in ("source_itself", "different_subject_same_pose",
                                                           "mean_face_target_pose"))
    checks = {}
    if stranger is not None and len(stranger):
        beaten = float(np.mean(source > stranger))
        out["source_closer_than_stranger"] = beaten
        checks["source_scores_best"] = bool(means["source_itself"] > means["different_subject_same_pose"]
                                            and (mean_face is None or means["source_itself"] > means["mean_face_target_pose"]))
        checks["different_subject_clearly_worse"] = bool(beaten >= CLEARLY_WORSE_FRACTION)
        gap = means["source_itself"] - means["different_subject_same_pose"]
        if "model" in means:
            out["normalised"] = (means["model"] - means["different_subject_same_pose"]) / gap if abs(gap) > 1e-6 \
                else float("nan")
            out["closer_than_stranger"] = float(np.mean(scores["model"] > stranger))
    else:
        out["note"] = "one held-out subject only: no different-subject control"
    if mean_face is not None and len(mean_face):
        checks["mean_face_worse_than_source"] = bool(means["mean_face_target_pose"] < means["source_itself"])
    out["checks"] = checks
    out["controls_pass"] = bool(checks) and all(checks.values())
    return out
