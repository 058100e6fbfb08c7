"""MediaPipe's bundled detectors run directly on TFLite, every anchor decoded (not just the best one).

The mediapipe 0.10.21 wheel holds the weights (Apache-2.0) of the BlazePose person detector
(`pose_detection.tflite`), the full-range face detector and the palm detector; MediaPipe's own graphs keep one
pose detection per image. Here they run on `tflite_runtime` with the SSD anchors and box decoding of MediaPipe's
graph options (SsdAnchorsCalculator / TensorsToDetectionsCalculator in pose_detection_cpu.pbtxt,
face_detection_full_range.pbtxt, palm_detection_cpu.pbtxt), on any window of the image (letterboxed), so
that tiles and several scales find small people, and all detections above a threshold are kept.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Protocol, TypeVar

import numpy as np

from pose_perception.human.backends import BackendError, check_rgb


def window_bounds(window_xyxy: Optional[np.ndarray], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds (x0, y0, x1, y1) of a (4,) window clipped to the image, outward-rounded; None: the whole
    image."""
    if window_xyxy is None:
        return 0, 0, width, height
    x0, y0 = max(0, int(window_xyxy[0])), max(0, int(window_xyxy[1]))
    return x0, y0, min(width, int(np.ceil(window_xyxy[2]))), min(height, int(np.ceil(window_xyxy[3])))


@dataclass(frozen=True)
class SsdSpec:
    """One MediaPipe SSD detector: model file (under mediapipe/modules), input side, anchor layout, outputs."""

    model: str
    input_side: int
    strides: tuple[int, ...]
    interpolated_anchor: bool  # a second anchor per location (interpolated scale, aspect 1)
    num_keypoints: int
    input_range: tuple[float, float]  # pixel values are mapped to this range
    min_score: float


# Options as in MediaPipe's graphs (see module docstring); min_score is this package's default, lower than
# MediaPipe's for the pose detector because fused proposals are checked by the keypoint model afterwards.
POSE_DETECTOR = SsdSpec("pose_detection/pose_detection.tflite", 224, (8, 16, 32, 32, 32), True, 4, (-1.0, 1.0), 0.5)
FACE_DETECTOR = SsdSpec("face_detection/face_detection_full_range_sparse.tflite", 192, (4,), False, 6, (-1.0, 1.0), 0.6)
PALM_DETECTOR = SsdSpec("palm_detection/palm_detection_lite.tflite", 192, (8, 16, 16, 16), True, 7, (0.0, 1.0), 0.5)


