"""Model-to-scene registration: FPFH correspondences + compatibility-guided hypotheses (and their principal-axis
half turns), one-way point-to-plane ICP, and a two-way ICP that also uses the free space the camera sees.
Poses are T_cam_obj (4, 4): object-model points -> camera frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_perception.core.camera import project
from pose_perception.core.frames import invert_T
from pose_perception.objects.model import ObjectModel, compute_fpfh


@dataclass(frozen=True)
class RegistrationConfig:
    """knn_features: model matches per scene feature; compat_voxels: two correspondences are compatible when
    their scene and model distances differ by less than this (rigid motions keep distances), which prunes
    outliers before any pose is solved; n_seeds / consensus_size: hypotheses grow from the best-connected
    correspondences with their most mutually compatible partners (second-order spatial compatibility, as in
    SC2-PCR); inlier_voxels: fitness distance; n_hypotheses: distinct poses kept for ICP + verification;
    icp_voxels: coarse-to-fine ICP correspondence distances in model voxels; visible_icp_*: the final two-way
    ICP of refine_icp_visible (coarse-to-fine correspondence distances in model voxels, iterations per stage);
    n_flipped: the best coarse poses whose principal-axis half turns are tried as extra hypotheses;
    n_refined: distinct coarse poses (best by fitness x free_space_consistency) that get the two-way ICP;
    max_coarse_icp_points / coarse_icp_iterations: segment points and iterations of the coarse ICP stage of
    estimation (before the two-way ICP)."""

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
    visible_icp_voxels: tuple[float, ...] = (2.5, 1.5)
    visible_icp_iterations: int = 4
    n_flipped: int = 2
    n_refined: int = 4
    max_scene_points: int = 800
    max_icp_points: int = 300
    max_coarse_icp_points: int = 200
    coarse_icp_iterations: int = 4


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


def principal_axis_flips(points_obj: np.ndarray) -> np.ndarray:
    """(3, 4, 4) object-frame transforms: half turns about the three principal axes of the surface samples
    points_obj (N, 3), through their centroid. Boxes, cans, bottles and mugs are nearly symmetric under these, so
    a registration that locks onto one face pattern often lands on the pose half a turn from the true one: these
    turns give the alternatives to try."""
    c = points_obj.mean(axis=0)
    _, _, Vt = np.linalg.svd(points_obj - c, full_matrices=False)
    flips = np.tile(np.eye(4), (3, 1, 1))
    for k, axis in enumerate(Vt):
        R = 2.0 * np.outer(axis, axis) - np.eye(3)  # rotation by pi about `axis`
        flips[k, :3, :3] = R
        flips[k, :3, 3] = c - R @ c
    return flips


class ModelIndex:
    """Per-model search structures built once: KD-trees over the dense and the feature samples (object frame),
    and the principal-axis half turns (principal_axis_flips)."""

    def __init__(self, model: ObjectModel):
        from scipy.spatial import cKDTree

        self.model = model
        self.dense_tree = cKDTree(model.dense_points.astype(np.float64))
        self.dense_normals = model.dense_normals.astype(np.float64)
        self.dense_points = model.dense_points.astype(np.float64)
        self.points = model.points.astype(np.float64)
        self.normals = model.normals.astype(np.float64)
        self.flips = principal_axis_flips(self.dense_points)


def _rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def distinct_poses(
    poses: list[np.ndarray], diameter_m: float, min_angle_deg: float, min_shift_fraction: float
) -> list[int]:
    """Indices of the poses (4, 4) to keep, in order: a pose within min_angle_deg and min_shift_fraction *
    diameter_m of an earlier kept one is a duplicate (hypotheses that converged to the same pose)."""
    kept: list[int] = []
    for i, T in enumerate(poses):
        if not any(
            np.linalg.norm(T[:3, 3] - poses[k][:3, 3]) < min_shift_fraction * diameter_m
            and _rotation_angle(T[:3, :3], poses[k][:3, :3]) < min_angle_deg
            for k in kept
        ):
            kept.append(i)
    return kept


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
    # All poses at once (one KD-tree query): probe points into each hypothesis' object frame, p_obj = R^T (p - t).
    p_obj = np.einsum("bji,bpj->bpi", R, probe[None] - t[:, None, :])
    d, _ = index.dense_tree.query(p_obj.reshape(-1, 3), distance_upper_bound=dist)
    fitness = np.isfinite(d).reshape(len(seeds), -1).mean(axis=1)
    scored = []
    for b in np.argsort(-fitness, kind="stable"):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R[b], t[b]
        scored.append((T, float(fitness[b])))
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
    iterations: int | None = None,
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
        for _ in range(iterations or config.icp_iterations):
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


def _observed_at_samples(
    points_obj: np.ndarray, normals_obj: np.ndarray, T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object-frame surface samples (N, 3) with normals, posed at T_cam_obj: indices of those facing the camera
    and inside the image, their depth z (m) and the observed depth zo (m, NaN invalid) at their pixels."""
    R, t = T_cam_obj[:3, :3], T_cam_obj[:3, 3]
    p = points_obj @ R.T + t
    facing = np.einsum("ij,ij->i", normals_obj @ R.T, p) < 0.0
    z = p[:, 2]
    uv = np.rint(project(p, K))  # NaN behind the camera
    h, w = depth_m.shape
    with np.errstate(invalid="ignore"):
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    idx = np.nonzero(facing & inside)[0]
    return idx, z[idx], depth_m[uv[idx, 1].astype(np.int64), uv[idx, 0].astype(np.int64)]


