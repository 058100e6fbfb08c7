"""Pinhole camera model: intrinsics, projection and depth back-projection (OpenCV conventions).

Pixel (u, v) = (column, row); pixel centres at integer coordinates; camera frame x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class CameraModelError(ValueError):
    """Intrinsics that cannot describe a real camera (all-zero K, non-positive focal length, bad size)."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """K: (3, 3) float64; dist: (D,) float64 OpenCV plumb_bob/rational coefficients; size in pixels."""

    K: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(5))

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "dist", np.asarray(self.dist, dtype=np.float64).ravel())
        if not np.all(np.isfinite(K)) or not np.any(K):
            raise CameraModelError("camera matrix K is all zero or not finite: the camera is uncalibrated")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraModelError(f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @staticmethod
    def default_for_size(width: int, height: int) -> "CameraIntrinsics":
        """Pinhole with fx = fy = image width, centred: the assumption when no calibration is given."""
        K = np.array([[width, 0.0, (width - 1) / 2.0], [0.0, width, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
        return CameraIntrinsics(K=K, width=width, height=height)

    def scaled(self, sx: float, sy: float) -> "CameraIntrinsics":
        """Intrinsics of the same camera after resizing the image by (sx, sy)."""
        S = np.diag([sx, sy, 1.0])
        return CameraIntrinsics(S @ self.K, round(self.width * sx), round(self.height * sy), self.dist)


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """points_cam: (N, 3) metres in the camera frame -> (N, 2) pixels uv. Points with z <= 0 give NaN."""
    points_cam = np.asarray(points_cam, dtype=np.float64)
    z = points_cam[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (points_cam[:, :2] / z) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    uv[(z[:, 0] <= 0) | ~np.isfinite(z[:, 0])] = np.nan
    return uv


def backproject(uv: np.ndarray, depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """uv: (N, 2) pixels, depth_m: (N,) metres along z -> (N, 3) camera-frame points (NaN stays NaN)."""
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth_m, dtype=np.float64)
    x = (uv[:, 0] - K[0, 2]) / K[0, 0] * z
    y = (uv[:, 1] - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=1)


def depth_to_points(depth_m: np.ndarray, K: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Organised back-projection of a depth image.

    depth_m: (H, W) float metres, 0 or NaN where invalid.
    Returns points (M, 3) float32 camera frame and pixel_index (M,) int64 flat indices into (H, W).
    """
    H, W = depth_m.shape
    v, u = np.mgrid[0:H:stride, 0:W:stride]
    z = depth_m[::stride, ::stride]
    valid = np.isfinite(z) & (z > 0)
    u, v, z = u[valid], v[valid], z[valid]
    pts = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1).astype(np.float32)
    return pts, (v * W + u).astype(np.int64)
