"""Model-to-scene registration: FPFH correspondences + vectorised RANSAC giving several pose hypotheses, then
coarse-to-fine point-to-plane ICP (open3d). Poses are T_cam_obj (4, 4): object-model points -> camera frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_perception.core.frames import invert_T
from pose_perception.objects.model import ObjectModel, compute_fpfh


@dataclass(frozen=True)
class RegistrationConfig:
    """knn_features: model matches per scene feature; compat_voxels: two correspondences are compatible when
    their scene and model distances differ by less than this (rigid motions keep distances), which prunes
    outliers before any pose is solved; n_seeds / consensus_size: hypotheses grow from the best-connected
    correspondences with their most mutually compatible partners (second-order spatial compatibility, as in
    SC2-PCR); inlier_voxels: fitness distance; n_hypotheses: distinct poses kept for ICP + verification;
    icp_voxels: coarse-to-fine ICP correspondence distances in model voxels."""

    knn_features: int = 2
    compat_voxels: float = 2.0
    n_seeds: int = 60
    fitness_points: int = 150
    consensus_size: int = 12
    inlier_voxels: float = 1.5
    n_hypotheses: int = 6
    hypothesis_min_angle_deg: float = 20.0
    icp_voxels: tuple[float, ...] = (2.5, 1.0)
    icp_iterations: int = 6
    max_scene_points: int = 800
    max_icp_points: int = 500


@dataclass(frozen=True)
class ScenePatch:
    """A segment prepared for one model's voxel size: points/normals (N, 3) float32 camera frame (normals face
    the camera), features (N, F) float32 matching the model's FPFH layout, icp_points (M, 3) denser cloud."""

    points: np.ndarray
    normals: np.ndarray
    features: np.ndarray
    icp_points: np.ndarray


def prepare_patch(
    points_m: np.ndarray, model: ObjectModel, config: RegistrationConfig, seed: int = 0
) -> ScenePatch | None:
    """Downsample a segment (M, 3) camera-frame points at the model voxel and compute normals + FPFH."""
    import open3d as o3d

    voxel = model.voxel_m
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points_m.astype(np.float64)))
    down = pcd.voxel_down_sample(voxel)
    if len(down.points) < 10:
        return None
    down.estimate_normals(
        o3d.geometry.KDTreeSearchParamHybrid(radius=model.params.normal_radius_voxels * voxel, max_nn=30)
    )
    down.orient_normals_towards_camera_location(np.zeros(3))
    pts = np.asarray(down.points, dtype=np.float32)
    nrm = np.asarray(down.normals, dtype=np.float32)
    feats = compute_fpfh(pts, nrm, voxel, model.params.fpfh_radii_voxels)
    if len(pts) > config.max_scene_points:
        keep = np.random.default_rng(seed).choice(len(pts), config.max_scene_points, replace=False)
        pts, nrm, feats = pts[keep], nrm[keep], feats[keep]
    icp = np.asarray(pcd.voxel_down_sample(voxel * 0.5).points, dtype=np.float32)
    if len(icp) > config.max_icp_points:
        icp = icp[np.random.default_rng(seed).choice(len(icp), config.max_icp_points, replace=False)]
    return ScenePatch(pts, nrm, feats, icp)


def feature_correspondences(scene_feats: np.ndarray, model_feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest model features per scene feature (L2, brute force: both sets are a few thousand at most).
    Returns (scene_idx (C,), model_idx (C,)) int64."""
    d2 = (
        (scene_feats**2).sum(1)[:, None]
        + (model_feats**2).sum(1)[None, :]
        - 2.0 * scene_feats @ model_feats.T
    )
    k = min(k, model_feats.shape[0])
    nn = np.argpartition(d2, kth=k - 1, axis=1)[:, :k]
    s_idx = np.repeat(np.arange(len(scene_feats)), k)
    return s_idx, nn.ravel()


def kabsch_batched(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transforms mapping src -> dst. src, dst: (B, P, 3). Returns R (B, 3, 3), t (B, 3)."""
    cs, cd = src.mean(axis=1, keepdims=True), dst.mean(axis=1, keepdims=True)
    H = np.einsum("bpi,bpj->bij", src - cs, dst - cd)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("bij,bjk->bik", Vt.transpose(0, 2, 1), U.transpose(0, 2, 1))))
    D = np.tile(np.eye(3), (len(src), 1, 1))
    D[:, 2, 2] = d
    R = Vt.transpose(0, 2, 1) @ D @ U.transpose(0, 2, 1)
    t = cd[:, 0] - np.einsum("bij,bj->bi", R, cs[:, 0])
    return R, t


class ModelIndex:
    """Per-model search structures built once: KD-trees over the dense and the feature samples (object frame)."""

    def __init__(self, model: ObjectModel):
        from scipy.spatial import cKDTree

        self.model = model
        self.dense_tree = cKDTree(model.dense_points.astype(np.float64))
        self.dense_normals = model.dense_normals.astype(np.float64)


def _rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def geometric_fitness(index: ModelIndex, scene_points: np.ndarray, T_cam_obj: np.ndarray, dist_m: float) -> float:
    """Fraction of camera-frame scene points (N, 3) lying within dist_m of the model surface posed at T_cam_obj."""
    R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
    p_obj = (scene_points - t) @ R
    d, _ = index.dense_tree.query(p_obj, distance_upper_bound=dist_m)
    return float(np.mean(np.isfinite(d)))