def free_space_consistency(
    index: "ModelIndex", T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray, tau_m: float
) -> float:
    """Cheap point-based stand-in for the rendered verification, used to rank hypotheses before the costly
    steps: of the model's feature samples facing the camera at T_cam_obj and landing on valid depth, the fraction
    whose observed depth agrees (within tau_m) among those that agree or lie in front of seen free space
    (observation behind them). Occluded samples (observation in front) do not count."""
    _, z, zo = _observed_at_samples(index.points, index.normals, T_cam_obj, depth_m, K)
    with np.errstate(invalid="ignore"):
        agree = np.sum(np.abs(zo - z) < tau_m)
        behind = np.sum(zo > z + tau_m)
    return float(agree / (agree + behind)) if agree + behind > 0 else 0.0


def over_free_space(
    points_obj: np.ndarray, normals_obj: np.ndarray, T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray,
    tau_m: float,
) -> np.ndarray:
    """Mask (N,) of the object-frame surface samples that, posed at T_cam_obj, face the camera where it sees
    farther than tau_m behind them: the camera looks through that part of the model, so the pose is wrong there.
    Samples behind an observed surface (occluded, or the inner side of a concave shape) and samples over missing
    depth say nothing."""
    out = np.zeros(len(points_obj), bool)
    idx, z, zo = _observed_at_samples(points_obj, normals_obj, T_cam_obj, depth_m, K)
    with np.errstate(invalid="ignore"):
        out[idx] = zo > z + tau_m
    return out


def refine_icp_visible(
    index: ModelIndex,
    scene_points: np.ndarray,
    T_cam_obj: np.ndarray,
    depth_m: np.ndarray,
    K: np.ndarray,
    config: RegistrationConfig,
    tau_m: float,
) -> np.ndarray:
    """Two-way ICP that also uses free space: camera-frame scene points (N, 3) are pulled onto the model surface
    (point-to-plane, as in refine_icp) AND the model's feature samples through which the camera sees background
    at the current pose (over_free_space) are pulled onto their nearest scene point (point-to-point).

    The second term is what one-way scene->model ICP lacks: a partial view of flat faces (a box showing one or two
    sides, an occluded can) leaves the pose free to slide along them, and the model then sticks out where the
    camera sees the table or background. Robust (Tukey) weights on both terms. Returns T_cam_obj (4, 4)."""
    from scipy.spatial import cKDTree

    model = index.model
    P = np.asarray(scene_points, dtype=np.float64)
    if len(P) < 6:
        return T_cam_obj
    scene_tree = cKDTree(P)
    T = np.asarray(T_cam_obj, dtype=np.float64).copy()
    for v in config.visible_icp_voxels:
        dist = v * model.voxel_m
        T = _two_way_icp_stage(index, P, scene_tree, T, depth_m, K, tau_m, dist, config.visible_icp_iterations)
    return T


