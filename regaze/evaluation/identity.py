"""Identity preservation: does the redirected output still show the source's person?

The measure, and why. We need one that downloads no weights (no face-recognition network) and that is
specific to identity. Cosine similarity of generic features is not: an estimator's penultimate features
encode pose, so a copy of the source scores 1 and a faithful redirection scores lower for the wrong reason.
Instead the independent estimator (regaze/estimator.py) carries an identity head: a unit-norm embedding
trained with a cosine softmax to tell the *training* subjects apart, on images of every pose and, with its
augmentation, every brightness and contrast, so that it learns what stays constant for a person and not the
pose. Evaluation uses it on *held-out* subjects, which it never saw, like a face-verification embedding.

A cosine means nothing alone, so three numbers are reported on the same pairs:
  output_vs_source             cos(e(redirected output), e(source))
  same_subject_reference       cos(e(real target image), e(source)): same person, other pose (and, between
                               sessions, other light): what a perfect redirection would score
  different_subject_reference  cos(e(image of another held-out subject), e(source))
and two summaries: `normalised` = (output - different) / (same - different) on the means (1 = as similar as
the real target, 0 = as similar as a stranger), and `closer_than_stranger` = the fraction of pairs where the
output is closer to its source than the stranger image is (0.5 = chance).
On synthetic data a regressor of the identity parameters would be exact too, but it would not work on real
data; the embedding works on both.
"""
from __future__ import annotations

import numpy as np

__all__ = ["cosine", "identity_summary"]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, E), (n, E) -> (n,) cosine similarity."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(1)


def identity_summary(*, output_vs_source: np.ndarray, same_subject: np.ndarray,
                     different_subject: np.ndarray | None) -> dict:
    """Means of the three cosines (n,) and the two summaries described in the module docstring."""
    out = {"output_vs_source": float(np.mean(output_vs_source)),
           "same_subject_reference": float(np.mean(same_subject))}
    if different_subject is None:
        out["note"] = "one held-out subject only: no different-subject reference"
        return out
    diff = float(np.mean(different_subject))
    out["different_subject_reference"] = diff
    gap = out["same_subject_reference"] - diff
    out["normalised"] = (out["output_vs_source"] - diff) / gap if abs(gap) > 1e-6 else float("nan")
    out["closer_than_stranger"] = float(np.mean(output_vs_source > different_subject))
    out["reference_closer_than_stranger"] = float(np.mean(same_subject > different_subject))
    return out
