"""Reference "models" with the redirector's interface, for sanity checks and baseline rows.

Both implement `redirect(images, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto")
-> (images (B, 3, S, S) in [-1, 1], {"gaze", "head": the source angles used})` like `Redirector.redirect`
(None keeps that angle; `compose` is accepted and changes nothing: neither has a decoder):

- `CopySource`: returns its input. Its redirection error is the distance between source and target poses
  (the do-nothing level a model must beat); its reconstruction is perfect. It estimates no source angles
  (None when none are given).
- `SyntheticOracle`: on synthetic data, re-renders the source's stored identity and session parameters at
  the requested angles: the exact target, i.e. a perfect redirector. Its redirection error is the
  estimator's floor; any gap is the evaluation's own error. It recognises a source image by its bytes, so
  it works only on unmodified images of the dataset it was built on; its "estimated" source angles are the
  stored labels.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from regaze.errors import RegazeError

__all__ = ["CopySource", "SyntheticOracle", "is_synthetic", "default_renderer", "to_u8"]


def to_u8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, S, S) float in [-1, 1] -> (B, S, S, 3) uint8, rounding like the data writer."""
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _to_tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _as_angles(value, fallback, n: int) -> np.ndarray:
    v = fallback if value is None else value
    if v is None:
        raise RegazeError("a target angle was left out and no source angle was given to keep")
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n, 2)).copy()


def is_synthetic(dataset) -> bool:
    """True when the file stores the render parameters of every image (`synth_identity`, `synth_session`)."""
    return {"synth_identity", "synth_session"} <= set(dataset.array_keys)


def default_renderer():
    """The synthetic face renderer, `render(identity=, session=, head=, gaze=, size=) -> uint8 (n, S, S, 3)`."""
    from regaze.data.synth import render

    return render


class CopySource:
    """The do-nothing model: the output is the source image."""

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        return images, {"gaze": source_gaze, "head": source_head}


class SyntheticOracle:
    """The exact target render of a synthetic source image at the requested angles (see module docstring).

    dataset: a synthetic GazeDataset; indices: the images it may be asked about (e.g. the held-out ones);
    renderer: defaults to regaze.data.synth.render.
    """

    def __init__(self, dataset, *, indices=None, renderer=None, batch_size: int = 256):
        if not is_synthetic(dataset):
            raise RegazeError(f"{dataset.path}: SyntheticOracle needs synthetic data with per-image "
                              f"'synth_identity' and 'synth_session' arrays; found {dataset.array_keys}")
        self.dataset = dataset
        self.renderer = renderer or default_renderer()
        idx = np.arange(len(dataset)) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        self._index_of: dict[bytes, int] = {}
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            for i, img in zip(chunk, dataset.read_images(chunk)):
                self._index_of[hashlib.blake2b(img.tobytes(), digest_size=16).digest()] = int(i)

    def redirect(self, images, *, gaze=None, head=None, source_gaze=None, source_head=None, compose="auto"):
        u8 = to_u8(images)  # (B, S, S, 3)
        try:
            rows = np.array([self._index_of[hashlib.blake2b(im.tobytes(), digest_size=16).digest()] for im in u8])
        except KeyError:
            raise RegazeError("SyntheticOracle was given an image that is not one of its dataset's images") from None
        n = len(rows)
        g_src = _as_angles(source_gaze, self.dataset.gaze[rows], n)  # (B, 2) rad
        h_src = _as_angles(source_head, self.dataset.head[rows], n)
        g, h = _as_angles(gaze, g_src, n), _as_angles(head, h_src, n)
        out = self.renderer(identity=self.dataset.read_array("synth_identity", rows),
                            session=self.dataset.read_array("synth_session", rows), head=h, gaze=g,
                            size=self.dataset.size)
        return _to_tensor(out).to(images.device), {"gaze": torch.from_numpy(g_src).float(),
                                                   "head": torch.from_numpy(h_src).float()}
