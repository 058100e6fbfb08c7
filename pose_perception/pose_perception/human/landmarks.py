"""Whole-body landmarks of ONE given person: MediaPipe's bundled landmark models run on regions we choose.

MediaPipe Holistic runs its own person detector inside every crop and keeps its best person, so in a crowd it
often returns a neighbour. Here the person is fixed before any landmark model runs: a region of interest (ROI:
centre, side, rotation) comes from a person detection's alignment points (hip centre and full-body scale
point, as MediaPipe's AlignmentPointsRectsCalculator: side = 2 x their distance x 1.25, the body axis turned
upright) or from the last frame's landmarks of the same person; the pose landmark model runs on that ROI only,
then the face model on a ROI from the pose's face points and the hand model on ROIs from each wrist and knuckle
pair, each mapped back through its own affine. Weights: `pose_landmark_full`, `face_landmark`,
`hand_landmark_full` from the mediapipe 0.10.21 wheel (Apache-2.0), run on tflite-runtime.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from pose_perception.core.keypoints import BODY
from pose_perception.human.backends import (
    BackendError,
    KeypointEstimate,
    check_rgb,
    clip_box,
    holistic_to_wholebody,
    keypoint_extent,
)
from pose_perception.human.detectors import (
    POSE_DETECTOR,
    Detection,
    SsdDetector,
    _modules_dir,
    tflite_interpreter_class,
)

BODY_ROI_SCALE = 1.25  # MediaPipe's margin around the alignment circle (pose_detection_to_roi)
POSE_LANDMARK_SIDE, FACE_SIDE, HAND_SIDE = 256, 192, 224


@dataclass(frozen=True)
class Roi:
    """A square region of an image: centre_uv (2,) pixels, side_px, up_uv (2,) unit image vector that is "up"
    in the crop (the body's or hand's axis; (0, -1) for an upright region)."""

    center_uv: np.ndarray
    side_px: float
    up_uv: np.ndarray

    def crop_to_image(self, input_side: int) -> np.ndarray:
        """(2, 3) affine from crop pixels (of an input_side square) to image pixels."""
        e_y = -np.asarray(self.up_uv, np.float64)  # the crop's down axis in the image
        e_x = np.array([e_y[1], -e_y[0]])  # its right axis: a rotation (det 1), (1, 0) for an upright region
        k = self.side_px / input_side
        origin = np.asarray(self.center_uv, np.float64) - 0.5 * self.side_px * (e_x + e_y)
        return np.array([[e_x[0] * k, e_y[0] * k, origin[0]], [e_x[1] * k, e_y[1] * k, origin[1]]])


def roi_from_alignment(center_uv: np.ndarray, scale_uv: np.ndarray, scale: float = BODY_ROI_SCALE) -> Optional[Roi]:
    """ROI from two alignment points: centre, and a point along the "up" axis whose distance is the radius."""
    d = np.asarray(scale_uv, np.float64) - np.asarray(center_uv, np.float64)
    r = float(np.hypot(*d))
    if not np.isfinite(r) or r < 2.0:
        return None
    return Roi(np.asarray(center_uv, np.float64), 2.0 * r * scale, d / r)


def roi_from_box(bbox_xyxy: np.ndarray, scale: float = BODY_ROI_SCALE) -> Optional[Roi]:
    """Upright ROI from a whole-body box (a person detector's): centred on the box (about the hip centre of a
    standing person), side = scale x its longer side (MediaPipe's alignment circle has the body's half-length as
    radius, so its ROI side is about 1.25 body lengths)."""
    b = np.asarray(bbox_xyxy, np.float64)
    side = scale * float(max(b[2] - b[0], b[3] - b[1]))
    if not np.isfinite(side) or side < 4.0:
        return None
    return Roi(0.5 * (b[:2] + b[2:]), side, np.array([0.0, -1.0]))


def roi_from_detection(det: Detection) -> Optional[Roi]:
    """A BlazePose detection's landmark ROI (keypoint 0 = hip centre, 1 = full-body scale point)."""
    return roi_from_alignment(det.keypoints_uv[0], det.keypoints_uv[1])


