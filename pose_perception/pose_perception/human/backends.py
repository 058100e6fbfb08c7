"""Whole-body keypoint backends: one person's image region in, COCO-WholeBody 133 keypoints out.

MediaPipe Holistic (weights in the mediapipe 0.10.21 wheel) is the default; user-supplied RTMW / DWPose /
RTMPose-wholebody ONNX exports run top-down with SimCC decoding on onnxruntime.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from pose_perception.core.keypoints import BODY, COCO_WHOLEBODY_133, FACE, FEET, LEFT_HAND, RIGHT_HAND

NUM_KEYPOINTS = COCO_WHOLEBODY_133.num_keypoints


class BackendError(RuntimeError):
    """A keypoint backend cannot be created or run."""


class ModelFileError(BackendError):
    """A model file is missing, unreadable or not the kind of model expected."""


class BackendInputError(ValueError):
    """An image or box handed to a backend has the wrong type or shape."""


@dataclass(frozen=True)
class KeypointEstimate:
    """One person's whole-body keypoints in the full image.

    keypoints_uv: (133, 2) float32 pixels (NaN where unknown); confidence: (133,) float32 in [0, 1].
    keypoints_world_m: (133, 3) float32 metres, hip-centred, axes of the camera (x right, y down, z forward),
      NaN where none; None if the backend has no metric output.
    score: person score in [0, 1]; bbox_xyxy: (4,) float32 pixels, extent of the found keypoints.
    """

    keypoints_uv: np.ndarray
    confidence: np.ndarray
    keypoints_world_m: Optional[np.ndarray]
    score: float
    bbox_xyxy: np.ndarray


class KeypointBackend(Protocol):
    def estimate(
        self, rgb: np.ndarray, bbox_xyxy: Optional[np.ndarray], lane: Optional[int] = None
    ) -> Optional[KeypointEstimate]:
        """rgb: (H, W, 3) uint8; bbox_xyxy: (4,) pixels of the person or None for the whole image; lane: the
        id of one person followed across video frames (a backend may track within a lane), None for a still."""

    def release_lane(self, lane: int) -> None:
        """The person of this lane is gone: the lane may be reused for someone else."""


def estimate_all(backend: KeypointBackend, requests: list[tuple], pool=None) -> list[Optional[KeypointEstimate]]:
    """backend.estimate(*request) for each (rgb, bbox_xyxy, lane) request; concurrently on a
    concurrent.futures pool when one is given (MediaPipe and onnxruntime release the GIL while inferring)."""
    if pool is None or len(requests) < 2:
        return [backend.estimate(*r) for r in requests]
    return list(pool.map(lambda r: backend.estimate(*r), requests))


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Refuse anything that is not an (H, W, 3) uint8 image; returns it C-contiguous."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise BackendInputError(f"expected an (H, W, 3) uint8 RGB image, got {desc}")
    return np.ascontiguousarray(rgb)


def clip_box(bbox_xyxy: Optional[np.ndarray], width: int, height: int) -> Optional[np.ndarray]:
    """(4,) pixels clipped to the image; None for the whole image; raises on non-finite or wrong-size boxes."""
    if bbox_xyxy is None:
        return np.array([0, 0, width, height], dtype=np.float32)
    box = np.asarray(bbox_xyxy, dtype=np.float32).ravel()
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise BackendInputError(f"bbox_xyxy must be 4 finite numbers [x0, y0, x1, y1], got {bbox_xyxy!r}")
    x0, y0, x1, y1 = box
    return np.array([max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)], np.float32)


def keypoint_extent(
    keypoints_uv: np.ndarray, confidence: np.ndarray, width: int, height: int, min_conf: float = 0.3
) -> np.ndarray:
    """(4,) float32 box around the keypoints with confidence > min_conf, clipped to the image (NaN if none)."""
    ok = (confidence > min_conf) & np.all(np.isfinite(keypoints_uv), axis=1)
    if not np.any(ok):
        return np.full(4, np.nan, np.float32)
    lo, hi = keypoints_uv[ok].min(axis=0), keypoints_uv[ok].max(axis=0)
    return np.clip(np.array([lo[0], lo[1], hi[0], hi[1]], np.float32), 0, [width, height, width, height])


# --------------------------------------------------------------------------------------------------------
# MediaPipe Holistic -> COCO-WholeBody 133
# --------------------------------------------------------------------------------------------------------

# MediaPipe Pose 33 index for each COCO body 17 keypoint (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles). Source: the landmark tables of MediaPipe Pose and COCO; both name the subject's left/right.
MP_POSE_TO_COCO_BODY_17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

# COCO-WholeBody feet (left_big_toe, left_small_toe, left_heel, right_big_toe, right_small_toe, right_heel)
# from MediaPipe Pose (31 left_foot_index, 29 left_heel, 32 right_foot_index, 30 right_heel). MediaPipe has
# one toe point (foot_index, at the second toe): it stands in for both toes; the small toe gets
# SMALL_TOE_CONFIDENCE_FACTOR times its visibility because it is a stand-in.
MP_POSE_TO_COCO_FEET_6 = (31, 31, 29, 32, 32, 30)
SMALL_TOE_CONFIDENCE_FACTOR = 0.5
_SMALL_TOE = (1, 4)

# iBUG 300-W 68 (dlib order: jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35,
# right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67; "right" = the subject's right) from the
# MediaPipe Face Mesh 468 canonical topology. Source: the MediaPipe->dlib-68 correspondence that circulates
# in the head-pose community (e.g. used with mp.solutions.face_mesh for solvePnP); not an official MediaPipe
# table. Jaw points are the closest mesh vertices on the face contour, so they are approximate.
MP_FACE_468_TO_IBUG_68 = (
    # jaw 0-16
    162,
    234,
    93,
    58,
    172,
    136,
    149,
    148,
    152,
    377,
    378,
    365,
    397,
    288,
    323,
    454,
    389,
    # right brow 17-21, left brow 22-26
    71,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    301,
    # nose bridge 27-30, nostrils 31-35
    168,
    197,
    5,
    4,
    75,
    97,
    2,
    326,
    305,
    # right eye 36-41, left eye 42-47
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,
    # outer lips 48-59
    61,
    39,
    37,
    0,
    267,
    269,
    291,
    405,
    314,
    17,
    84,
    181,
    # inner lips 60-67
    78,
    82,
    13,
    312,
    308,
    317,
    14,
    87,
)
# Jaw contour points (0-16) sit on the silhouette: their correspondence is the loosest.
JAW_CONFIDENCE_FACTOR = 0.8

# MediaPipe gives no per-point score for face and hand landmarks: they get the visibility of the pose points
# that anchor them (face: nose, eyes, ears; hand: the wrist), at least this floor because the part model did
# find them.
PART_CONFIDENCE_FLOOR = 0.5


def _landmarks_to_array(landmarks, n: int, with_visibility: bool) -> np.ndarray:
    out = np.empty((n, 4 if with_visibility else 3), np.float64)
    for i, lm in enumerate(landmarks.landmark[:n]):
        out[i, :3] = (lm.x, lm.y, lm.z)
        if with_visibility:
            out[i, 3] = lm.visibility
    return out


def holistic_to_wholebody(
    pose_norm: Optional[np.ndarray],
    pose_world_m: Optional[np.ndarray],
    face_norm: Optional[np.ndarray],
    left_hand_norm: Optional[np.ndarray],
    right_hand_norm: Optional[np.ndarray],
    crop_xywh: tuple[float, float, float, float],
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Map MediaPipe Holistic landmarks to COCO-WholeBody 133 in full-image pixels.

    pose_norm: (33, 4) normalised x, y, z, visibility in the crop; pose_world_m: (33, 3) metres, hip-centred;
    face_norm: (>=468, 3); hands: (21, 3); crop_xywh: where the crop lies in the full image (pixels).
    Returns keypoints_uv (133, 2) float32, confidence (133,) float32, keypoints_world_m (133, 3) float32 | None.
    """
    x0, y0, w, h = crop_xywh
    uv = np.full((NUM_KEYPOINTS, 2), np.nan, np.float32)
    conf = np.zeros(NUM_KEYPOINTS, np.float32)
    world = None

    def to_px(norm: np.ndarray) -> np.ndarray:
        return np.stack([norm[:, 0] * w + x0, norm[:, 1] * h + y0], axis=1).astype(np.float32)

    face_anchor_conf = PART_CONFIDENCE_FLOOR
    wrist_conf = {"left": PART_CONFIDENCE_FLOOR, "right": PART_CONFIDENCE_FLOOR}
    if pose_norm is not None:
        vis = np.clip(pose_norm[:, 3], 0.0, 1.0).astype(np.float32)
        body_idx = np.array(MP_POSE_TO_COCO_BODY_17)
        feet_idx = np.array(MP_POSE_TO_COCO_FEET_6)
        uv[BODY] = to_px(pose_norm[body_idx])
        conf[BODY] = vis[body_idx]
        uv[FEET] = to_px(pose_norm[feet_idx])
        conf[FEET] = vis[feet_idx]
        conf[FEET.start + np.array(_SMALL_TOE)] *= SMALL_TOE_CONFIDENCE_FACTOR
        face_anchor_conf = max(PART_CONFIDENCE_FLOOR, float(np.mean(vis[[0, 2, 5, 7, 8]])))
        wrist_conf = {
            "left": max(PART_CONFIDENCE_FLOOR, float(vis[15])),
            "right": max(PART_CONFIDENCE_FLOOR, float(vis[16])),
        }
        if pose_world_m is not None:
            world = np.full((NUM_KEYPOINTS, 3), np.nan, np.float32)
            world[BODY] = pose_world_m[body_idx, :3]
            world[FEET] = pose_world_m[feet_idx, :3]
    if face_norm is not None:
        idx = np.array(MP_FACE_468_TO_IBUG_68)
        uv[FACE] = to_px(face_norm[idx])
        conf[FACE] = face_anchor_conf
        conf[FACE.start : FACE.start + 17] *= JAW_CONFIDENCE_FACTOR
    for hand_norm, part, side in ((left_hand_norm, LEFT_HAND, "left"), (right_hand_norm, RIGHT_HAND, "right")):
        if hand_norm is not None:
            uv[part] = to_px(hand_norm[:21])
            conf[part] = wrist_conf[side]
    return uv, conf, world


