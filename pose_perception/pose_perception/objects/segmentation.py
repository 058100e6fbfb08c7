"""Candidate object segments in a depth image: from given 2D masks/boxes, else support-plane removal + DBSCAN.

A segment is the set of camera-frame points (and their pixels) that may belong to one or more objects.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from pose_perception.core.camera import CameraIntrinsics, depth_to_points


class SegmentationError(ValueError):
    """Masks or boxes that do not fit the depth image."""


@dataclass(frozen=True)
class Segment:
    """points_m (M, 3) float32 camera frame; pixel_index (M,) int64 flat indices into (H, W);
    bbox_xyxy (4,) int [u0, v0, u1, v1) pixel bounds of the segment; source: index of the mask or box it came from
    (-1: found by the segmentation itself)."""

    points_m: np.ndarray
    pixel_index: np.ndarray
    bbox_xyxy: np.ndarray
    source: int = -1


@dataclass(frozen=True)
class SegmentationConfig:
    """stride: depth subsampling in pixels; voxel_m: clustering resolution; plane_*: support-plane RANSAC;
    cluster_eps_m / min_points: DBSCAN; min/max_extent_m: clusters outside are dropped (noise / walls);
    max_extra_planes: further support surfaces removed after the dominant one (a chair seat or a writing tablet in
    front of the floor), each parallel to it (|cos| > extra_plane_cos), holding at least extra_plane_min_fraction of
    the points in one connected region spanning at least extra_plane_min_span_m along both of its in-plane axes
    (larger than the faces of the objects that stand on it, which must not be removed as planes), and at least
    extra_plane_min_offset_m above or below the dominant one; flying_*: remove_flying_pixels (radius 0: off);
    thin_*: a box whose points went with the support plane all but thin_box_max_kept of them (a flat object lying on
    the table: scissors, a knife) keeps instead its points more than thin_min_height_m above the table, measured from
    a plane refitted to the box's own table points (thin_local_distance_m: that fit's RANSAC inlier distance), since
    the table's global fit is off by a few mm locally."""

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
    max_extra_planes: int = 3
    flying_radius_px: int = 2
    flying_min_gap_m: float = 0.015
    flying_gap_per_m: float = 0.01
    extra_plane_cos: float = 0.95
    extra_plane_min_fraction: float = 0.04
    extra_plane_min_span_m: float = 0.25
    extra_plane_min_offset_m: float = 0.04
    thin_box_max_kept: float = 0.1
    thin_min_height_m: float = 0.004
    thin_local_distance_m: float = 0.002


def _bbox_of(pixel_index: np.ndarray, width: int) -> np.ndarray:
    v, u = np.divmod(pixel_index, width)
    return np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], dtype=np.int64)


def _segment_from(points: np.ndarray, pix: np.ndarray, width: int, source: int = -1) -> Segment:
    return Segment(points.astype(np.float32), pix.astype(np.int64), _bbox_of(pix, width), source)


_PLANE_FIT_LOCK = threading.Lock()


def _fit_plane(points: np.ndarray, config: SegmentationConfig, seed: int):
    """RANSAC plane (4,) oriented towards the camera and its inlier mask over points (N, 3) (voxel-downsampled
    fit, inliers re-counted on all points), or (None, None) with too few points."""
    import open3d as o3d

    if len(points) < 50:
        return None, None
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    down = pcd.voxel_down_sample(config.voxel_m)
    if len(down.points) < 50:
        return None, None
    # open3d draws the RANSAC samples from one generator on several threads in whatever order they run, so the plane
    # (and the segments, and borderline finds) changed from run to run; on one thread the seed fixes them. Same
    # algorithm, so the same planes as before in distribution; ~10 ms more per fit on a 640x480 frame.
    # The thread count and the generator are open3d globals: one fit at a time, so that two estimations on two
    # threads neither interleave their draws nor leave open3d on one thread (each restoring the other's setting).
    with _PLANE_FIT_LOCK:
        threads = o3d.utility.get_max_threads()
        o3d.utility.set_max_threads(1)
        try:
            o3d.utility.random.seed(seed)
            plane, inliers = down.segment_plane(config.plane_distance_m, 3, config.plane_iterations)
        finally:
            o3d.utility.set_max_threads(threads)
    plane = np.asarray(plane, dtype=np.float64)
    if plane[3] < 0:  # orient the normal towards the camera (origin on the positive side)
        plane = -plane
    return plane, len(inliers) / len(down.points)


