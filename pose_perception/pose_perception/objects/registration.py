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
from pose_perception.objects.nearest import make_nearest


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
    n_hypotheses: int = 10
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
    if len(pts) > config.max_scene_points:
        keep = np.random.default_rng(seed).choice(len(pts), config.max_scene_points, replace=False)
        # features of the kept points only (the others still serve as their neighbours)
        feats = compute_fpfh(pts, nrm, voxel, model.params.fpfh_radii_voxels, indices=keep)
        pts, nrm = pts[keep], nrm[keep]
    else:
        feats = compute_fpfh(pts, nrm, voxel, model.params.fpfh_radii_voxels)
    icp = np.asarray(pcd.voxel_down_sample(voxel * 0.5).points, dtype=np.float32)
    if len(icp) > config.max_icp_points:
        icp = icp[np.random.default_rng(seed).choice(len(icp), config.max_icp_points, replace=False)]
    return ScenePatch(pts, nrm, feats, icp)


def feature_correspondences(scene_feats: np.ndarray, model_feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest model features per scene feature (L2, brute force: both sets are a few thousand at most).
    Returns (scene_idx (C,), model_idx (C,)) int64."""
    d2 = (scene_feats**2).sum(1)[:, None] + (model_feats**2).sum(1)[None, :] - 2.0 * scene_feats @ model_feats.T
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
    """Per-model search structures built once: the mesh's surface area (area_m2), a KD-tree over the dense samples
    (object frame), a distance-bound
    grid around the model that answers most "is there a sample within r?" questions without the KD-tree (within),
    the principal-axis half turns (principal_axis_flips), and the ICPs' nearest-sample search on `device`
    (dense_nearest: the same KD-tree on the CPU, torch on CUDA; nn_backend overrides, see make_nearest).

    bound_cell_voxels / bound_margin_voxels: cell size of that grid and how far it reaches beyond the samples'
    bounding box, in model voxels."""

    def __init__(
        self,
        model: ObjectModel,
        bound_cell_voxels: float = 0.25,
        bound_margin_voxels: float = 3.0,
        device: str = "cpu",
        nn_backend: str | None = None,
    ):
        from scipy import ndimage
        from scipy.spatial import cKDTree

        self.model = model
        self.device = device
        self.nn_backend = nn_backend
        self.dense_tree = cKDTree(model.dense_points.astype(np.float64))
        self.dense_normals = model.dense_normals.astype(np.float64)
        self.dense_points = model.dense_points.astype(np.float64)
        self.points = model.points.astype(np.float64)
        self.normals = model.normals.astype(np.float64)
        self.flips = principal_axis_flips(self.dense_points)
        tri = model.vertices[model.faces].astype(np.float64)  # (F, 3, 3)
        self.area_m2 = 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())
        self.dense_nearest = make_nearest(self.dense_points, device, nn_backend, tree=self.dense_tree)
        # Ranking the hypotheses asks, for ~9000 points per segment, whether a sample lies within the inlier
        # distance, and for most of them a coarse distance map already knows: points well inside the bound
        # certainly have one, points far off certainly not (about 3x faster than asking the KD-tree about all; for
        # the ICP's nearest-sample queries the map saved nothing, the KD-tree's own bound pruning is as fast). The
        # map is an exact Euclidean distance transform of the cells that hold samples (~50 ms per model); a sample
        # lies within half a cell diagonal h of its cell's centre, so the true distance d(p) from any point p of a
        # cell to the nearest sample satisfies edt - 2h <= d(p) <= edt + 2h. Only points whose bound falls inside
        # that interval go to the KD-tree, so every answer is exactly the KD-tree's.
        cell_m = bound_cell_voxels * model.voxel_m
        reach = bound_margin_voxels * model.voxel_m
        self._bound_reach_m = reach
        self._bound_inv_cell = 1.0 / cell_m
        # One border cell on every side stands for everything outside the grid (coordinates are clipped into it):
        # a point there is more than `reach` from every sample, and nothing bounds its distance from above.
        self._bound_origin = self.dense_points.min(axis=0) - reach - cell_m
        shape = np.ceil((self.dense_points.max(axis=0) + reach + cell_m - self._bound_origin) / cell_m)
        shape = shape.astype(np.int64) + 1
        cells = np.floor((self.dense_points - self._bound_origin) / cell_m).astype(np.int64)
        empty = np.ones(tuple(shape), bool)
        empty[tuple(cells.T)] = False
        edt = ndimage.distance_transform_edt(empty) * cell_m
        slack = np.sqrt(3.0) * cell_m + 1e-6  # 2h, plus 1 um for rounding
        border = np.ones(tuple(shape), bool)
        border[1:-1, 1:-1, 1:-1] = False
        self._bound_lo = np.where(border, reach, edt - slack).ravel()
        self._bound_hi = np.where(border, np.inf, edt + slack).ravel()
        self._bound_shape = shape
        self._bound_strides = np.array([shape[1] * shape[2], shape[2], 1])

    def _cells(self, points_obj: np.ndarray) -> np.ndarray:
        """Flat distance-map cell (N,) of each object-frame point (N, 3); points outside fall in the border."""
        cell = np.floor((points_obj - self._bound_origin) * self._bound_inv_cell)
        np.clip(cell, 0, self._bound_shape - 1, out=cell)
        return cell.astype(np.int64) @ self._bound_strides

    def within(self, points_obj: np.ndarray, max_dist_m: float) -> np.ndarray:
        """Mask (N,): the point has a dense sample closer than max_dist_m, exactly as np.isfinite of the KD-tree's
        query with distance_upper_bound=max_dist_m. Only points the distance map cannot decide ask the KD-tree."""
        points_obj = np.asarray(points_obj, dtype=np.float64)
        if max_dist_m >= self._bound_reach_m:
            return np.isfinite(self.dense_tree.query(points_obj, distance_upper_bound=max_dist_m)[0])
        cells = self._cells(points_obj)
        out = self._bound_hi[cells] < max_dist_m
        ask = np.flatnonzero(~out & (self._bound_lo[cells] <= max_dist_m))
        if len(ask):
            out[ask] = np.isfinite(self.dense_tree.query(points_obj[ask], distance_upper_bound=max_dist_m)[0])
        return out


def _rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def distinct_poses(
    poses: list[np.ndarray], diameter_m: float, min_angle_deg: float, min_shift_fraction: float
) -> list[int]:
    """Indices of the poses (4, 4) to keep, in order: a pose within min_angle_deg and min_shift_fraction *
    diameter_m of an earlier kept one is a duplicate (hypotheses that converged to the same pose)."""
    if not len(poses):
        return []
    close = close_pose_pairs(np.asarray(poses, dtype=np.float64), min_angle_deg, min_shift_fraction * diameter_m)
    kept: list[int] = []
    for i in range(len(poses)):
        if not close[i, kept].any():
            kept.append(i)
    return kept


def close_pose_pairs(poses: np.ndarray, max_angle_deg: float, max_shift_m: float) -> np.ndarray:
    """(B, B) bool: poses i and k of poses (B, 4, 4) are within max_angle_deg of rotation (_rotation_angle) and
    max_shift_m of translation (np.linalg.norm of the difference), exactly as those scalar tests decide: all pairs
    at once, and the few within rounding of a threshold decided by the scalar tests themselves (the greedy
    de-duplications of a search asked up to 60 x 10 pairs one by one: 7 % of the search's time)."""
    t, R = poses[:, :3, 3], poses[:, :3, :3]
    shift = np.linalg.norm(t[:, None] - t[None], axis=-1)
    cos_angle = (np.einsum("aij,bij->ab", R, R) - 1.0) / 2.0  # trace(Ra^T Rb) = sum of the elementwise products
    cos_max = np.cos(np.radians(max_angle_deg))
    close = (shift < max_shift_m) & (cos_angle > cos_max)
    unsure = (np.abs(shift - max_shift_m) <= 1e-9 * (1.0 + max_shift_m)) | (np.abs(cos_angle - cos_max) <= 1e-9)
    for i, k in zip(*np.nonzero(unsure)):
        close[i, k] = bool(np.linalg.norm(t[i] - t[k]) < max_shift_m and _rotation_angle(R[i], R[k]) < max_angle_deg)
    return close


def pairwise_distances_f32(points: np.ndarray) -> np.ndarray:
    """(C, C) float32 Euclidean distances between the rows of points (C, 3), from one matrix product (about half
    the time of scipy's float64 cdist for C ~ 1600, the bulk of compatibility_hypotheses). Centred first so that
    float32 keeps ~1e-6 m at the centimetre distances the compatibility test compares (errors up to ~1e-4 m only
    for near-coincident points, which the test excludes anyway: Ds > 2 voxels)."""
    P = np.asarray(points, dtype=np.float32)
    P = P - P.mean(axis=0)
    sq = np.einsum("ij,ij->i", P, P)
    D = P @ P.T
    D *= -2.0
    D += sq[:, None]
    D += sq[None, :]
    np.maximum(D, 0.0, out=D)
    return np.sqrt(D, out=D)


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
    Ds = pairwise_distances_f32(S)
    Dm = pairwise_distances_f32(M)
    # |Ds - Dm| in place: C x C temporaries cost as much as the arithmetic
    diff = np.abs(np.subtract(Ds, Dm, out=Dm), out=Dm)
    compat = diff < config.compat_voxels * model.voxel_m
    compat &= Ds > 2.0 * model.voxel_m
    compat = compat.astype(np.float32)
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
    fitness = index.within(p_obj.reshape(-1, 3), dist).reshape(len(seeds), -1).mean(axis=1)
    order = np.argsort(-fitness, kind="stable")
    Ts = np.tile(np.eye(4), (len(order), 1, 1))
    Ts[:, :3, :3], Ts[:, :3, 3] = R[order], t[order]
    close = close_pose_pairs(Ts, config.hypothesis_min_angle_deg, 0.2 * model.diameter_m)
    chosen: list[int] = []
    for i in range(len(Ts)):
        if close[i, chosen].any():
            continue
        chosen.append(i)
        if len(chosen) >= config.n_hypotheses:
            break
    return [(Ts[i], float(fitness[order[i]])) for i in chosen]


def refine_icp(
    index: ModelIndex,
    scene_points: np.ndarray,
    T_cam_obj: np.ndarray,
    config: RegistrationConfig,
    voxels: tuple[float, ...] | None = None,
    iterations: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse-to-fine point-to-plane ICP of camera-frame scene points (N, 3) onto the model surface, from one pose
    T_cam_obj (4, 4) or from a stack of B hypotheses (B, 4, 4) at once.

    Registers scene -> model (every observed point should lie on the model; model points on the hidden side have
    no partner), so partial views do not bias the pose. Hand-written (numpy + a cached scipy KD-tree) because
    open3d's ICP rebuilds the target KD-tree on every call, which dominated the per-frame cost. The hypotheses
    share one KD-tree query and one batched solve per iteration: per-hypothesis Python loops cost more than the
    arithmetic at these sizes. Each hypothesis stops on its own convergence, exactly as if run alone.
    Returns (T_cam_obj, fitness = fraction of points within the last distance (0 where fewer than 6 points found
    the model), inlier_rmse_m): (4, 4), float, float for one pose; (B, 4, 4), (B,), (B,) for a stack."""
    model = index.model
    P = np.asarray(scene_points, dtype=np.float64)
    T_in = np.asarray(T_cam_obj, dtype=np.float64)
    T_obj_cam = invert_T(T_in.reshape(-1, 4, 4))
    B, N = len(T_obj_cam), len(P)
    fitness, rmse = np.zeros(B), np.full(B, np.inf)
    dead = np.zeros(B, bool)  # fewer than 6 correspondences: the pose is abandoned where it is, fitness 0
    for v in voxels or config.icp_voxels:
        dist = v * model.voxel_m
        active = ~dead
        for _ in range(iterations or config.icp_iterations):
            idx = np.flatnonzero(active)
            if not len(idx):
                break
            p = P @ T_obj_cam[idx, :3, :3].transpose(0, 2, 1) + T_obj_cam[idx, None, :3, 3]
            d, j = index.dense_nearest.query(p.reshape(-1, 3), dist)
            ok = np.isfinite(d).reshape(len(idx), N)
            n_ok = ok.sum(axis=1)
            few = n_ok < 6
            dead[idx[few]] = True
            active[idx[few]] = False
            fitness[idx[few]], rmse[idx[few]] = 0.0, np.inf
            j = np.where(ok, j.reshape(len(idx), N), 0)
            q, n = index.dense_points[j], index.dense_normals[j]
            r = np.where(ok, np.einsum("bni,bni->bn", p - q, n), 0.0)
            w = np.where(ok, (1.0 - np.minimum((r / dist) ** 2, 1.0)) ** 2, 0.0)  # Tukey biweight
            H, g = _point_to_plane_normal_equations(p, n, r, w)
            x = -solve_spd_batched(H, g[..., 0])
            live = ~few
            T_obj_cam[idx[live]] = _small_motion(x[live]) @ T_obj_cam[idx[live]]
            fitness[idx[live]] = n_ok[live] / N
            rmse[idx[live]] = np.sqrt(np.sum(r[live] ** 2, axis=1) / n_ok[live])
            converged = (np.linalg.norm(x[:, :3], axis=1) < 2e-4) & (np.linalg.norm(x[:, 3:], axis=1) < 2e-5)
            active[idx[live & converged]] = False  # 0.01 deg, 0.02 mm
    if T_in.ndim == 2:
        return invert_T(T_obj_cam[0]), float(fitness[0]), float(rmse[0])
    return invert_T(T_obj_cam), fitness, rmse


def solve_spd_batched(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """x (B, n) solving H x = g for B symmetric positive definite systems H (B, n, n), g (B, n): Cholesky written
    out over the n columns, vectorised over the batch.

    np.linalg.solve sends each small system to LAPACK through OpenBLAS, whose threads cost ~12 ms per call for a
    stack of 6x6 systems on a loaded 2-core machine (7 us with one thread): it dominated estimation time there."""
    H = np.asarray(H, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    n = H.shape[-1]
    # np.add.reduce is what np.sum calls, without its Python wrapper (a third of this function's time: 36 sums per
    # call); sums over no terms are left out (x - 0.0 is x). The same arithmetic, so the same bits.
    add = np.add.reduce
    L = np.zeros_like(H)
    for j in range(n):
        d = H[:, j, j] - add(L[:, j, :j] ** 2, axis=1) if j else H[:, j, j]
        L[:, j, j] = np.sqrt(np.maximum(d, 1e-300))
        if j + 1 < n:
            off = H[:, j + 1 :, j] - add(L[:, j + 1 :, :j] * L[:, j, None, :j], axis=-1) if j else H[:, j + 1 :, j]
            L[:, j + 1 :, j] = off / L[:, j, j, None]
    y = np.zeros_like(g)
    for i in range(n):  # L y = g
        y[:, i] = ((g[:, i] - add(L[:, i, :i] * y[:, :i], axis=1)) if i else g[:, i]) / L[:, i, i]
    x = np.zeros_like(g)
    for i in reversed(range(n)):  # L^T x = y
        x[:, i] = ((y[:, i] - add(L[:, i + 1 :, i] * x[:, i + 1 :], axis=1)) if i + 1 < n else y[:, i]) / L[:, i, i]
    return x


def _point_to_plane_normal_equations(
    p: np.ndarray, n: np.ndarray, r: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Gauss-Newton normal equations of B point-to-plane problems: points p (B, N, 3), normals n (B, N, 3),
    residuals r (B, N), weights w (B, N) -> H (B, 6, 6), g (B, 6, 1); the small motion x = (rx, ry, rz, tx, ty, tz)
    minimising sum w (r + A x)^2, A = [p x n | n], solves H x = -g."""
    A = np.empty(p.shape[:2] + (6,))
    A[..., 0] = p[..., 1] * n[..., 2] - p[..., 2] * n[..., 1]  # p x n, written out
    A[..., 1] = p[..., 2] * n[..., 0] - p[..., 0] * n[..., 2]
    A[..., 2] = p[..., 0] * n[..., 1] - p[..., 1] * n[..., 0]
    A[..., 3:] = n
    AwT = (A * w[..., None]).transpose(0, 2, 1)
    return AwT @ A + 1e-9 * np.eye(6), AwT @ r[..., None]


def _observed_at_samples_batch(
    points_obj: np.ndarray, normals_obj: np.ndarray, T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object-frame surface samples (N, 3) with normals, posed at each of T_cam_obj (B, 4, 4): mask (B, N) of
    those facing the camera and inside the image, the posed samples (B, N, 3) in the camera frame (m) and the
    observed depth zo (B, N) (m) at their pixels (NaN where invalid or not in the mask)."""
    R, t = T_cam_obj[:, :3, :3], T_cam_obj[:, :3, 3]
    R_t = R.transpose(0, 2, 1)
    p = points_obj @ R_t + t[:, None]
    facing = np.sum((normals_obj @ R_t) * p, axis=-1) < 0.0
    B, N = p.shape[:2]
    uv = np.rint(project(p.reshape(-1, 3), K)).reshape(B, N, 2)  # NaN behind the camera
    h, w = depth_m.shape
    with np.errstate(invalid="ignore"):
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    sel = facing & inside
    zo = np.full((B, N), np.nan, dtype=np.float64)
    zo[sel] = depth_m[uv[sel][:, 1].astype(np.int64), uv[sel][:, 0].astype(np.int64)]
    return sel, p, zo


def free_space_consistency(
    index: "ModelIndex", T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray, tau_m: float
) -> float:
    """free_space_consistency_batch of one pose T_cam_obj (4, 4)."""
    return float(free_space_consistency_batch(index, T_cam_obj[None], depth_m, K, tau_m)[0])


def free_space_consistency_batch(
    index: "ModelIndex", T_cam_obj: np.ndarray, depth_m: np.ndarray, K: np.ndarray, tau_m: float
) -> np.ndarray:
    """Cheap point-based stand-in for the rendered verification, used to rank hypotheses before the costly
    steps: of the model's feature samples facing the camera at T_cam_obj (B, 4, 4) and landing on valid depth, the
    fraction whose observed depth agrees (within tau_m) among those that agree or lie in front of seen free space
    (observation behind them). Occluded samples (observation in front) do not count. Returns (B,)."""
    _, p, zo = _observed_at_samples_batch(index.points, index.normals, T_cam_obj, depth_m, K)
    z = p[..., 2]
    with np.errstate(invalid="ignore"):
        agree = np.sum(np.abs(zo - z) < tau_m, axis=1)
        behind = np.sum(zo > z + tau_m, axis=1)
    total = agree + behind
    return np.where(total > 0, agree / np.maximum(total, 1), 0.0)


def over_free_space(
    points_obj: np.ndarray,
    normals_obj: np.ndarray,
    T_cam_obj: np.ndarray,
    depth_m: np.ndarray,
    K: np.ndarray,
    tau_m: float,
) -> np.ndarray:
    """Mask (N,) of the object-frame surface samples that, posed at T_cam_obj (4, 4), face the camera where it
    sees farther than tau_m behind them: the camera looks through that part of the model, so the pose is wrong
    there. Samples behind an observed surface (occluded, or the inner side of a concave shape) and samples over
    missing depth say nothing. A (B, 4, 4) stack of poses gives a (B, N) mask."""
    T = np.asarray(T_cam_obj, dtype=np.float64)
    _, p, zo = _observed_at_samples_batch(points_obj, normals_obj, T.reshape(-1, 4, 4), depth_m, K)
    with np.errstate(invalid="ignore"):
        out = zo > p[..., 2] + tau_m
    return out[0] if T.ndim == 2 else out


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
    camera sees the table or background. Robust (Tukey) weights on both terms.
    T_cam_obj (4, 4) -> (4, 4), or a (B, 4, 4) stack of hypotheses refined at once (one KD-tree query and one
    batched solve per iteration; each hypothesis stops on its own convergence) -> (B, 4, 4)."""
    model = index.model
    T = np.asarray(T_cam_obj, dtype=np.float64)
    P = np.asarray(scene_points, dtype=np.float64)
    if len(P) < 6:
        return T.copy()
    scene_tree = make_nearest(P, index.device, index.nn_backend)
    Tb = T.reshape(-1, 4, 4).copy()
    for v in config.visible_icp_voxels:
        dist = v * model.voxel_m
        Tb = _two_way_icp_stage(index, P, scene_tree, Tb, depth_m, K, tau_m, dist, config.visible_icp_iterations)
    return Tb[0] if T.ndim == 2 else Tb


def _two_way_icp_stage(index, P, scene_tree, T, depth_m, K, tau_m, dist, iterations) -> np.ndarray:
    """One distance stage of refine_icp_visible (see there) for B hypotheses T (B, 4, 4); P (N, 3) camera-frame
    scene points, scene_tree their nearest-neighbour structure (make_nearest), dist the correspondence distance (m).
    Returns (B, 4, 4)."""
    M, Mn = index.points, index.normals
    T = T.copy()
    N = len(P)
    active = np.ones(len(T), bool)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        Tc = T[idx]
        T_obj_cam = invert_T(Tc)
        # scene -> model, point-to-plane, in the object frame
        p = P @ T_obj_cam[:, :3, :3].transpose(0, 2, 1) + T_obj_cam[:, None, :3, 3]
        d, j = index.dense_nearest.query(p.reshape(-1, 3), dist)
        ok = np.isfinite(d).reshape(len(idx), N)
        few = ok.sum(axis=1) < 6
        active[idx[few]] = False  # too few correspondences: this stage leaves the pose as it is
        if few.all():
            break
        keep = ~few
        idx, Tc, T_obj_cam, p, ok = idx[keep], Tc[keep], T_obj_cam[keep], p[keep], ok[keep]
        j = np.where(ok, j.reshape(len(keep), N)[keep], 0)
        q, n = index.dense_points[j], index.dense_normals[j]
        r1 = np.where(ok, np.einsum("bni,bni->bn", p - q, n), 0.0)
        w1 = np.where(ok, (1.0 - np.minimum((r1 / dist) ** 2, 1.0)) ** 2, 0.0)
        H, g = _point_to_plane_normal_equations(p, n, r1, w1)
        # model sample m over seen free space -> nearest scene point s, both in the object frame: the small motion
        # applied to the scene points should bring s onto m (residual s - m, Jacobian [-[s]x | I]). Only these
        # samples: the ones that agree with the observation are already held by the first term, and would only
        # dilute the pull.
        # (as over_free_space, keeping the posed samples)
        _, posed, zo = _observed_at_samples_batch(M, Mn, Tc, depth_m, K)
        with np.errstate(invalid="ignore"):
            hb, hm = np.nonzero(zo > posed[..., 2] + tau_m)
        if len(hb):
            dv, jv = scene_tree.query(posed[hb, hm], dist)
            okv = np.isfinite(dv)
            hb, s_obj, m = hb[okv], p[hb[okv], jv[okv]], M[hm[okv]]
            r2 = s_obj - m
            w2 = (1.0 - np.minimum(np.sum(r2**2, axis=1) / dist**2, 1.0)) ** 2
            # J (n, 3, 6) = [-[s]x | I]: row a has s_c at column b, -s_b at column c ((a, b, c) cyclic) and 1 at 3 + a
            J = np.zeros((len(s_obj), 3, 6))
            for a in range(3):
                b, c = (a + 1) % 3, (a + 2) % 3
                J[:, a, b] = s_obj[:, c]
                J[:, a, c] = -s_obj[:, b]
                J[:, a, 3 + a] = 1.0
            JwT = (J * w2[:, None, None]).transpose(0, 2, 1)
            # per-hypothesis sums of the (n, 6, 6) and (n, 6) terms as one product with the hypothesis one-hot
            onehot = (hb[None, :] == np.arange(len(idx))[:, None]).astype(np.float64)
            H += (onehot @ (JwT @ J).reshape(-1, 36)).reshape(-1, 6, 6)
            g += (onehot @ (JwT @ r2[..., None])[..., 0])[..., None]
        x = -solve_spd_batched(H, g[..., 0])
        T[idx] = invert_T(_small_motion(x) @ T_obj_cam)
        converged = (np.linalg.norm(x[:, :3], axis=1) < 1e-3) & (np.linalg.norm(x[:, 3:], axis=1) < 1e-4)
        active[idx[converged]] = False  # 0.06 deg, 0.1 mm
    return T


def _small_motion(x: np.ndarray) -> np.ndarray:
    """(B, 6) (rx, ry, rz, tx, ty, tz) -> (B, 4, 4) transforms; exact rotations from the rotation vectors
    (Rodrigues' formula; the identity below 1e-12 rad, as OpenCV's Rodrigues). Batched numpy: one cv2.Rodrigues
    call per hypothesis and iteration cost more than the rest of an ICP iteration."""
    theta = np.linalg.norm(x[:, :3], axis=1)
    k = x[:, :3] / np.where(theta > 1e-12, theta, 1.0)[:, None]
    Kx = np.zeros((len(x), 3, 3))
    Kx[:, 0, 1], Kx[:, 0, 2], Kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    Kx[:, 1, 0], Kx[:, 2, 0], Kx[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(theta)[:, None, None], (1.0 - np.cos(theta))[:, None, None]
    T = np.tile(np.eye(4), (len(x), 1, 1))
    T[:, :3, :3] += s * Kx + c * (Kx @ Kx)
    T[:, :3, 3] = x[:, 3:]
    return T
