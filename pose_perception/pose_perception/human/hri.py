"""ROS4HRI (REP-155) views of tracked people, without ROS: the 18-point OpenPose-COCO 2D skeleton and the region of
interest in normalised image coordinates (hri_msgs Skeleton2D / NormalizedRegionOfInterest2D), and the REP-155 TF
frames: joint frames with the human kinematic model's link names parented to body_<id>, face_<id> (head pose:
origin between the eyes, x out of the face, z up) and gaze_<id> (same origin, optical axes: z along the gaze, x
right, y down; without a gaze estimate its z is the face's x, as REP-155 says). ros/hri.py publishes them."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pose_perception.core.frames import invert_T, make_T
from pose_perception.core.keypoints import KeypointLayout
from pose_perception.core.types import HumanPose

# hri_msgs/Skeleton2D order (OpenPose COCO-18): COCO-WholeBody names; NECK is the shoulders' midpoint.
SKELETON18 = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
)
# REP-155 kinematic model links -> the keypoints whose 3D mean places them (torso: between the shoulders).
REP155_JOINTS = {
    "torso": ("left_shoulder", "right_shoulder"),
    "l_shoulder": ("left_shoulder",),
    "l_elbow": ("left_elbow",),
    "l_wrist": ("left_wrist",),
    "r_shoulder": ("right_shoulder",),
    "r_elbow": ("right_elbow",),
    "r_wrist": ("right_wrist",),
    "l_hip": ("left_hip",),
    "l_knee": ("left_knee",),
    "l_ankle": ("left_ankle",),
    "r_hip": ("right_hip",),
    "r_knee": ("right_knee",),
    "r_ankle": ("right_ankle",),
}
# gaze_<id> in face_<id>: columns are the gaze frame's x (right = -y_face), y (down = -z_face), z (= x_face).
R_FACE_GAZE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _mean_point(values: np.ndarray, conf: np.ndarray, idx: list[int], min_conf: float) -> Optional[np.ndarray]:
    if any(conf[i] < min_conf or not np.all(np.isfinite(values[i])) for i in idx):
        return None
    return np.mean([values[i] for i in idx], axis=0)


def skeleton18_normalized(
    h: HumanPose, layout: KeypointLayout, width: int, height: int, min_conf: float = 0.0
) -> np.ndarray:
    """(18, 3) float32 (x, y, c) in Skeleton2D order: x = u / width, y = v / height in [0, 1], c the confidence;
    (0, 0, 0) for a point that is unknown, below min_conf or outside the image."""
    out = np.zeros((18, 3), np.float32)
    uv, conf = np.asarray(h.keypoints_uv, np.float64), np.asarray(h.confidence, np.float64)
    for k, name in enumerate(SKELETON18):
        idx = (
            [layout.index("left_shoulder"), layout.index("right_shoulder")] if name == "neck" else [layout.index(name)]
        )
        p = _mean_point(uv, conf, idx, min_conf)
        if p is None:
            continue
        x, y = p[0] / width, p[1] / height
        if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
            out[k] = (x, y, min(conf[i] for i in idx))
    return out


def roi_normalized(bbox_xyxy: np.ndarray, width: int, height: int) -> Optional[tuple[float, float, float, float]]:
    """(xmin, ymin, xmax, ymax) of a pixel box, normalised to [0, 1] and clipped to the image; None when unknown or
    empty."""
    if bbox_xyxy is None or not np.all(np.isfinite(bbox_xyxy)):
        return None
    x0, y0, x1, y1 = (float(v) for v in bbox_xyxy)
    box = (np.clip(x0 / width, 0, 1), np.clip(y0 / height, 0, 1), np.clip(x1 / width, 0, 1), np.clip(y1 / height, 0, 1))
    return tuple(float(v) for v in box) if box[2] > box[0] and box[3] > box[1] else None


def rep155_frames(
    h: HumanPose, layout: KeypointLayout, sensor_frame: str, body_id: str, min_conf: float = 0.5
) -> list[tuple[str, str, np.ndarray]]:
    """(parent, child, T_parent_child) of the REP-155 frames besides body_<id> itself: the joints (axes of the
    body frame) parented to body_<body_id>, face_<body_id> parented to sensor_frame, gaze_<body_id> to the face."""
    frames = []
    body = f"body_{body_id}"
    if h.T_sensor_body is not None and h.keypoints_3d is not None and np.all(np.isfinite(h.T_sensor_body)):
        T_body_sensor = invert_T(h.T_sensor_body)
        conf = np.asarray(h.confidence, np.float64)
        for link, names in REP155_JOINTS.items():
            p = _mean_point(np.asarray(h.keypoints_3d, np.float64), conf, [layout.index(n) for n in names], min_conf)
            if p is not None:
                frames.append(
                    (body, f"{link}_{body_id}", make_T(np.eye(3), T_body_sensor[:3, :3] @ p + T_body_sensor[:3, 3]))
                )
    if h.T_sensor_head is not None and np.all(np.isfinite(h.T_sensor_head)):
        face = f"face_{body_id}"
        frames.append((sensor_frame, face, np.asarray(h.T_sensor_head, np.float64)))
        frames.append((face, f"gaze_{body_id}", make_T(R_FACE_GAZE, np.zeros(3))))
    return frames


def face_roi_normalized(
    h: HumanPose, layout: KeypointLayout, width: int, height: int, min_conf: float = 0.3
) -> Optional[tuple[float, float, float, float]]:
    """The box around the confident face landmarks (COCO-WholeBody face_*), normalised; None without a face."""
    idx = [i for i, n in enumerate(layout.keypoint_names) if n.startswith("face_")]
    uv = np.asarray(h.keypoints_uv, np.float64)[idx]
    ok = (np.asarray(h.confidence)[idx] >= min_conf) & np.all(np.isfinite(uv), axis=1)
    if ok.sum() < 3:
        return None
    lo, hi = uv[ok].min(0), uv[ok].max(0)
    return roi_normalized(np.array([lo[0], lo[1], hi[0], hi[1]]), width, height)