def _local_plane(points: np.ndarray, plane: np.ndarray, distance_m: float, iterations: int = 100, seed: int = 0):
    """Plane (4,) refitted by a seeded, single-threaded RANSAC (deterministic) to points (N, 3) that lie near the
    support plane (4,), oriented like it; the support plane itself when fewer than 30 points are given."""
    if len(points) < 30:
        return plane
    rng = np.random.default_rng(seed)
    best, best_count = plane, int((np.abs(points @ plane[:3] + plane[3]) < distance_m).sum())
    for tri in rng.integers(0, len(points), size=(iterations, 3)):
        a, b, c = points[tri].astype(np.float64)
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n /= norm
        if n @ plane[:3] < 0:
            n = -n
        if n @ plane[:3] < 0.95:  # a slice of an object's side, not the table
            continue
        cand = np.append(n, -n @ a)
        count = int((np.abs(points @ cand[:3] + cand[3]) < distance_m).sum())
        if count > best_count:
            best, best_count = cand, count
    return best


def _thin_box_points(points: np.ndarray, sel_box: np.ndarray, plane: np.ndarray, config: SegmentationConfig):
    """Mask (N,) of the points in a box (sel_box (N,) bool) more than config.thin_min_height_m above the table
    around them (a local refit of plane (4,)), and below the global plane tolerance (what lies higher is kept
    anyway)."""
    box_pts = points[sel_box]
    near = np.abs(box_pts @ plane[:3] + plane[3]) < _plane_tolerance(box_pts, config)
    local = _local_plane(box_pts[near], plane, config.thin_local_distance_m)
    out = np.zeros(len(points), dtype=bool)
    out[np.flatnonzero(sel_box)] = box_pts @ local[:3] + local[3] > config.thin_min_height_m
    return out