def _two_way_icp_stage(index, P, scene_tree, T, depth_m, K, tau_m, dist, iterations) -> np.ndarray:
    """One distance stage of refine_icp_visible (see there); P (N, 3) camera-frame scene points, scene_tree its
    KD-tree, dist the correspondence distance (m)."""
    dense = index.dense_points
    M, Mn = index.points, index.normals
    for _ in range(iterations):
        T_obj_cam = invert_T(T)
        # scene -> model, point-to-plane, in the object frame
        p = P @ T_obj_cam[:3, :3].T + T_obj_cam[:3, 3]
        d, j = index.dense_tree.query(p, distance_upper_bound=dist)
        ok = np.isfinite(d)
        if ok.sum() < 6:
            break
        ps, q, n = p[ok], dense[j[ok]], index.dense_normals[j[ok]]
        r1 = np.einsum("ij,ij->i", ps - q, n)
        w1 = (1.0 - np.minimum((r1 / dist) ** 2, 1.0)) ** 2
        A1 = np.empty((len(ps), 6))
        A1[:, 0] = ps[:, 1] * n[:, 2] - ps[:, 2] * n[:, 1]  # p x n
        A1[:, 1] = ps[:, 2] * n[:, 0] - ps[:, 0] * n[:, 2]
        A1[:, 2] = ps[:, 0] * n[:, 1] - ps[:, 1] * n[:, 0]
        A1[:, 3:] = n
        H = (A1 * w1[:, None]).T @ A1 + 1e-9 * np.eye(6)
        g = (A1 * w1[:, None]).T @ r1
        # model sample m over seen free space -> nearest scene point s, both in the object frame: the small motion
        # applied to the scene points should bring s onto m (residual s - m, Jacobian [-[s]x | I]). Only these
        # samples: the ones that agree with the observation are already held by the first term, and would only
        # dilute the pull.
        m = M[over_free_space(M, Mn, T, depth_m, K, tau_m)]
        if len(m):
            dv, jv = scene_tree.query(m @ T[:3, :3].T + T[:3, 3], distance_upper_bound=dist)
            okv = np.isfinite(dv)
            s_obj, m = p[jv[okv]], m[okv]
            r2 = s_obj - m
            w2 = (1.0 - np.minimum(np.sum(r2**2, axis=1) / dist**2, 1.0)) ** 2
            for a in range(3):  # row a of [-[s]x | I]: d(x cross s)_a / dx and the translation
                A2 = np.zeros((len(s_obj), 6))
                b, c = (a + 1) % 3, (a + 2) % 3
                A2[:, b] = s_obj[:, c]
                A2[:, c] = -s_obj[:, b]
                A2[:, 3 + a] = 1.0
                H += (A2 * w2[:, None]).T @ A2
                g += (A2 * w2[:, None]).T @ r2[:, a]
        x = -np.linalg.solve(H, g)
        T = invert_T(_small_motion(x) @ T_obj_cam)
        if np.linalg.norm(x[:3]) < 1e-3 and np.linalg.norm(x[3:]) < 1e-4:  # 0.06 deg, 0.1 mm
            break
    return T


def _small_motion(x: np.ndarray) -> np.ndarray:
    """(rx, ry, rz, tx, ty, tz) -> 4x4 transform (exact rotation from the rotation vector; OpenCV's Rodrigues
    because scipy's Rotation costs more than the rest of an ICP iteration)."""
    import cv2

    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(x[:3], dtype=np.float64))[0]
    T[:3, 3] = x[3:]
    return T
