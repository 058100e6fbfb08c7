"""Rigid transforms as 4x4 matrices and their conversions to the translation + quaternion of ROS poses.

Quaternions are ROS order (x, y, z, w); transforms3d uses (w, x, y, z) internally.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import transforms3d.quaternions as tq

from pose_perception.core.keypoints import pelvis


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """R: (3, 3), t: (3,) -> (4, 4) float64 homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_T(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (4, 4), or of each in a stack (B, 4, 4); float64, same shape."""
    T = np.asarray(T, dtype=np.float64)
    R_t = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = R_t
    out[..., :3, 3] = -(R_t @ T[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """T: (4, 4), points: (N, 3) -> (N, 3) in the target frame."""
    return points @ T[:3, :3].T + T[:3, 3]


def T_to_xyz_quat(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) -> translation (3,) and unit quaternion (4,) in ROS (x, y, z, w) order."""
    w, x, y, z = tq.mat2quat(np.asarray(T, dtype=np.float64)[:3, :3])
    q = np.array([x, y, z, w])
    return np.asarray(T[:3, 3], dtype=np.float64).copy(), q / np.linalg.norm(q)


def xyz_quat_to_T(xyz: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    x, y, z, w = quat_xyzw
    return make_T(tq.quat2mat([w, x, y, z]), xyz)


def rotation_from_axes(x_axis: np.ndarray, z_hint: np.ndarray) -> np.ndarray:
    """Right-handed rotation whose x axis is x_axis and whose z axis is as close as possible to z_hint."""
    x = x_axis / np.linalg.norm(x_axis)
    z = z_hint - np.dot(z_hint, x) * x
    z /= np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z], axis=1)


def body_frame(keypoints_3d: np.ndarray) -> Optional[np.ndarray]:
    """T_sensor_body (4, 4): origin at the pelvis (mid-hips), REP-155 axes: x forward out of the chest, y to the
    person's left, z up along the spine. keypoints_3d (>=17, 3) COCO order, metres in any sensor frame.
    None when the hips or both shoulders are unknown, or the skeleton is degenerate."""
    p = np.asarray(keypoints_3d, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 17 or p.shape[1] != 3:
        raise ValueError(f"body_frame needs (>=17, 3) keypoints, got shape {p.shape}")
    ok = np.all(np.isfinite(p[:17]), axis=1)
    if not (ok[11] and ok[12]) or not (ok[5] or ok[6]):
        return None
    origin = pelvis(p)
    shoulders = [i for i in (5, 6) if ok[i]]
    chest = p[shoulders].mean(axis=0)
    up = chest - origin
    left = p[11] - p[12]
    if ok[5] and ok[6]:
        left = left + (p[5] - p[6])
    if np.linalg.norm(up) < 1e-3 or np.linalg.norm(left) < 1e-3:
        return None
    forward = np.cross(left, up)
    if np.linalg.norm(forward) < 1e-6:
        return None
    return make_T(rotation_from_axes(forward, up), origin)


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation (3, 3) taking direction u (3,) onto direction v (3,); a half turn about an axis normal to u
    when they are opposite."""
    u = np.asarray(u, dtype=np.float64) / np.linalg.norm(u)
    v = np.asarray(v, dtype=np.float64) / np.linalg.norm(v)
    axis = np.cross(u, v)
    s, c = float(np.linalg.norm(axis)), float(np.clip(u @ v, -1.0, 1.0))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    angle = math.atan2(s, c)
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)