def _in_plane_span(points: np.ndarray) -> float:
    """Smaller of the two in-plane extents (m) of points (N, 3) lying on a plane (robust: 2-98 percentiles)."""
    c = points - points.mean(axis=0)
    _, _, Vt = np.linalg.svd(c[:: max(1, len(c) // 2000)], full_matrices=False)
    proj = c @ Vt[:2].T
    lo, hi = np.percentile(proj, [2, 98], axis=0)
    return float(np.min(hi - lo))


def _plane_tolerance(points: np.ndarray, config: SegmentationConfig) -> np.ndarray:
    """Distance (N,) from a plane within which points (N, 3) count as on it: plane_distance_m up to 1 m, then
    growing with the square of the depth, as depth noise does (a floor 1.7 m away is 3x noisier)."""
    return config.plane_distance_m * np.maximum(1.0, points[:, 2].astype(np.float64) ** 2)


def remove_support_plane(points: np.ndarray, config: SegmentationConfig, seed: int = 0):
    """points (N, 3) -> (keep mask (N,) bool, plane (4,) | None). Removes the dominant plane and what lies behind it
    (within _plane_tolerance),
    then up to config.max_extra_planes further support surfaces parallel to it (only their own points: what lies
    below a chair seat is still seen)."""
    plane, fraction = _fit_plane(points, config, seed)
    if plane is None or fraction < config.plane_min_fraction:
        return np.ones(len(points), bool), None
    keep = points @ plane[:3] + plane[3] > _plane_tolerance(points, config)
    for k in range(config.max_extra_planes):
        rest = np.flatnonzero(keep)
        extra, _ = _fit_plane(points[rest], config, seed + 1 + k)
        if extra is None or abs(float(extra[:3] @ plane[:3])) < config.extra_plane_cos:
            break
        if abs(extra[3] - plane[3]) < config.extra_plane_min_offset_m:
            continue  # the noisy top of the dominant surface, not another one
        on = np.flatnonzero(np.abs(points[rest] @ extra[:3] + extra[3]) < _plane_tolerance(points[rest], config))
        # The inliers of a plane fitted through a cluttered scene include slices of every object at that height: a
        # support surface is one large connected region of them.
        parts = cluster_points(points[rest[on]], config) if len(on) >= config.cluster_min_points else []
        region = rest[on[max(parts, key=len)]] if parts else np.zeros(0, np.int64)
        if (
            len(region) < config.extra_plane_min_fraction * len(points)
            or _in_plane_span(points[region]) < config.extra_plane_min_span_m
        ):
            continue
        keep[region] = False
    return keep, plane


def remove_flying_pixels(
    depth_m: np.ndarray,
    radius_px: int = 2,
    min_gap_m: float = 0.015,
    gap_per_m: float = 0.01,
    max_same_fraction: float = 1.0,
) -> np.ndarray:
    """Copy of depth_m (H, W) float32 metres (NaN invalid) with "flying pixels" set to NaN: pixels whose depth lies
    between a nearer and a farther surface within radius_px, more than gap = min_gap_m + gap_per_m * depth from
    both, and which have few neighbours on their own surface (at most max_same_fraction of the valid pixels in the
    window within gap of their depth; the default 1.0 drops every in-between pixel).

    Real depth sensors (stereo and time of flight alike) return such in-between depths along the silhouettes of
    objects in front of a distant background; they form thin streaks floating in free space, which a thin model (a
    marker, a clamp's handle) fits well. A real surface that meets two others (an object between an occluder and
    the table) loses a few pixels at the junction, where its depth is unreliable anyway; with max_same_fraction
    < 1 such pixels, which keep their own surface's neighbours, stay (on the REAL dev frames that let 2-3 x more
    streak pixels through and cost a false report: docs/objects-real.md)."""
    from scipy import ndimage

    size = 2 * radius_px + 1
    valid = np.isfinite(depth_m)
    lo = ndimage.minimum_filter(np.where(valid, depth_m, np.inf), size=size)
    hi = ndimage.maximum_filter(np.where(valid, depth_m, -np.inf), size=size)
    gap = min_gap_m + gap_per_m * np.where(valid, depth_m, 0.0)
    with np.errstate(invalid="ignore"):
        between = valid & (depth_m - lo > gap) & (hi - depth_m > gap)
    out = depth_m.astype(np.float32, copy=True)
    vs, us = np.nonzero(between)
    if max_same_fraction >= 1.0 or not len(vs):
        out[vs, us] = np.nan
        return out
    H, W = depth_m.shape
    d0, g0 = depth_m[vs, us], gap[vs, us]
    same = np.zeros(len(vs))
    n_valid = np.zeros(len(vs))
    for dv in range(-radius_px, radius_px + 1):
        for du in range(-radius_px, radius_px + 1):
            if dv == 0 and du == 0:
                continue
            v2, u2 = vs + dv, us + du
            ok = (v2 >= 0) & (v2 < H) & (u2 >= 0) & (u2 < W)
            dn = np.full(len(vs), np.nan)
            dn[ok] = depth_m[v2[ok], u2[ok]]
            fin = np.isfinite(dn)
            n_valid += fin
            with np.errstate(invalid="ignore"):
                same += fin & (np.abs(dn - d0) < g0)
    flying = same <= max_same_fraction * np.maximum(n_valid, 1)
    out[vs[flying], us[flying]] = np.nan
    return out


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

    masks: None, or a list of (H, W) bool masks and/or (4,) boxes [u0, v0, u1, v1] in pixels (or objects with a
    box_xyxy, such as objects/detections.Detection2D). A mask gives its points directly; a box keeps its largest
    cluster after plane removal. Without masks: plane removal + DBSCAN.
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
            m = np.asarray(getattr(m, "box_xyxy", m))
            if m.shape == (H, W):
                sel = m.astype(bool).ravel()[pix]
                if sel.sum() >= config.cluster_min_points:
                    segments.append(_segment_from(points[sel], pix[sel], W, i))
                continue
            if m.shape == (4,) and not np.all(np.isfinite(m)):
                raise SegmentationError(f"box {i}: {m.tolist()} is not 4 finite pixel coordinates [u0, v0, u1, v1]")
            if m.shape != (4,):
                raise SegmentationError(
                    f"mask {i}: expected an ({H}, {W}) bool mask or a (4,) box [u0, v0, u1, v1], got shape {m.shape}"
                )
            v, u = np.divmod(pix, W)
            in_box = (u >= m[0]) & (u < m[2]) & (v >= m[1]) & (v < m[3])
            sel = keep & in_box
            if plane is not None and sel.sum() < config.thin_box_max_kept * in_box.sum():
                sel = sel | _thin_box_points(points, in_box, plane, config)
            if sel.sum() < config.cluster_min_points:
                continue
            sub = cluster_points(points[sel], config)
            if sub:
                biggest = max(sub, key=len)
                idx = np.flatnonzero(sel)[biggest]
                segments.append(_segment_from(points[idx], pix[idx], W, i))
        return Segmentation(segments, plane)

    idx_fg = np.flatnonzero(keep)
    if len(idx_fg) < config.cluster_min_points:
        return Segmentation([], plane)
    segments = []
    for members in cluster_points(points[idx_fg], config):
        idx = idx_fg[members]
        ext = points[idx].max(axis=0) - points[idx].min(axis=0)
        if ext.max() < config.min_extent_m or ext.max() > config.max_extent_m:
            continue
        segments.append(_segment_from(points[idx], pix[idx], W))
    return Segmentation(segments, plane)


def cluster_points(points: np.ndarray, config: SegmentationConfig) -> list[np.ndarray]:
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