@lru_cache(maxsize=None)
def ssd_anchors(input_side: int, strides: tuple[int, ...], interpolated: bool) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], MediaPipe's SsdAnchorsCalculator order with fixed_anchor_size: layers
    of equal stride are merged; per merged layer rows, columns, then the anchors of each location."""
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_location = (j - i) * (2 if interpolated else 1)
        n = int(np.ceil(input_side / strides[i]))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        c = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(c, per_location, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """box_xyxy: (4,) float32 image pixels; score in [0, 1]; keypoints_uv: (K, 2) float32 image pixels (the
    model's alignment points: pose = hip centre, full-body scale point, shoulder centre, upper-body scale point;
    face = eyes, nose, mouth, ears; palm = wrist and finger bases)."""

    box_xyxy: np.ndarray
    score: float
    keypoints_uv: np.ndarray


class ScoredBox(Protocol):
    box_xyxy: np.ndarray
    score: float


BoxT = TypeVar("BoxT", bound=ScoredBox)


def nms(dets: list[BoxT], iou_threshold: float) -> list[BoxT]:
    """Greedy non-maximum suppression by score (box IoU) of anything with box_xyxy (4,) and score."""
    from pose_perception.human.tracking import box_iou

    kept: list[BoxT] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(box_iou(d.box_xyxy, k.box_xyxy) < iou_threshold for k in kept):
            kept.append(d)
    return kept


def tflite_interpreter_class():
    """The TFLite Interpreter class: tflite-runtime (pinned, Python <= 3.11 wheels), else its successor
    ai-edge-litert (same API; Python 3.12+), else a BackendError saying what to install."""
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError as exc:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise BackendError(
                f"MediaPipe's detector and landmark models run on tflite-runtime==2.14.0 (Python <= "
                f"3.11) or ai-edge-litert (3.12+): pip install one, or use backend 'mediapipe' "
                f"with proposer 'face' ({exc})"
            ) from exc
    return Interpreter


def _modules_dir() -> str:
    try:
        import mediapipe
    except ImportError as exc:
        raise BackendError(
            f"the bundled detectors need mediapipe==0.10.21 (their weights are in its wheel): {exc}"
        ) from exc
    return os.path.join(os.path.dirname(mediapipe.__file__), "modules")


class SsdDetector:
    """One TFLite SSD model from the mediapipe wheel; detect() on any window of an image. Thread-safe (a lock)."""

    def __init__(self, spec: SsdSpec, threads: int = 1, min_score: Optional[float] = None) -> None:
        Interpreter = tflite_interpreter_class()
        path = os.path.join(_modules_dir(), spec.model)
        if not os.path.isfile(path):
            raise BackendError(f"'{path}' is missing: reinstall mediapipe==0.10.21")
        self.spec = spec
        self.min_score = spec.min_score if min_score is None else min_score
        self._interp = Interpreter(path, num_threads=threads)
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]["index"]
        outs = sorted(self._interp.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._boxes, self._scores = outs[0]["index"], outs[1]["index"]
        self._anchors = ssd_anchors(spec.input_side, spec.strides, spec.interpolated_anchor)
        n = outs[0]["shape"][1]
        if n != len(self._anchors):
            raise BackendError(f"{spec.model}: {n} boxes but {len(self._anchors)} anchors: not the expected model")
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, window_xyxy: Optional[np.ndarray] = None) -> list[Detection]:
        """(H, W, 3) uint8 image; window_xyxy: (4,) the region to look at (None: the whole image), letterboxed
        to the model's square input. Returns every anchor above min_score, decoded to image pixels (no NMS)."""
        import cv2

        rgb = check_rgb(rgb)
        x0, y0, x1, y1 = window_bounds(window_xyxy, rgb.shape[1], rgb.shape[0])
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        side = self.spec.input_side
        crop = rgb[y0:y1, x0:x1]
        s = side / max(crop.shape[:2])  # input pixels per image pixel
        nw, nh = max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))
        # Letterbox centred, as MediaPipe's ImageToTensorCalculator (keep_aspect_ratio, zero border).
        ox, oy = (side - nw) // 2, (side - nh) // 2
        lo, hi = self.spec.input_range
        x = np.zeros((side, side, 3), np.float32)  # zero border in the model's range, as MediaPipe
        x[oy : oy + nh, ox : ox + nw] = (
            cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR).astype(np.float32)
            * ((hi - lo) / 255.0)
            + lo
        )
        with self._lock:
            self._interp.set_tensor(self._input, x[None])
            self._interp.invoke()
            raw = self._interp.get_tensor(self._boxes)[0]
            logits = self._interp.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))  # float32 exp overflows past ~88
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        a = self._anchors[keep]
        r = raw[keep] / side  # fixed-size anchors (w = h = 1): offsets in units of the input side
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        w, h = r[:, 2], r[:, 3]
        k = r[:, 4 : 4 + 2 * self.spec.num_keypoints].reshape(len(keep), -1, 2) + a[:, None, :]

        def to_image(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (u * side - ox) / s + x0, (v * side - oy) / s + y0

        bx0, by0 = to_image(cx - w / 2, cy - h / 2)
        bx1, by1 = to_image(cx + w / 2, cy + h / 2)
        ku, kv = to_image(k[..., 0], k[..., 1])
        out = []
        for i in range(len(keep)):
            box = np.array([bx0[i], by0[i], bx1[i], by1[i]], np.float32)
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(box, float(scores[keep[i]]), np.stack([ku[i], kv[i]], axis=1).astype(np.float32)))
        return out


def tile_windows(width: int, height: int, tile_px: float, overlap: float = 0.25) -> list[np.ndarray]:
    """Square-ish windows of about tile_px covering the image with `overlap` of a tile between neighbours;
    [(4,) float32]. A dimension no larger than tile_px gets one window."""

    def starts(extent: int) -> list[float]:
        if extent <= tile_px:
            return [0.0]
        n = int(np.ceil((extent - tile_px) / (tile_px * (1 - overlap)))) + 1
        return list(np.linspace(0, extent - tile_px, n))

    t = float(tile_px)
    return [
        np.array([x, y, min(width, x + t), min(height, y + t)], np.float32)
        for y in starts(height)
        for x in starts(width)
    ]
