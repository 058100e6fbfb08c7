"""Candidate object segments in a depth image: from given 2D masks/boxes, else support-plane removal + DBSCAN.

A segment is the set of camera-frame points (and their pixels) that may belong to one or more objects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_perception.core.camera import CameraIntrinsics, depth_to_points


class SegmentationError(ValueError):
    """Masks or boxes that do not fit the depth image."""


@dataclass(frozen=True)
class Segment:
    """points_m (M, 3) float32 camera frame; pixel_index (M,) int64 flat indices into (H, W);
    bbox_xyxy (4,) int [u0, v0, u1, v1) pixel bounds of the segment."""

    points_m: np.ndarray
    pixel_index: np.ndarray
    bbox_xyxy: np.ndarray


@dataclass(frozen=True)
class SegmentationConfig:
    """stride: depth subsampling in pixels; voxel_m: clustering resolution; plane_*: support-plane RANSAC;
    cluster_eps_m / min_points: DBSCAN; min/max_extent_m: clusters outside are dropped (noise / walls)."""

    stride: int = 2
    voxel_m: float = 0.008
    plane_distance_m: float = 0.012
    plane_min_fraction: float = 0.15
    plane_iterations: int = 150
    cluster_eps_m: float = 0.02
    cluster_min_points: int = 15
    min_extent_m: float = 0.02
    max_extent_m: float = 1.0
    max_depth_m: float = 3.0


def _bbox_of(pixel_index: np.ndarray, width: int) -> np.ndarray:
    v, u = np.divmod(pixel_index, width)
    return np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], dtype=np.int64)


def _segment_from(points: np.ndarray, pix: np.ndarray, width: int) -> Segment:
    return Segment(points.astype(np.float32), pix.astype(np.int64), _bbox_of(pix, width))


def remove_support_plane(points: np.ndarray, config: SegmentationConfig, seed: int = 0):
    """points (N, 3) -> (keep mask (N,) bool, plane (4,) | None). Removes the dominant plane and what lies behind it."""
    import open3d as o3d

    if len(points) < 50:
        return np.ones(len(points), bool), None
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    down = pcd.voxel_down_sample(config.voxel_m)
    if len(down.points) < 50:
        return np.ones(len(points), bool), None
    o3d.utility.random.seed(seed)
    plane, inliers = down.segment_plane(config.plane_distance_m, 3, config.plane_iterations)
    if len(inliers) < config.plane_min_fraction * len(down.points):
        return np.ones(len(points), bool), None
    plane = np.asarray(plane, dtype=np.float64)
    if plane[3] < 0:  # orient the normal towards the camera (origin on the positive side)
        plane = -plane
    dist = points @ plane[:3] + plane[3]
    return dist > config.plane_distance_m, plane


@dataclass(frozen=True)
class Segmentation:
    """segments: candidate segments; plane (4,) float64 [nx, ny, nz, d] support plane in the camera frame
    (n . p + d = 0, n towards the camera) or None when no dominant plane was found."""

    segments: list
    plane: np.ndarray | None


def segment_depth(
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    masks=None,
    config: SegmentationConfig = SegmentationConfig(),
) -> Segmentation:
    """Candidate segments of a depth image (H, W) float32 metres, NaN/0 invalid.

    masks: None, or a list of (H, W) bool masks and/or (4,) boxes [u0, v0, u1, v1] in pixels. A mask gives its
    points directly; a box keeps its largest cluster after plane removal. Without masks: plane removal + DBSCAN.
    """
    H, W = depth_m.shape
    depth = np.where(np.isfinite(depth_m) & (depth_m > 0) & (depth_m < config.max_depth_m), depth_m, np.nan)
    points, pix = depth_to_points(depth, intrinsics.K, stride=config.stride)
    if len(points) == 0:
        return Segmentation([], None)
    keep, plane = remove_support_plane(points, config)

    if masks is not None:
        segments = []
        for i, m in enumerate(masks):
            m = np.asarray(m)
            if m.shape == (H, W):
                sel = m.astype(bool).ravel()[pix]
                if sel.sum() >= config.cluster_min_points:
                    segments.append(_segment_from(points[sel], pix[sel], W))
                continue
            if m.shape != (4,) or not np.all(np.isfinite(m)):
                raise SegmentationError(
                    f"mask {i}: expected an ({H}, {W}) bool mask or a (4,) box [u0, v0, u1, v1], got shape {m.shape}"
                )
            v, u = np.divmod(pix, W)
            sel = keep & (u >= m[0]) & (u < m[2]) & (v >= m[1]) & (v < m[3])
            if sel.sum() < config.cluster_min_points:
                continue
            sub = _clusters(points[sel], config)
            if sub:
                biggest = max(sub, key=len)
                idx = np.flatnonzero(sel)[biggest]
                segments.append(_segment_from(points[idx], pix[idx], W))
        return Segmentation(segments, plane)

    idx_fg = np.flatnonzero(keep)
    if len(idx_fg) < config.cluster_min_points:
        return Segmentation([], plane)
    segments = []
    for members in _clusters(points[idx_fg], config):
        idx = idx_fg[members]
        ext = points[idx].max(axis=0) - points[idx].min(axis=0)
        if ext.max() < config.min_extent_m or ext.max() > config.max_extent_m:
            continue
        segments.append(_segment_from(points[idx], pix[idx], W))
    return Segmentation(segments, plane)


def _clusters(points: np.ndarray, config: SegmentationConfig) -> list[np.ndarray]:
    """DBSCAN on a voxel grid of points (N, 3); returns, per cluster, indices into points."""
    import open3d as o3d

    # Cluster voxel centres (fast), then give every point its voxel's label.
    keys = np.floor(points / config.voxel_m).astype(np.int64)
    # One integer per voxel (row-major over the keys' bounding grid, so its order is the rows' lexicographic order):
    # np.unique over rows (axis=0) is several times slower than over integers.
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    linear = (keys[:, 0] * dims[1] + keys[:, 1]) * dims[2] + keys[:, 2]
    _, inverse = np.unique(linear, return_inverse=True)
    inverse = inverse.ravel()
    n_voxels = int(inverse.max()) + 1
    centres = np.stack([np.bincount(inverse, weights=points[:, k], minlength=n_voxels) for k in range(3)], axis=1)
    centres /= np.bincount(inverse, minlength=n_voxels)[:, None]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres))
    min_pts = max(3, config.cluster_min_points // 4)
    labels = np.asarray(pcd.cluster_dbscan(config.cluster_eps_m, min_pts, print_progress=False))
    point_labels = labels[inverse]
    out = []
    for lab in range(labels.max() + 1 if len(labels) else 0):
        members = np.flatnonzero(point_labels == lab)
        if len(members) >= config.cluster_min_points:
            out.append(members)
    return out
