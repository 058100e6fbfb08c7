"""6D pose error metrics: ADD, ADD-S, and BOP 19's symmetry-aware MSSD / MSPD with their average recalls.

All poses are T_cam_obj (4, 4) mapping model points (metres) into the camera frame; errors are metres or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from pose_perception.core.camera import project
from pose_perception.core.frames import transform_points

# BOP 19 thresholds: MSSD at 5 %..50 % of the object diameter, MSPD at 5..50 px for a 640 px wide image.
MSSD_THRESHOLD_FRACTIONS = np.arange(1, 11) * 0.05
MSPD_THRESHOLDS_PX_AT_640 = np.arange(1, 11) * 5.0
ADD_THRESHOLD_FRACTION = 0.1
# BOP toolkit's discretisation of continuous symmetries: a step of 1 % of the diameter on the rim.
MAX_SYMMETRY_STEP_FRACTION = 0.01


class SymmetrySpecError(ValueError):
    """A symmetry declaration that is not 'none', 'continuous:<axis>' or 'discrete:<axis>:<order>[,...]'."""


@dataclass(frozen=True)
class PoseErrors:
    """Errors of one estimate against ground truth: add_m, adds_m, mssd_m in metres; mspd_px in pixels."""

    add_m: float
    adds_m: float
    mssd_m: float
    mspd_px: float


MISSING = PoseErrors(np.inf, np.inf, np.inf, np.inf)
"""The errors of a ground-truth object for which no estimate was reported: it counts as a miss everywhere."""


def symmetry_transforms(symmetry: str, points_m: np.ndarray) -> np.ndarray:
    """The symmetry group of a declared symmetry as (S, 4, 4) transforms in the model frame, identity first.

    symmetry: "none", "continuous:<x|y|z>" or "discrete:<x|y|z>:<order>[,...]", parsed by objects/model.py (one parser
    for the whole package). The axis is parallel to the named model axis through the centre of the points' bounding
    box, as objects/model.py places it, so meshes whose origin is off the axis (YCB) are handled. Continuous
    symmetries are discretised as in the BOP toolkit: rim steps of at most 1 % of the diameter (315 rotations).
    points_m: (N, 3) model points in metres.
    """
    from pose_perception.objects.model import ObjectModelError, symmetry_transforms_for

    points_m = np.asarray(points_m, dtype=np.float64)
    centre = (points_m.min(axis=0) + points_m.max(axis=0)) / 2.0
    steps = int(np.ceil(np.pi / MAX_SYMMETRY_STEP_FRACTION))  # BOP: (pi * d) / (step * d)
    try:
        return symmetry_transforms_for(symmetry.strip().lower(), centre, continuous_steps=steps)
    except ObjectModelError as exc:
        raise SymmetrySpecError(str(exc)) from exc


def add_error(T_est: np.ndarray, T_gt: np.ndarray, points_m: np.ndarray) -> float:
    """ADD: mean distance between corresponding model points (N, 3) under the two poses, metres."""
    diff = transform_points(T_est, points_m) - transform_points(T_gt, points_m)
    return float(np.linalg.norm(diff, axis=1).mean())


def adds_error(T_est: np.ndarray, T_gt: np.ndarray, points_m: np.ndarray) -> float:
    """ADD-S: mean distance from each ground-truth-posed point to the closest estimate-posed point, metres."""
    tree = cKDTree(transform_points(T_est, points_m))
    dist, _ = tree.query(transform_points(T_gt, points_m), k=1)
    return float(dist.mean())


def mssd_error(T_est: np.ndarray, T_gt: np.ndarray, points_m: np.ndarray, symmetries: np.ndarray) -> float:
    """BOP MSSD: min over symmetries S of the max distance between T_est x and T_gt S x, metres."""
    est = transform_points(T_est, points_m)
    best = np.inf
    for S in symmetries:
        gt = transform_points(T_gt @ S, points_m)
        best = min(best, float(np.linalg.norm(est - gt, axis=1).max()))
    return best


def mspd_error(
    T_est: np.ndarray, T_gt: np.ndarray, points_m: np.ndarray, symmetries: np.ndarray, K: np.ndarray
) -> float:
    """BOP MSPD: min over symmetries S of the max image distance between projections of T_est x and T_gt S x, px."""
    est = project(transform_points(T_est, points_m), K)
    if not np.all(np.isfinite(est)):
        return np.inf  # the estimate puts part of the model behind the camera
    best = np.inf
    for S in symmetries:
        gt = project(transform_points(T_gt @ S, points_m), K)
        best = min(best, float(np.linalg.norm(est - gt, axis=1).max()))
    return best


def pose_errors(
    T_est: np.ndarray | None,
    T_gt: np.ndarray,
    points_m: np.ndarray,
    symmetries: np.ndarray,
    K: np.ndarray,
) -> PoseErrors:
    """All four errors of one estimate (None: not reported, every error infinite)."""
    if T_est is None:
        return MISSING
    T_est = np.asarray(T_est, dtype=np.float64)
    if T_est.shape != (4, 4) or not np.all(np.isfinite(T_est)):
        return MISSING
    return PoseErrors(
        add_m=add_error(T_est, T_gt, points_m),
        adds_m=adds_error(T_est, T_gt, points_m),
        mssd_m=mssd_error(T_est, T_gt, points_m, symmetries),
        mspd_px=mspd_error(T_est, T_gt, points_m, symmetries, K),
    )


def recall(errors: np.ndarray, threshold: float) -> float:
    """Fraction of errors strictly below threshold (inf = not reported = miss); NaN for no samples."""
    errors = np.asarray(errors, dtype=np.float64)
    return float(np.mean(errors < threshold)) if errors.size else float("nan")


def average_recall(errors: np.ndarray, thresholds: np.ndarray) -> float:
    """BOP average recall: the mean over thresholds of recall(errors, threshold)."""
    return float(np.mean([recall(errors, th) for th in thresholds]))


def mssd_thresholds_m(diameter_m: float) -> np.ndarray:
    return MSSD_THRESHOLD_FRACTIONS * diameter_m


def mspd_thresholds_px(image_width: int) -> np.ndarray:
    """BOP 19 MSPD thresholds scaled by 640 / image width."""
    return MSPD_THRESHOLDS_PX_AT_640 * (640.0 / image_width)


def model_diameter_m(points_m: np.ndarray) -> float:
    """Largest distance between two model points (computed on the convex hull), metres."""
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    points_m = np.asarray(points_m, dtype=np.float64)
    try:
        hull_points = points_m[ConvexHull(points_m).vertices]
    except QhullError:  # degenerate (flat) point sets: fall back to all points
        hull_points = points_m
    return float(pdist(hull_points).max()) if len(hull_points) > 1 else 0.0