class _Holistic:
    """One MediaPipe Holistic graph and its lock. Video mode keeps the last frame's landmarks as the next
    frame's region of interest and skips the pose detector while the person stays found."""

    def __init__(self, video: bool, min_detection_confidence: float, min_tracking_confidence: float) -> None:
        from mediapipe.python.solutions import holistic as mp_holistic

        self.graph = mp_holistic.Holistic(
            static_image_mode=not video,
            model_complexity=1,  # the only complexity whose weights ship in the wheel
            smooth_landmarks=False,  # the tracker smooths (One-Euro): MediaPipe's filter would add lag twice
            enable_segmentation=False,
            refine_face_landmarks=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self.lock = threading.Lock()
        self.holds_roi = False  # video mode: the last call found someone, whose region the next call reuses

    def process(self, rgb: np.ndarray):
        with self.lock:
            result = self.graph.process(rgb)
            self.holds_roi = result.pose_landmarks is not None
            return result

    def forget(self) -> None:
        """Drop the tracked region (about 30 ms: the graph restarts), so the next call detects afresh."""
        with self.lock:
            if self.holds_roi:
                self.graph.reset()
                self.holds_roi = False

    def close(self) -> None:
        with self.lock:
            self.graph.close()


class MediaPipeHolisticBackend:
    """MediaPipe Holistic (legacy `solutions.holistic`, model_complexity=1, weights bundled, Apache-2.0).

    With a box, runs on the box padded by `crop_padding` of its size on each side; images whose longest side
    exceeds `max_side_px` are downscaled first (MediaPipe works at 256 px internally anyway). Calls without a
    lane run a still-image graph (pose detector every call); each lane has its own video-mode graph that
    follows its person from the last call's landmarks and runs the detector only when the person is lost,
    which saves about a fifth of the time per person. Graphs are not thread-safe: each has a lock, and
    different lanes may run concurrently.
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        lane_tracking_confidence: float = 0.5,
        crop_padding: float = 0.15,
        max_side_px: int = 1280,
        min_side_px: int = 32,
    ) -> None:
        try:
            from mediapipe.python.solutions import holistic  # noqa: F401
        except ImportError as exc:
            raise BackendError(
                f"MediaPipe Holistic needs mediapipe==0.10.21 (the last release with the legacy solutions API and "
                f"bundled weights): {exc}"
            ) from exc
        self._still_confidences = (min_detection_confidence, min_tracking_confidence)
        # A lane's graph keeps its region while the landmark model's presence stays above this. Higher values
        # drop stale regions sooner but also lose real people in small crops (0.95 lost them in tests).
        self._lane_confidences = (min_detection_confidence, lane_tracking_confidence)
        self._still: Optional[_Holistic] = _Holistic(False, *self._still_confidences)
        self._lanes: dict[int, _Holistic] = {}
        self._spare: list[_Holistic] = []  # graphs of released lanes, reused before new ones are built
        self._lanes_lock = threading.Lock()
        self.crop_padding = crop_padding
        self.max_side_px = max_side_px
        self.min_side_px = min_side_px

    def close(self) -> None:
        with self._lanes_lock:
            graphs = ([self._still] if self._still else []) + list(self._lanes.values()) + self._spare
            self._still, self._lanes, self._spare = None, {}, []
        for g in graphs:
            g.close()

    def _graph(self, lane: Optional[int]) -> _Holistic:
        with self._lanes_lock:
            if self._still is None:
                raise BackendError("backend was closed")
            if lane is None:
                return self._still
            if lane not in self._lanes:
                self._lanes[lane] = self._spare.pop() if self._spare else _Holistic(True, *self._lane_confidences)
            return self._lanes[lane]

    def release_lane(self, lane: int) -> None:
        with self._lanes_lock:
            graph = self._lanes.pop(lane, None)
        if graph is not None:
            graph.forget()
            with self._lanes_lock:
                self._spare.append(graph)

    def raw_process(self, rgb: np.ndarray, lane: Optional[int] = None):
        """Run Holistic on a whole (H, W, 3) uint8 image and return MediaPipe's own result (for benchmarks)."""
        return self._graph(lane).process(check_rgb(rgb))

    def estimate(
        self, rgb: np.ndarray, bbox_xyxy: Optional[np.ndarray] = None, lane: Optional[int] = None
    ) -> Optional[KeypointEstimate]:
        rgb = check_rgb(rgb)
        H, W = rgb.shape[:2]
        box = clip_box(bbox_xyxy, W, H)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bbox_xyxy is not None:
            pad_x, pad_y = self.crop_padding * bw, self.crop_padding * bh
            box = clip_box(box + np.array([-pad_x, -pad_y, pad_x, pad_y], np.float32), W, H)
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        if x1 - x0 < self.min_side_px or y1 - y0 < self.min_side_px:
            return None  # too small to hold a person MediaPipe can see
        crop = rgb[y0:y1, x0:x1]
        longest = max(crop.shape[:2])
        if longest > self.max_side_px:
            import cv2

            s = self.max_side_px / longest
            crop = cv2.resize(
                crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))), interpolation=cv2.INTER_AREA
            )
        result = self.raw_process(np.ascontiguousarray(crop), lane)
        if result.pose_landmarks is None:
            return None
        pose = _landmarks_to_array(result.pose_landmarks, 33, True)
        world = (
            _landmarks_to_array(result.pose_world_landmarks, 33, False)
            if result.pose_world_landmarks is not None
            else None
        )
        face = _landmarks_to_array(result.face_landmarks, 468, False) if result.face_landmarks else None
        lh = _landmarks_to_array(result.left_hand_landmarks, 21, False) if result.left_hand_landmarks else None
        rh = _landmarks_to_array(result.right_hand_landmarks, 21, False) if result.right_hand_landmarks else None
        uv, conf, world133 = holistic_to_wholebody(pose, world, face, lh, rh, (x0, y0, x1 - x0, y1 - y0))
        score = float(np.mean(conf[BODY]))
        return KeypointEstimate(uv, conf, world133, score, keypoint_extent(uv, conf, W, H))