def _roi_change(a: Roi, b: Roi) -> float:
    """How far apart two ROIs are, in units of the first's side: centre shift plus relative side change."""
    return float(np.hypot(*(np.asarray(b.center_uv) - a.center_uv)) / a.side_px + abs(b.side_px / a.side_px - 1.0))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


class _Model:
    """One tflite model with a lock; run(crop (S, S, 3) float32 [0, 1]) -> outputs by name."""

    def __init__(self, rel_path: str, threads: int) -> None:
        Interpreter = tflite_interpreter_class()
        path = os.path.join(_modules_dir(), rel_path)
        if not os.path.isfile(path):
            raise BackendError(f"'{path}' is missing: reinstall mediapipe==0.10.21")
        self.interp = Interpreter(path, num_threads=threads)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]["index"]
        self.side = int(self.interp.get_input_details()[0]["shape"][1])
        self.outputs = {d["name"]: d["index"] for d in self.interp.get_output_details()}
        self.lock = threading.Lock()

    def run(self, rgb: np.ndarray, roi: Roi) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Crop the ROI (bilinear, zero outside the image), run, return (outputs, A (2, 3) crop -> image)."""
        import cv2

        A = roi.crop_to_image(self.side)
        M = cv2.invertAffineTransform(A)
        crop = cv2.warpAffine(
            rgb,
            M,
            (self.side, self.side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        x = (crop.astype(np.float32) * (1.0 / 255.0))[None]
        with self.lock:
            self.interp.set_tensor(self.input, x)
            self.interp.invoke()
            out = {k: self.interp.get_tensor(i).copy() for k, i in self.outputs.items()}
        return out, A


def _to_image(A: np.ndarray, uv: np.ndarray) -> np.ndarray:
    return uv @ A[:, :2].T + A[:, 2]


@dataclass(frozen=True)
class BodyLandmarks:
    """pose_uv (33, 2) image pixels, pose_vis (33,) [0, 1], world_m (33, 3) metres hip-centred in camera-aligned
    axes, presence in [0, 1]; next_roi: where the person is looked for in the next frame; face_uv (468, 2) or
    None; left / right hand (21, 2) or None; roi: the region the pose came from."""

    pose_uv: np.ndarray
    pose_vis: np.ndarray
    world_m: np.ndarray
    presence: float
    next_roi: Optional[Roi]
    face_uv: Optional[np.ndarray] = None
    left_hand_uv: Optional[np.ndarray] = None
    right_hand_uv: Optional[np.ndarray] = None
    roi: Optional[Roi] = None


class WholeBodyLandmarker:
    """Pose 33 + face 468 + hands 21 of the person inside a given ROI. min_part_px: parts whose ROI is smaller
    are skipped (too few pixels for their models, and it saves time in crowds). Thread-safe per model."""

    def __init__(
        self,
        threads: int = 1,
        min_presence: float = 0.5,
        min_part_px: float = 20.0,
        face: bool = True,
        hands: bool = True,
        refine_face: bool = True,
    ) -> None:
        self.pose = _Model("pose_landmark/pose_landmark_full.tflite", threads)
        self.face = _Model("face_landmark/face_landmark.tflite", threads) if face else None
        self.hand = _Model("hand_landmark/hand_landmark_full.tflite", threads) if hands else None
        self.min_presence = min_presence
        self.min_part_px = min_part_px
        self.refine_face = refine_face

    def body(self, rgb: np.ndarray, roi: Roi) -> Optional[BodyLandmarks]:
        out, A = self.pose.run(rgb, roi)
        presence = float(np.ravel(out["Identity_1"])[0])
        if presence < self.min_presence:
            return None
        raw = out["Identity"].reshape(39, 5)
        uv = _to_image(A, raw[:, :2].astype(np.float64))
        vis = _sigmoid(raw[:, 3]).astype(np.float64)
        # World landmarks come in the ROI's axes: turn x, y back to the image's (z is along the camera axis).
        w = out["Identity_4"].reshape(39, 3).astype(np.float64)
        R = A[:, :2] / np.linalg.norm(A[:, 0])
        world = np.concatenate([w[:, :2] @ R.T, w[:, 2:]], axis=1)
        next_roi = roi_from_alignment(uv[33], uv[34])  # MediaPipe's landmarks-to-ROI: aux points 33, 34
        return BodyLandmarks(uv[:33], vis[:33], world[:33], presence, next_roi, roi=roi)

    def face_from_pose(self, rgb: np.ndarray, pose_uv: np.ndarray, pose_vis: np.ndarray) -> Optional[np.ndarray]:
        """468 face landmarks (image pixels) from a ROI around the pose's face points, or None. (The pose model
        rates face points visible on the back of a head too: the face model's flag decides.)"""
        if self.face is None or float(np.mean(pose_vis[[0, 2, 5, 9, 10]])) < 0.5:
            return None
        eye_l, eye_r = pose_uv[2], pose_uv[5]
        eyes, mouth = 0.5 * (eye_l + eye_r), 0.5 * (pose_uv[9] + pose_uv[10])
        side = max(
            4.5 * float(np.hypot(*(mouth - eyes))),
            3.5 * float(np.hypot(*(eye_l - eye_r))),
            1.5 * float(np.hypot(*(pose_uv[7] - pose_uv[8]))),
        )
        right = eye_l - eye_r  # the subject's left eye is on the image's right for a frontal face
        n = float(np.hypot(*right))
        up = np.array([right[1], -right[0]]) / n if n > 1e-6 else np.array([0.0, -1.0])
        roi = Roi(0.5 * (eyes + mouth), side, up)
        for attempt in range(2 if self.refine_face else 1):
            if roi.side_px < self.min_part_px:
                return None
            out, A = self.face.run(rgb, roi)
            flag = float(_sigmoid(np.ravel(out["conv2d_31"])[0]))
            if flag < 0.5:
                return None
            lm = _to_image(A, out["conv2d_21"].reshape(468, 3)[:, :2].astype(np.float64))
            if attempt == 0 and self.refine_face:
                # MediaPipe's face-landmarks-to-ROI: the landmarks' box x 1.5, turned by the eye corners.
                lo, hi = lm.min(axis=0), lm.max(axis=0)
                right = lm[263] - lm[33]
                n = float(np.hypot(*right))
                up = np.array([right[1], -right[0]]) / n if n > 1e-6 else roi.up_uv
                roi = Roi(0.5 * (lo + hi), 1.5 * float(max(hi - lo)), up)
        return lm

    def hand_from_pose(
        self, rgb: np.ndarray, wrist: np.ndarray, pinky: np.ndarray, index: np.ndarray, vis: float
    ) -> Optional[np.ndarray]:
        """21 hand landmarks (image pixels) from a ROI along the wrist -> knuckles axis, or None."""
        if self.hand is None or vis < 0.5:
            return None
        d = 0.5 * (pinky + index) - wrist
        n = float(np.hypot(*d))
        if n < 1e-3:
            return None
        # The pose's pinky / index points are knuckles: the fingers reach about as far again beyond them.
        roi = Roi(wrist + d, 3.2 * n, d / n)
        if roi.side_px < self.min_part_px:
            return None
        out, A = self.hand.run(rgb, roi)
        if float(np.ravel(out["Identity_1"])[0]) < 0.5:
            return None
        return _to_image(A, out["Identity"].reshape(21, 3)[:, :2].astype(np.float64))

    def landmarks(self, rgb: np.ndarray, roi: Roi, refine: bool = True) -> Optional[BodyLandmarks]:
        """refine: look again in the ROI the landmarks themselves give when it differs from the one given (a
        detection's ROI can be off in scale or centre; MediaPipe converges the same way over video frames). A
        region that does not hold a person stays None or drifts onto the real one (then found twice and merged
        by the pipeline)."""
        body = self.body(rgb, roi)
        if body is None:
            return None
        if refine and body.next_roi is not None and _roi_change(roi, body.next_roi) > 0.15:
            again = self.body(rgb, body.next_roi)
            if again is None:
                return None
            body = again
        face = self.face_from_pose(rgb, body.pose_uv, body.pose_vis)
        lh = self.hand_from_pose(rgb, body.pose_uv[15], body.pose_uv[17], body.pose_uv[19], body.pose_vis[15])
        rh = self.hand_from_pose(rgb, body.pose_uv[16], body.pose_uv[18], body.pose_uv[20], body.pose_vis[16])
        return BodyLandmarks(
            body.pose_uv, body.pose_vis, body.world_m, body.presence, body.next_roi, face, lh, rh, body.roi
        )


