"""Person proposals for multi-person pose: boxes around each person for the top-down keypoint backends.

Licence-clean by default (MediaPipe's bundled full-range face detector, Apache-2.0); depth tightens boxes and
separates overlapping people; a user-supplied ONNX person detector (mmdeploy RTMDet / YOLOX export) plugs in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from pose_perception.human.backends import BackendError, ModelFileError, check_rgb, load_onnx_session
from pose_perception.human.tracking import box_iou

# Body box from a face box, in face sizes (a standing adult is ~7.5 heads tall and ~3 heads wide with arms
# down); generous so that raised arms and feet stay inside, the backend crops tighter itself.
FACE_TO_BODY_HALF_WIDTH = 2.6
FACE_TO_BODY_ABOVE = 0.6
FACE_TO_BODY_BELOW = 8.0


@dataclass(frozen=True)
class PersonProposal:
    """bbox_xyxy: (4,) float32 body box in pixels; score in [0, 1]; anchor_uv: (2,) float32 pixel whose depth
    is the person's (face centre) or None; depth_m: the person's depth in metres when depth helped, else NaN;
    source: which detectors saw the person; head_xyxy: (4,) float32 head / face box when a detector gave one;
    alignment_uv: (2, 2) float32 hip centre and full-body scale point (BlazePose detector) or None."""

    bbox_xyxy: np.ndarray
    score: float
    anchor_uv: Optional[np.ndarray] = None
    depth_m: float = float("nan")
    source: str = "face"
    head_xyxy: Optional[np.ndarray] = None
    alignment_uv: Optional[np.ndarray] = None


class PersonProposer(Protocol):
    def propose(self, rgb: np.ndarray, depth_m: Optional[np.ndarray] = None) -> list[PersonProposal]:
        """rgb: (H, W, 3) uint8; depth_m: (H, W) float32 metres NaN invalid, registered to rgb, or None."""


def body_box_from_face(face_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """(4,) face box -> (4,) float32 body box clipped to the image."""
    x0, y0, x1, y1 = face_xyxy
    fw, fh = x1 - x0, y1 - y0
    cx = 0.5 * (x0 + x1)
    box = np.array(
        [
            cx - FACE_TO_BODY_HALF_WIDTH * fw,
            y0 - FACE_TO_BODY_ABOVE * fh,
            cx + FACE_TO_BODY_HALF_WIDTH * fw,
            y0 + FACE_TO_BODY_BELOW * fh,
        ],
        np.float32,
    )
    return np.clip(box, 0, [width, height, width, height]).astype(np.float32)


def person_depth_at(depth_m: np.ndarray, uv: np.ndarray, radius_px: int) -> float:
    """Median valid depth (metres) in a (2r+1)^2 window around uv; NaN if none."""
    H, W = depth_m.shape
    u, v = int(round(float(uv[0]))), int(round(float(uv[1])))
    win = depth_m[max(0, v - radius_px) : min(H, v + radius_px + 1), max(0, u - radius_px) : min(W, u + radius_px + 1)]
    valid = win[np.isfinite(win) & (win > 0)]
    return float(np.median(valid)) if valid.size else float("nan")


def refine_box_with_depth(
    bbox_xyxy: np.ndarray, depth_m: np.ndarray, person_depth_m: float, band_m: float, min_fraction: float = 0.02
) -> np.ndarray:
    """Shrink a body box to the pixels whose depth lies within band_m of the person's depth.

    Rows / columns with fewer than min_fraction of such pixels are trimmed from the edges; the box is kept as
    it is when depth says nothing (all invalid, or the person's depth unknown).
    """
    if not np.isfinite(person_depth_m):
        return bbox_xyxy
    H, W = depth_m.shape
    x0, y0 = max(0, int(bbox_xyxy[0])), max(0, int(bbox_xyxy[1]))
    x1, y1 = min(W, int(np.ceil(bbox_xyxy[2]))), min(H, int(np.ceil(bbox_xyxy[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return bbox_xyxy
    with np.errstate(invalid="ignore"):
        near = np.abs(depth_m[y0:y1, x0:x1] - person_depth_m) < band_m
    cols = np.flatnonzero(near.mean(axis=0) > min_fraction)
    rows = np.flatnonzero(near.mean(axis=1) > min_fraction)
    if cols.size < 2 or rows.size < 2:
        return bbox_xyxy
    return np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], np.float32)


def mask_other_depths(
    rgb: np.ndarray, depth_m: np.ndarray, person_depth_m: float, band_m: float, fill: int = 128
) -> np.ndarray:
    """Copy of rgb with pixels whose valid depth is farther than band_m from the person's set to grey.

    Separates a person from people in front of / behind them; invalid depth pixels are left untouched.
    """
    if not np.isfinite(person_depth_m):
        return rgb
    with np.errstate(invalid="ignore"):
        other = np.isfinite(depth_m) & (np.abs(depth_m - person_depth_m) > band_m)
    out = rgb.copy()
    out[other] = fill
    return out


def grey_out_boxes(rgb: np.ndarray, boxes_xyxy: list[np.ndarray], fill: int = 128) -> np.ndarray:
    """Copy of rgb with each (4,) box filled grey: hides found people from a detector that finds one at a time."""
    out = rgb.copy()
    H, W = rgb.shape[:2]
    for b in boxes_xyxy:
        if not np.all(np.isfinite(b)):
            continue
        x0, y0 = max(0, int(b[0])), max(0, int(b[1]))
        x1, y1 = min(W, int(np.ceil(b[2]))), min(H, int(np.ceil(b[3])))
        out[y0:y1, x0:x1] = fill
    return out


def suppress_duplicates(proposals: list[PersonProposal], iou_threshold: float = 0.5) -> list[PersonProposal]:
    """Greedy non-maximum suppression by score."""
    kept: list[PersonProposal] = []
    for p in sorted(proposals, key=lambda p: -p.score):
        if all(box_iou(p.bbox_xyxy, k.bbox_xyxy) < iou_threshold for k in kept):
            kept.append(p)
    return kept


def apply_depth(proposals: list[PersonProposal], depth_m: Optional[np.ndarray], band_m: float) -> list[PersonProposal]:
    """Attach each proposal's depth (at its anchor, else its box centre) and tighten its box with it."""
    if depth_m is None:
        return proposals
    out = []
    for p in proposals:
        b = p.bbox_xyxy
        anchor = p.anchor_uv if p.anchor_uv is not None else np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        radius = max(2, int(0.1 * min(b[2] - b[0], b[3] - b[1])))
        z = person_depth_at(depth_m, anchor, radius)
        out.append(replace(p, bbox_xyxy=refine_box_with_depth(b, depth_m, z, band_m), depth_m=z))
    return out


class MediaPipeFaceProposer:
    """Person boxes from MediaPipe's full-range face detector (model_selection=1, weights in the wheel).

    Finds every frontal-ish face up to ~5 m in one pass; people facing away are left to the pipeline's
    iterative pose-detector search on the image with found people greyed out.
    """

    def __init__(self, min_confidence: float = 0.5, depth_band_m: float = 0.6) -> None:
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:
            raise BackendError(f"the face proposer needs mediapipe==0.10.21: {exc}") from exc
        self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        self.depth_band_m = depth_band_m
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._detector is not None:
                self._detector.close()
                self._detector = None

    def faces(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(H, W, 3) uint8 -> [(face box (4,) float32 pixels, score)]."""
        rgb = check_rgb(rgb)
        H, W = rgb.shape[:2]
        with self._lock:
            if self._detector is None:
                raise BackendError("proposer was closed")
            result = self._detector.process(rgb)
        faces = []
        for det in result.detections or []:
            r = det.location_data.relative_bounding_box
            box = np.array([r.xmin * W, r.ymin * H, (r.xmin + r.width) * W, (r.ymin + r.height) * H], np.float32)
            if r.width > 0 and r.height > 0:
                faces.append((box, float(det.score[0])))
        return faces

    def propose(self, rgb: np.ndarray, depth_m: Optional[np.ndarray] = None) -> list[PersonProposal]:
        H, W = rgb.shape[:2]
        proposals = []
        for face, score in self.faces(rgb):
            centre = np.array([(face[0] + face[2]) / 2, (face[1] + face[3]) / 2], np.float32)
            proposals.append(
                PersonProposal(body_box_from_face(face, W, H), score, centre, source="face", head_xyxy=face)
            )
        return suppress_duplicates(apply_depth(proposals, depth_m, self.depth_band_m))


def letterbox(rgb: np.ndarray, input_wh: tuple[int, int], pad_value: int = 114) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into input_wh, padded at the right / bottom (mmdet Resize + Pad).

    Returns the (h, w, 3) image and the scale applied (input pixels per image pixel).
    """
    import cv2

    in_w, in_h = input_wh
    s = min(in_w / rgb.shape[1], in_h / rgb.shape[0])
    nw, nh = max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))
    out = np.full((in_h, in_w, 3), pad_value, np.uint8)
    out[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, s


class OnnxPersonDetector:
    """User-supplied person detector exported with mmdeploy (RTMDet, YOLOX end2end): input (1, 3, H, W);
    outputs dets (1, N, 5) [x0, y0, x1, y1, score] in input pixels and labels (1, N), or one (1, N, 6) output
    [x0, y0, x1, y1, score, label]. Person is class `person_class` (0 in COCO).

    Pre-processing defaults to YOLOX's (letterbox padded with 114, BGR, no normalisation); RTMDet exports want
    mean (103.53, 116.28, 123.675) / std (57.375, 57.12, 58.395) in BGR.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        score_threshold: float = 0.5,
        person_class: int = 0,
        mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        input_bgr: bool = True,
        depth_band_m: float = 0.6,
        threads: int = 1,
    ) -> None:
        self.session = load_onnx_session(model_path, device, threads)
        inputs = self.session.get_inputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) for d in shape[2:]):
            raise ModelFileError(
                f"ONNX detector '{model_path}' must take one (1, 3, H, W) input with fixed H, W; "
                f"inputs are {[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        self.input_wh = (int(shape[3]), int(shape[2]))
        self.output_names = [o.name for o in self.session.get_outputs()]
        if len(self.output_names) not in (1, 2):
            raise ModelFileError(
                f"ONNX detector '{model_path}' must output (dets, labels) or one (1, N, 6) "
                f"array, has {self.output_names}"
            )
        self.score_threshold = score_threshold
        self.person_class = person_class
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.input_bgr = input_bgr
        self.depth_band_m = depth_band_m

    def detect(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(H, W, 3) uint8 -> [(person box (4,) float32 image pixels, score)] above the threshold."""
        rgb = check_rgb(rgb)
        H, W = rgb.shape[:2]
        img, s = letterbox(rgb, self.input_wh)
        if self.input_bgr:
            img = img[..., ::-1]
        x = ((img.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)[None]
        outputs = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(x)})
        if len(outputs) == 2:
            dets, labels = np.asarray(outputs[0])[0], np.asarray(outputs[1])[0]
        else:
            arr = np.asarray(outputs[0])[0]
            dets, labels = arr[:, :5], arr[:, 5]
        if dets.ndim != 2 or dets.shape[1] < 5 or labels.shape[0] != dets.shape[0]:
            raise ModelFileError(
                f"detector outputs have shapes {[np.shape(o) for o in outputs]}: expected (1, N, 5) and (1, N)"
            )
        keep = (labels.astype(np.int64) == self.person_class) & (dets[:, 4] >= self.score_threshold)
        found = []
        for d in dets[keep]:
            box = np.clip(d[:4] / s, 0, [W, H, W, H]).astype(np.float32)
            if box[2] > box[0] and box[3] > box[1]:
                found.append((box, float(d[4])))
        return found

    def propose(self, rgb: np.ndarray, depth_m: Optional[np.ndarray] = None) -> list[PersonProposal]:
        proposals = []
        for box, score in self.detect(rgb):
            # Anchor the depth on the upper chest: less often occluded than the box centre.
            anchor = np.array([(box[0] + box[2]) / 2, box[1] + 0.3 * (box[3] - box[1])], np.float32)
            proposals.append(PersonProposal(box, min(1.0, score), anchor, source="detector"))
        return suppress_duplicates(apply_depth(proposals, depth_m, self.depth_band_m))