# --------------------------------------------------------------------------------------------------------
# ONNX top-down whole-body models (RTMW, DWPose, RTMPose-wholebody) with SimCC heads
# --------------------------------------------------------------------------------------------------------

# ImageNet mean / std in 0-255 RGB: what mmpose's data preprocessor applies before RTMPose / RTMW / DWPose.
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


def onnx_providers(device: str) -> list[str]:
    """onnxruntime providers for device 'cpu' | 'cuda' | 'auto' (CUDA when onnxruntime has it)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device not in ("cpu", "cuda", "auto"):
        raise BackendError(f"device must be 'cpu', 'cuda' or 'auto', got '{device}'")
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise BackendError(
            f"device 'cuda' asked for, but this onnxruntime has only {available}: install onnxruntime-gpu or use 'cpu'"
        )
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def load_onnx_session(model_path: str | Path, device: str = "auto", threads: int = 1):
    """An onnxruntime InferenceSession, with ModelFileError for missing or corrupt files."""
    import onnxruntime as ort

    path = Path(model_path).expanduser()
    if not str(model_path):
        raise ModelFileError("no ONNX model path given")
    if not path.is_file():
        raise ModelFileError(f"ONNX model '{path}' does not exist: download it (see docs/human.md) or fix the path")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers(device))
    except BackendError:
        raise
    except Exception as exc:  # onnxruntime raises its own pybind exception types for bad protobufs
        raise ModelFileError(f"ONNX model '{path}' cannot be loaded (corrupt or not an ONNX file?): {exc}") from exc


def topdown_affine(
    bbox_xyxy: np.ndarray, input_wh: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmpose TopdownAffine without rotation: the box grown by `padding` and to the input aspect ratio.

    Returns M (2, 3) float64 mapping image pixels to input pixels, center (2,) and scale (2,) (w, h) in pixels.
    """
    in_w, in_h = input_wh
    x0, y0, x1, y1 = np.asarray(bbox_xyxy, np.float64)
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    w, h = max(x1 - x0, 1.0) * padding, max(y1 - y0, 1.0) * padding
    aspect = in_w / in_h
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    s = in_w / w
    M = np.array([[s, 0.0, in_w / 2.0 - s * center[0]], [0.0, s, in_h / 2.0 - s * center[1]]])
    return M, center, np.array([w, h])


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """SimCC argmax decoding. simcc_x: (K, W*r), simcc_y: (K, H*r) -> locations (K, 2) in input pixels, scores (K,).

    Score is the smaller of the two maxima, as mmpose's get_simcc_maximum; locations with score <= 0 are NaN.
    """
    x_loc = np.argmax(simcc_x, axis=1).astype(np.float32)
    y_loc = np.argmax(simcc_y, axis=1).astype(np.float32)
    scores = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1)).astype(np.float32)
    locs = np.stack([x_loc, y_loc], axis=1) / split_ratio
    locs[scores <= 0] = np.nan
    return locs, scores


