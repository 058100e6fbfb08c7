"""Result types shared by the algorithms, the CLI and the ROS shell: small frozen dataclasses of numpy arrays.

Every array names its frame and unit; keypoints use the layout named in core.keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Optional

import numpy as np


class Source(IntEnum):
    """Which sensor a human estimate came from (values match pose_perception_msgs/Human SOURCE_*)."""

    RGB = 0
    RGBD = 1
    RADAR = 2


@dataclass(frozen=True)
class BodyMesh:
    """vertices: (V, 3) float32 metres in the sensor frame; faces: (F, 3) int32 vertex indices."""

    vertices: np.ndarray
    faces: np.ndarray


@dataclass(frozen=True)
class HumanPose:
    """One person in one frame.

    keypoints_uv: (K, 2) float32 pixels (NaN where unknown; all NaN for radar).
    keypoints_3d: (K, 3) float32 metres in the sensor frame (NaN where unknown), or None if no 3D.
    confidence: (K,) float32 in [0, 1].
    bbox_xyxy: (4,) float32 pixels [x0, y0, x1, y1] (NaN for radar).
    T_sensor_body: (4, 4) float64 pelvis pose, REP-155 axes (x forward, z up), or None.
    """

    track_id: int
    score: float
    keypoints_uv: np.ndarray
    confidence: np.ndarray
    keypoints_3d: Optional[np.ndarray] = None
    bbox_xyxy: Optional[np.ndarray] = None
    source: Source = Source.RGB
    T_sensor_body: Optional[np.ndarray] = None
    T_sensor_head: Optional[np.ndarray] = None
    mesh: Optional[BodyMesh] = None


@dataclass(frozen=True)
class ObjectPose:
    """One object instance: T_cam_obj (4, 4) float64 maps object-model points (metres) into the camera frame.

    covariance: (6, 6) float64 over (x, y, z, rot_x, rot_y, rot_z) or None; bbox_size_m: (3,) model extents
    (axis-aligned in the object frame); bbox_center_m: (3,) their centre in the object frame (m), None where
    unknown (taken as the origin).
    """

    name: str
    instance: int
    T_cam_obj: np.ndarray
    score: float
    bbox_size_m: np.ndarray
    mesh_uri: str = ""
    covariance: Optional[np.ndarray] = None
    bbox_center_m: Optional[np.ndarray] = None
