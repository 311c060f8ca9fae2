"""The identity measure's reference and its controls (issue 12): a cosine means nothing without them.

Reference. Each pair's source person is represented by a gallery: the mean identity embedding of up to
`GALLERY_SIZE` other images of the same (held-out) subject, the source and the target left out, over their
poses and sessions. An image's identity score is its cosine to that reference. The source image itself is not
the reference, so a copy of the source does not score 1 by construction and the controls below can fail.

Controls, scored the same way on every pair (identity.py checks and reports them):
  source_itself                  the source image: a real photo of the person; must score best
  different_subject_same_pose    the image of another held-out subject nearest in pose to the target
                                 (eval_pairs.sample_pairs): must score clearly worse, or the measure reads pose
  mean_face_target_pose          the pixel mean of the `MEAN_FACE_K` images of a pool of the data set (other
                                 subjects) nearest in pose to the target: the blurred average face a model
                                 falls back to; must score worse than the source
"""
from __future__ import annotations

import numpy as np

from regaze.evaluation.eval_pairs import pose_distance_deg

__all__ = ["GALLERY_SIZE", "MEAN_FACE_K", "MEAN_FACE_POOL", "gallery_indices", "gallery_references",
           "mean_face_pool", "mean_faces_at_pose"]

GALLERY_SIZE = 8  # images per subject in the reference embedding
MEAN_FACE_K = 16  # images averaged into one mean face
MEAN_FACE_POOL = 512  # images of the data set the mean faces are drawn from (read once)


def gallery_indices(*, subject: np.ndarray, subjects: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    """subject: (N,) ids of the whole dataset -> {s: up to GALLERY_SIZE + 2 sorted image indices of subject s},
    drawn with `seed` (two spare, so that leaving out a pair's source and target still leaves GALLERY_SIZE)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x67616C]))  # "gal"
    out = {}
    for s in np.unique(np.asarray(subjects, np.int64)):
        rows = np.flatnonzero(subject == s)
        out[int(s)] = np.sort(rng.choice(rows, size=min(len(rows), GALLERY_SIZE + 2), replace=False))
    return out


def gallery_references(*, gallery: dict[int, np.ndarray], embeddings: dict[int, np.ndarray], subject: np.ndarray,
                       source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The reference of each pair: the unit mean embedding of its subject's gallery without the source and
    the target (the target alone when nothing else is left) -> (n, E).
    gallery: {s: (g,) indices}; embeddings: {s: (g, E)}; subject: (N,); source, target: (n,) indices."""
    refs = []
    for i, j in zip(source, target):
        s = int(subject[i])
        idx, emb = gallery[s], embeddings[s]
        keep = (idx != i) & (idx != j)
        if not keep.any():
            keep = idx == j
        e = emb[keep][:GALLERY_SIZE].mean(0)
        refs.append(e / max(float(np.linalg.norm(e)), 1e-12))
    return np.stack(refs)


def mean_face_pool(*, n_images: int, seed: int) -> np.ndarray:
    """Sorted indices of MEAN_FACE_POOL images of a dataset of `n_images` (all of them when fewer)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D65616E]))  # "mean"
    return np.sort(rng.choice(n_images, size=min(n_images, MEAN_FACE_POOL), replace=False))


def mean_faces_at_pose(*, pool_images: np.ndarray, pool_gaze: np.ndarray, pool_head: np.ndarray,
                       pool_subject: np.ndarray, gaze: np.ndarray, head: np.ndarray, subject: np.ndarray,
                       k: int = MEAN_FACE_K) -> np.ndarray:
    """The mean face of the data set at each requested pose: the pixel mean of the `k` pool images nearest in
    (gaze, head) of subjects other than `subject` -> uint8 (n, S, S, 3).
    pool_images: uint8 (P, S, S, 3); pool_gaze, pool_head: (P, 2) rad; pool_subject: (P,);
    gaze, head: (n, 2) rad; subject: (n,) the pair's person, left out of its mean."""
    d = pose_distance_deg(gaze_a=gaze, head_a=head, gaze_b=pool_gaze, head_b=pool_head)  # (n, P)
    d[np.asarray(pool_subject)[None, :] == np.asarray(subject)[:, None]] = np.inf
    k = min(k, pool_images.shape[0])
    nearest = np.argsort(d, axis=1)[:, :k]  # (n, k)
    out = np.empty((len(gaze),) + pool_images.shape[1:], np.uint8)
    for row, chosen in enumerate(nearest):
        chosen = chosen[np.isfinite(d[row, chosen])] if np.isfinite(d[row, chosen]).any() else chosen
        out[row] = np.round(pool_images[chosen].astype(np.float32).mean(0)).astype(np.uint8)
    return out
