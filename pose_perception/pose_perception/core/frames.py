"""Rigid transforms as 4x4 matrices and their conversions to the translation + quaternion of ROS poses.

Quaternions are ROS order (x, y, z, w); transforms3d uses (w, x, y, z) internally.
"""

from __future__ import annotations

import numpy as np
import transforms3d.quaternions as tq


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