class OnnxWholeBodyBackend:
    """Top-down whole-body model exported to ONNX (input (1, 3, H, W) float32, outputs simcc_x (1, K, W*r) and
    simcc_y (1, K, H*r)): RTMW, DWPose and RTMPose-wholebody exports from mmpose / mmdeploy.

    K may be 133 (whole body) or fewer (the first K of COCO-WholeBody, e.g. 17 for a body-only RTMPose).
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        padding: float = 1.25,
        split_ratio: float = 2.0,
        mean_rgb: tuple[float, float, float] = IMAGENET_MEAN_RGB,
        std_rgb: tuple[float, float, float] = IMAGENET_STD_RGB,
        input_bgr: bool = False,
        threads: int = 1,
    ) -> None:
        self.session = load_onnx_session(model_path, device, threads)
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) for d in shape[2:]):
            raise ModelFileError(
                f"ONNX model '{model_path}' must take one (1, 3, H, W) image input with fixed H, W; "
                f"inputs are {[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        self.input_wh = (int(shape[3]), int(shape[2]))
        self.split_ratio = split_ratio
        names = [o.name for o in outputs]
        if len(outputs) != 2:
            raise ModelFileError(f"ONNX model '{model_path}' must have two SimCC outputs (x, y), has {names}")
        # Identify x / y by name when exported by mmdeploy, else by length (W*r vs H*r).
        if "simcc_x" in names and "simcc_y" in names:
            self.output_names = ["simcc_x", "simcc_y"]
        else:
            self.output_names = names
        self.padding = padding
        self.mean = np.asarray(mean_rgb, np.float32)
        self.std = np.asarray(std_rgb, np.float32)
        self.input_bgr = input_bgr
        self.providers = self.session.get_providers()

    def preprocess(self, rgb: np.ndarray, bbox_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 + box -> input tensor (1, 3, h, w) float32, center (2,), scale (2,)."""
        import cv2

        M, center, scale = topdown_affine(bbox_xyxy, self.input_wh, self.padding)
        crop = cv2.warpAffine(rgb, M, self.input_wh, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        x = (crop.astype(np.float32) - self.mean) / self.std
        if self.input_bgr:
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), center, scale

    def postprocess(
        self, simcc_x: np.ndarray, simcc_y: np.ndarray, center: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs (1, K, W*r), (1, K, H*r) -> keypoints_uv (K, 2) image pixels, scores (K,)."""
        locs, scores = decode_simcc(simcc_x[0], simcc_y[0], self.split_ratio)
        in_wh = np.asarray(self.input_wh, np.float64)
        uv = locs / in_wh * scale + center - 0.5 * scale
        return uv.astype(np.float32), scores

    def release_lane(self, lane: int) -> None:
        """Top-down per box: nothing is carried between calls."""

    def estimate(
        self, rgb: np.ndarray, bbox_xyxy: Optional[np.ndarray] = None, lane: Optional[int] = None
    ) -> Optional[KeypointEstimate]:
        rgb = check_rgb(rgb)
        H, W = rgb.shape[:2]
        box = clip_box(bbox_xyxy, W, H)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        x, center, scale = self.preprocess(rgb, box)
        out_x, out_y = self.session.run(self.output_names, {self.input_name: x})
        if out_x.shape[-1] != round(self.input_wh[0] * self.split_ratio) and out_y.shape[-1] == round(
            self.input_wh[0] * self.split_ratio
        ):
            out_x, out_y = out_y, out_x  # outputs were in (y, x) order
        K = out_x.shape[1]
        if K > NUM_KEYPOINTS or out_y.shape[1] != K:
            raise ModelFileError(f"SimCC outputs have {out_x.shape} and {out_y.shape}: expected (1, K<=133, .)")
        uv_k, scores = self.postprocess(out_x, out_y, center, scale)
        uv = np.full((NUM_KEYPOINTS, 2), np.nan, np.float32)
        conf = np.zeros(NUM_KEYPOINTS, np.float32)
        uv[:K] = uv_k
        # RTMW / DWPose SimCC maxima are unnormalised (about 0-1 for confident points, can exceed 1).
        conf[:K] = np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)
        conf[~np.all(np.isfinite(uv), axis=1)] = 0.0
        score = float(np.mean(conf[BODY]))
        return KeypointEstimate(uv, conf, None, score, keypoint_extent(uv, conf, W, H))