def landmarks_to_estimate(lm: BodyLandmarks, width: int, height: int) -> KeypointEstimate:
    """BodyLandmarks -> COCO-WholeBody 133 KeypointEstimate (the Holistic mapping of backends.py)."""
    pose = np.concatenate([lm.pose_uv, np.zeros((33, 1)), lm.pose_vis[:, None]], axis=1)

    def as3(uv):
        return None if uv is None else np.concatenate([uv, np.zeros((len(uv), 1))], axis=1)

    uv, conf, world = holistic_to_wholebody(
        pose, lm.world_m, as3(lm.face_uv), as3(lm.left_hand_uv), as3(lm.right_hand_uv), (0.0, 0.0, 1.0, 1.0)
    )
    score = float(np.mean(conf[BODY]))
    return KeypointEstimate(uv, conf, world, score, keypoint_extent(uv, conf, width, height))


def _head_within(est: KeypointEstimate, head_xyxy: np.ndarray, grow: float = 1.0) -> bool:
    """Whether the centre of the estimate's head points (nose, eyes, ears) lies in the head box grown by `grow`
    of its size on each side."""
    c = est.keypoints_uv[:5].mean(axis=0)
    b = np.asarray(head_xyxy, np.float64)
    w, h = b[2] - b[0], b[3] - b[1]
    return bool(
        np.all(np.isfinite(c))
        and b[0] - grow * w <= c[0] <= b[2] + grow * w
        and b[1] - grow * h <= c[1] <= b[3] + grow * h
    )


