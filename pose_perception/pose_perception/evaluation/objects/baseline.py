"""The plain recipe of Open3D's global registration tutorial (voxel downsample, FPFH, feature-matching RANSAC,
point-to-plane ICP), kept at the tutorial's settings as the peer that `eval objects` compares against.

Only the voxel size is adapted: the tutorial's 5 cm suits room scans, so here it is a fraction of the model diameter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


class BaselineInputError(ValueError):
    """Point sets the baseline cannot register (empty, NaN only, too few points for FPFH)."""


@dataclass(frozen=True)
class BaselineConfig:
    """voxel_size_m: None -> voxel_fraction_of_diameter * model diameter. The rest follows the tutorial
    (radius_normal = 2 v, radius_feature = 5 v, RANSAC distance 1.5 v, mutual filter, ransac_n 3, edge-length
    checker 0.9, max 100000 iterations at confidence 0.999, ICP distance 0.4 v point-to-plane)."""

    voxel_size_m: float | None = None
    voxel_fraction_of_diameter: float = 0.05
    mutual_filter: bool = True
    ransac_max_iterations: int = 100000
    ransac_confidence: float = 0.999
    seed: int = 0


@dataclass(frozen=True)
class BaselineResult:
    """T_cam_obj (4, 4) float64; fitness / inlier_rmse_m from the final ICP; time_s wall time of the recipe."""

    T_cam_obj: np.ndarray
    fitness: float
    inlier_rmse_m: float
    time_s: float


def _cloud(points: np.ndarray):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64))
    return pcd


def _preprocess(pcd, voxel_size: float):
    """The tutorial's preprocess_point_cloud."""
    import open3d as o3d

    down = pcd.voxel_down_sample(voxel_size)
    down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=voxel_size * 2, max_nn=30))
    fpfh = o3d.pipelines.registration.compute_fpfh_feature(
        down, o3d.geometry.KDTreeSearchParamHybrid(radius=voxel_size * 5, max_nn=100)
    )
    return down, fpfh


def _clean(points: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) < 10:
        raise BaselineInputError(f"{what} has {len(points)} finite points; the baseline needs at least 10")
    return points


def register_tutorial(
    model_points_m: np.ndarray,
    scene_points_m: np.ndarray,
    diameter_m: float,
    config: BaselineConfig = BaselineConfig(),
) -> BaselineResult:
    """Register model (source, (N, 3) metres, model frame) to scene (target, (M, 3) metres, camera frame).

    Returns the tutorial's refined transformation as T_cam_obj. config.seed seeds Open3D's generator, but its RANSAC
    runs in parallel threads, so repeated runs can differ where the hypotheses are close in score.
    """
    import open3d as o3d

    source_pts = _clean(model_points_m, "the model")
    target_pts = _clean(scene_points_m, "the scene segment")
    voxel = config.voxel_size_m or config.voxel_fraction_of_diameter * diameter_m
    if not voxel > 0:
        raise BaselineInputError(f"voxel size must be positive, got {voxel} (diameter {diameter_m})")
    o3d.utility.random.seed(config.seed)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        return _register(source_pts, target_pts, voxel, config)


def _register(source_pts: np.ndarray, target_pts: np.ndarray, voxel: float, config: BaselineConfig) -> BaselineResult:
    import open3d as o3d

    reg = o3d.pipelines.registration
    start = time.perf_counter()
    source, target = _cloud(source_pts), _cloud(target_pts)
    source_down, source_fpfh = _preprocess(source, voxel)
    target_down, target_fpfh = _preprocess(target, voxel)
    if len(target_down.points) < 3 or len(source_down.points) < 3:
        raise BaselineInputError(f"fewer than 3 points left after {voxel * 1000:.1f} mm voxel downsampling")
    distance = voxel * 1.5
    ransac = reg.registration_ransac_based_on_feature_matching(
        source_down,
        target_down,
        source_fpfh,
        target_fpfh,
        config.mutual_filter,
        distance,
        reg.TransformationEstimationPointToPoint(False),
        3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(distance)],
        reg.RANSACConvergenceCriteria(config.ransac_max_iterations, config.ransac_confidence),
    )
    # the tutorial's refine_registration: point-to-plane ICP on the full clouds with normals
    radius_normal = voxel * 2
    source.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius_normal, max_nn=30))
    target.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius_normal, max_nn=30))
    icp = reg.registration_icp(
        source, target, voxel * 0.4, ransac.transformation, reg.TransformationEstimationPointToPlane()
    )
    elapsed = time.perf_counter() - start
    return BaselineResult(
        np.asarray(icp.transformation, dtype=np.float64).copy(), float(icp.fitness), float(icp.inlier_rmse), elapsed
    )