def compatibility_hypotheses(
    index: ModelIndex, patch: ScenePatch, config: RegistrationConfig
) -> list[tuple[np.ndarray, float]]:
    """Distinct T_cam_obj hypotheses with their geometric fitness (fraction of scene points on the model), best
    first. Deterministic: no random sampling."""
    model = index.model
    s_idx, m_idx = feature_correspondences(patch.features, model.features, config.knn_features)
    S = patch.points[s_idx].astype(np.float32)
    M = model.points[m_idx].astype(np.float32)
    C = len(S)
    if C < 3:
        return []
    from scipy.spatial.distance import cdist

    Ds = cdist(S, S)
    Dm = cdist(M, M)
    compat = ((np.abs(Ds - Dm) < config.compat_voxels * model.voxel_m) & (Ds > 2.0 * model.voxel_m)).astype(np.float32)
    degree = compat.sum(1)
    # Seeds: best-connected correspondences, at most one per scene point.
    order = np.argsort(-degree)
    seeds, seen = [], set()
    for i in order:
        if degree[i] < 2:
            break
        if s_idx[i] in seen:
            continue
        seen.add(s_idx[i])
        seeds.append(i)
        if len(seeds) >= config.n_seeds:
            break
    if not seeds:
        return []
    seeds = np.asarray(seeds)
    # Second-order compatibility of each seed's partners: common compatible neighbours.
    sc2 = compat[seeds] * (compat[seeds] @ compat)
    k = min(config.consensus_size, C - 1)
    partners = np.argpartition(-sc2, kth=k - 1, axis=1)[:, :k]
    groups = np.concatenate([seeds[:, None], partners], axis=1)
    R, t = kabsch_batched(M[groups].astype(np.float64), S[groups].astype(np.float64))
    dist = config.inlier_voxels * model.voxel_m
    # Fitness on a fixed subset keeps ranking cheap; ranking only needs to separate good from bad poses.
    probe = patch.points[:: max(1, len(patch.points) // config.fitness_points)].astype(np.float64)
    scored = []
    for b in range(len(seeds)):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R[b], t[b]
        scored.append((T, geometric_fitness(index, probe, T, dist)))
    scored.sort(key=lambda x: -x[1])
    chosen: list[tuple[np.ndarray, float]] = []
    for T, fit in scored:
        if any(
            _rotation_angle(T[:3, :3], T2[:3, :3]) < config.hypothesis_min_angle_deg
            and np.linalg.norm(T[:3, 3] - T2[:3, 3]) < 0.2 * model.diameter_m
            for T2, _ in chosen
        ):
            continue
        chosen.append((T, fit))
        if len(chosen) >= config.n_hypotheses:
            break
    return chosen


def refine_icp(
    index: ModelIndex,
    scene_points: np.ndarray,
    T_cam_obj: np.ndarray,
    config: RegistrationConfig,
    voxels: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Coarse-to-fine point-to-plane ICP of camera-frame scene points (N, 3) onto the model surface.

    Registers scene -> model (every observed point should lie on the model; model points on the hidden side have
    no partner), so partial views do not bias the pose. Hand-written (numpy + a cached scipy KD-tree) because
    open3d's ICP rebuilds the target KD-tree on every call, which dominated the per-frame cost.
    Returns (T_cam_obj, fitness = fraction of points within the last distance, inlier_rmse_m).
    """
    model = index.model
    P = np.asarray(scene_points, dtype=np.float64)
    T_obj_cam = invert_T(T_cam_obj)
    fitness, rmse = 0.0, float("inf")
    for v in voxels or config.icp_voxels:
        dist = v * model.voxel_m
        for _ in range(config.icp_iterations):
            p = P @ T_obj_cam[:3, :3].T + T_obj_cam[:3, 3]
            d, j = index.dense_tree.query(p, distance_upper_bound=dist)
            ok = np.isfinite(d)
            if ok.sum() < 6:
                return invert_T(T_obj_cam), 0.0, float("inf")
            ps, q, n = p[ok], index.model.dense_points[j[ok]].astype(np.float64), index.dense_normals[j[ok]]
            r = np.einsum("ij,ij->i", ps - q, n)
            w = (1.0 - np.minimum((r / dist) ** 2, 1.0)) ** 2  # Tukey biweight
            A = np.empty((len(ps), 6))
            A[:, 0] = ps[:, 1] * n[:, 2] - ps[:, 2] * n[:, 1]  # p x n, written out: np.cross is slow on small arrays
            A[:, 1] = ps[:, 2] * n[:, 0] - ps[:, 0] * n[:, 2]
            A[:, 2] = ps[:, 0] * n[:, 1] - ps[:, 1] * n[:, 0]
            A[:, 3:] = n
            H = (A * w[:, None]).T @ A + 1e-9 * np.eye(6)
            x = -np.linalg.solve(H, (A * w[:, None]).T @ r)
            dT = _small_motion(x)
            T_obj_cam = dT @ T_obj_cam
            if np.linalg.norm(x[:3]) < 2e-4 and np.linalg.norm(x[3:]) < 2e-5:  # 0.01 deg, 0.02 mm
                break
        fitness = float(ok.mean())
        rmse = float(np.sqrt(np.mean(r**2)))
    return invert_T(T_obj_cam), fitness, rmse


def _small_motion(x: np.ndarray) -> np.ndarray:
    """(rx, ry, rz, tx, ty, tz) -> 4x4 transform (exact rotation from the rotation vector; OpenCV's Rodrigues
    because scipy's Rotation costs more than the rest of an ICP iteration)."""
    import cv2

    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(x[:3], dtype=np.float64))[0]
    T[:3, 3] = x[3:]
    return T