class RoiWholeBodyBackend:
    """KeypointBackend on MediaPipe's landmark models with ROIs chosen here (module docstring).

    estimate(rgb, box): the person detector on the box, its best detection's ROI (or, with a proposal's head
    box, the detection of that head) -> landmarks. With a lane, the ROI from the lane's last landmarks is tried
    first (video: no detector while the person stays found). estimate_roi: landmarks in a known ROI.
    """

    def __init__(
        self, threads: int = 1, min_presence: float = 0.5, detector_min_score: float = 0.3, crop_padding: float = 0.25
    ) -> None:
        self.landmarker = WholeBodyLandmarker(threads, min_presence)
        self.detector = SsdDetector(POSE_DETECTOR, threads, detector_min_score)
        self.crop_padding = crop_padding
        self._lanes: dict[int, tuple[Roi, Roi]] = {}  # lane -> (ROI the last landmarks came from, next ROI)
        self._recent: dict[int, tuple[Roi, Roi]] = {}  # the same by id(estimate), for estimates made without a lane
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._lanes = {}
            self._recent = {}

    def adopt(self, est: KeypointEstimate, lane: int) -> None:
        """A lane starts following the person of an estimate made without one (from a proposal)."""
        with self._lock:
            roi = self._recent.pop(id(est), None)
            if roi is not None:
                self._lanes[lane] = roi

    def release_lane(self, lane: int) -> None:
        with self._lock:
            self._lanes.pop(lane, None)

    def estimate_roi(
        self, rgb: np.ndarray, roi: Roi, lane: Optional[int] = None, refine: bool = True
    ) -> Optional[KeypointEstimate]:
        """Landmarks in a ROI (refine: see WholeBodyLandmarker.landmarks); with a lane, it follows them."""
        rgb = check_rgb(rgb)
        lm = self.landmarker.landmarks(rgb, roi, refine)
        if lm is None:
            return None
        est = landmarks_to_estimate(lm, rgb.shape[1], rgb.shape[0])
        if lm.next_roi is not None:
            with self._lock:
                if lane is not None:
                    self._lanes[lane] = (lm.roi, lm.next_roi)
                else:
                    if len(self._recent) > 256:  # estimates never adopted (rejected ones)
                        self._recent.clear()
                    self._recent[id(est)] = (lm.roi, lm.next_roi)
        return est

    def find_roi(
        self, rgb: np.ndarray, bbox_xyxy: Optional[np.ndarray], head_xyxy: Optional[np.ndarray] = None
    ) -> Optional[Roi]:
        """The person detector inside the (padded) box; with head_xyxy, the best detection whose head box centre
        lies in head_xyxy grown by its size on each side (the detector's head box and the landmarks' head points
        differ by up to a head), else the best one."""
        H, W = rgb.shape[:2]
        if head_xyxy is not None:
            # Look around the head at a scale where it is a fifth of the window (the detector finds profile heads
            # only when they are large in its 224 px input), whatever the box: a person's box can be much larger.
            hb = np.asarray(head_xyxy, np.float64)
            c, s = 0.5 * (hb[:2] + hb[2:]), 5.0 * max(hb[2] - hb[0], hb[3] - hb[1])
            bbox_xyxy = np.array([c[0] - s / 2, c[1] - s / 4, c[0] + s / 2, c[1] + 3 * s / 4], np.float32)
        box = clip_box(bbox_xyxy, W, H)
        if bbox_xyxy is not None and head_xyxy is None:
            w, h = box[2] - box[0], box[3] - box[1]
            p = self.crop_padding
            box = clip_box(box + np.array([-p * w, -p * h, p * w, p * h], np.float32), W, H)
        dets = self.detector.detect(rgb, box)
        if head_xyxy is not None:
            b = np.asarray(head_xyxy, np.float64)
            grown = b + np.array([-1, -1, 1, 1]) * np.array([b[2] - b[0], b[3] - b[1]] * 2)
            centres = [0.5 * (d.box_xyxy[:2] + d.box_xyxy[2:]) for d in dets]
            dets = [d for d, c in zip(dets, centres) if grown[0] <= c[0] <= grown[2] and grown[1] <= c[1] <= grown[3]]
        if not dets:
            return None
        return roi_from_detection(max(dets, key=lambda d: d.score))

    def estimate(
        self,
        rgb: np.ndarray,
        bbox_xyxy: Optional[np.ndarray] = None,
        lane: Optional[int] = None,
        head_xyxy: Optional[np.ndarray] = None,
    ) -> Optional[KeypointEstimate]:
        rgb = check_rgb(rgb)
        if lane is not None:
            with self._lock:
                rois = self._lanes.get(lane)
            # The ROI the last landmarks give (MediaPipe's tracking), else the one they came from (a person who
            # stands still): a lane's region can slide onto a neighbour whose head is in it, so the person
            # followed must keep their head near where it was, else they are looked for again by their head.
            for roi in (rois[1], rois[0]) if rois is not None else ():
                est = self.estimate_roi(rgb, roi, lane, refine=False)
                if est is not None and (head_xyxy is None or _head_within(est, head_xyxy)):
                    return est
            self.release_lane(lane)
        roi = self.find_roi(rgb, bbox_xyxy, head_xyxy)
        if roi is None:
            return None
        return self.estimate_roi(rgb, roi, lane)
