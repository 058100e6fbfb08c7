"""Global registration (FPFH + compatibility-guided hypotheses) and point-to-plane ICP."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenes import INTRINSICS, add_s_m, make_scene
from pose_perception.core.camera import backproject
from pose_perception.objects.model import load_object_model
from pose_perception.objects.render import render_depth
from pose_perception.objects.registration import (
    _rotation_angle,
    close_pose_pairs,
    ModelIndex,
    RegistrationConfig,
    compatibility_hypotheses,
    distinct_poses,
    free_space_consistency,
    kabsch_batched,
    prepare_patch,
    principal_axis_flips,
    refine_icp,
    refine_icp_visible,
)
from pose_perception.objects.segmentation import segment_depth


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(2, 10, 3))
    R = Rotation.random(2, random_state=1).as_matrix()
    t = rng.normal(size=(2, 3))
    dst = np.einsum("bij,bpj->bpi", R, src) + t[:, None]
    R_est, t_est = kabsch_batched(src, dst)
    assert np.allclose(R_est, R, atol=1e-9) and np.allclose(t_est, t, atol=1e-9)


def test_hypotheses_then_icp_recover_the_pose_of_a_rendered_object(load_ycb):
    model = load_ycb("006_mustard_bottle")
    scene = make_scene([model], np.random.default_rng(7))
    segment = segment_depth(scene.depth_m, INTRINSICS).segments[0]
    cfg = RegistrationConfig()
    patch = prepare_patch(segment.points_m, model, cfg)
    index = ModelIndex(model)
    hyps = compatibility_hypotheses(index, patch, cfg)
    assert 1 <= len(hyps) <= cfg.n_hypotheses
    refined = [refine_icp(index, patch.icp_points, T, cfg) for T, _ in hyps]
    errors = [add_s_m(model.dense_points, T, scene.poses[0]) / model.diameter_m for T, _, _ in refined]
    assert min(errors) < 0.05


def test_icp_converges_from_a_perturbed_pose(load_ycb):
    model = load_ycb("004_sugar_box")
    scene = make_scene([model], np.random.default_rng(2), noise=False)
    segment = segment_depth(scene.depth_m, INTRINSICS).segments[0]
    T0 = scene.poses[0].copy()
    T0[:3, :3] = Rotation.from_euler("xyz", [6, -5, 8], degrees=True).as_matrix() @ T0[:3, :3]
    T0[:3, 3] += [0.01, -0.008, 0.01]
    T, fitness, rmse = refine_icp(ModelIndex(model), segment.points_m, T0, RegistrationConfig())
    assert add_s_m(model.dense_points, T, scene.poses[0]) < 0.003
    assert fitness > 0.9 and rmse < 0.003


def test_principal_axis_flips_are_half_turns_that_keep_a_box_on_itself():
    # SYNTHETIC: a regular grid filling an axis-aligned 0.2 x 0.1 x 0.05 m box, off the origin.
    g = np.stack(np.meshgrid(*[np.linspace(-0.5, 0.5, 11)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pts = g * [0.2, 0.1, 0.05] + [0.3, -0.1, 0.02]
    flips = principal_axis_flips(pts)
    assert flips.shape == (3, 4, 4)
    for F in flips:
        R = F[:3, :3]
        assert np.allclose(R @ R, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(R), 1.0)
        assert np.allclose(np.trace(R), -1.0)  # a rotation by pi
        moved = pts @ R.T + F[:3, 3]
        assert np.allclose(moved.mean(0), pts.mean(0), atol=1e-9)  # about axes through the centroid
        assert np.allclose(moved.min(0), pts.min(0), atol=1e-9) and np.allclose(moved.max(0), pts.max(0), atol=1e-9)


def test_distinct_poses_merges_converged_hypotheses():
    T = np.eye(4)
    near = np.eye(4)
    near[:3, :3] = Rotation.from_euler("z", 2, degrees=True).as_matrix()
    near[0, 3] = 0.002
    turned = np.eye(4)
    turned[:3, :3] = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    assert distinct_poses([T, near, turned, T], diameter_m=0.2, min_angle_deg=5.0, min_shift_fraction=0.05) == [0, 2]


def test_two_way_icp_pulls_back_a_pose_that_slid_out_over_free_space(tmp_path):
    """SYNTHETIC: a flat-faced 0.21 x 0.16 x 0.07 m box (a trimesh primitive) seen squarely from the front, one
    face visible, its left part hidden by an occluder. Sliding the pose right along that face keeps every observed
    point on the model (nothing is seen beyond its left end), so one-way scene->model ICP has no reason to move;
    the model part that now hangs over seen background (a wall behind) does, in the two-way ICP."""
    import trimesh

    path = tmp_path / "box.stl"
    trimesh.creation.box(extents=(0.21, 0.16, 0.07)).export(path)
    model = load_object_model("box", str(path), symmetry="none", cache_dir=tmp_path)
    T_true = np.eye(4)
    T_true[:3, :3] = np.diag([1.0, -1.0, -1.0])  # +z face towards the camera
    T_true[:3, 3] = [0.0, 0.0, 0.7]
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    wall = (np.array([[-2, -2, 0.9], [2, -2, 0.9], [2, 2, 0.9], [-2, 2, 0.9]], float), quad)
    occluder = (np.array([[-1, -1, 0.5], [-0.015, -1, 0.5], [-0.015, 1, 0.5], [-1, 1, 0.5]]), quad)
    depth, ids = render_depth([(model, T_true), (wall, np.eye(4)), (occluder, np.eye(4))], INTRINSICS)
    depth = depth.astype(np.float32)
    depth[~(depth > 0)] = np.nan
    v, u = np.nonzero(ids == 0)
    pts = backproject(np.stack([u, v], 1), depth[v, u], INTRINSICS.K)[::7]
    T0 = T_true.copy()
    T0[:3, 3] += [0.02, 0.0, 0.0]  # slid right along the visible face
    cfg = RegistrationConfig()
    index = ModelIndex(model)
    T_one, _, _ = refine_icp(index, pts, T0, cfg)
    T_two = refine_icp_visible(index, pts, T0, depth, INTRINSICS.K, cfg, tau_m=0.01)
    assert np.linalg.norm(T_one[:3, 3] - T_true[:3, 3]) > 0.015  # the one-way ICP stays where it was put
    assert np.linalg.norm(T_two[:3, 3] - T_true[:3, 3]) < 0.004
    assert np.allclose(T_two[:3, :3], T_true[:3, :3], atol=0.02)


def test_free_space_consistency_prefers_the_true_pose(load_ycb):
    model = load_ycb("004_sugar_box")
    scene = make_scene([model], np.random.default_rng(2), noise=False)
    depth = scene.depth_m.astype(np.float32)
    depth[~(depth > 0)] = np.nan
    index = ModelIndex(model)
    T_true = scene.poses[0]
    T_side = T_true.copy()
    T_side[:3, 3] += [0.5 * model.diameter_m, 0.0, 0.0]  # over the table/background beside the box
    good = free_space_consistency(index, T_true, depth, INTRINSICS.K, 0.01)
    bad = free_space_consistency(index, T_side, depth, INTRINSICS.K, 0.01)
    assert good > 0.9 and bad < 0.5


def test_batched_icp_refines_each_hypothesis_as_if_alone(load_ycb):
    """A batch mixing a perturbed true pose with one far off the segment (it loses its correspondences) gives the
    perturbed one exactly the result it gets alone, and the lost one fitness 0, in both ICPs."""
    model = load_ycb("004_sugar_box")
    scene = make_scene([model], np.random.default_rng(2))
    depth = scene.depth_m.astype(np.float32)
    segment = segment_depth(depth, INTRINSICS).segments[0]
    pts = segment.points_m[::5]
    T0 = scene.poses[0].copy()
    T0[:3, :3] = Rotation.from_euler("xyz", [6, -5, 8], degrees=True).as_matrix() @ T0[:3, :3]
    T0[:3, 3] += [0.01, -0.008, 0.01]
    T_lost = T0.copy()
    T_lost[:3, 3] += [1.0, 0.0, 0.0]
    cfg = RegistrationConfig()
    index = ModelIndex(model)
    T_alone, fit_alone, _ = refine_icp(index, pts, T0, cfg)
    T_b, fit_b, _ = refine_icp(index, pts, np.stack([T_lost, T0, T0]), cfg)
    assert fit_b[0] == 0.0 and np.allclose(T_b[0], T_lost)
    assert np.allclose(T_b[1], T_alone, atol=1e-9) and np.allclose(T_b[2], T_alone, atol=1e-9)
    assert fit_b[1] == fit_alone > 0.9
    assert add_s_m(model.dense_points, T_alone, scene.poses[0]) < 0.003
    V_alone = refine_icp_visible(index, pts, T0, depth, INTRINSICS.K, cfg, tau_m=0.01)
    V_b = refine_icp_visible(index, pts, np.stack([T_lost, T0]), depth, INTRINSICS.K, cfg, tau_m=0.01)
    assert V_b.shape == (2, 4, 4) and np.allclose(V_b[0], T_lost) and np.allclose(V_b[1], V_alone, atol=1e-9)


def test_both_icps_give_the_same_pose_with_the_gpu_nearest_search(load_ycb):
    """The CUDA path's nearest-sample search (torch, run here on the CPU) leaves both ICPs' results as the
    KD-tree's, from a perturbed pose and over a batch."""
    pytest.importorskip("torch")
    model = load_ycb("004_sugar_box")
    scene = make_scene([model], np.random.default_rng(2))
    depth = scene.depth_m.astype(np.float32)
    pts = segment_depth(depth, INTRINSICS).segments[0].points_m[::5]
    T0 = scene.poses[0].copy()
    T0[:3, :3] = Rotation.from_euler("xyz", [6, -5, 8], degrees=True).as_matrix() @ T0[:3, :3]
    T0[:3, 3] += [0.01, -0.008, 0.01]
    cfg = RegistrationConfig()
    kd, gpu_path = ModelIndex(model), ModelIndex(model, device="cpu", nn_backend="torch")
    T_kd, fit_kd, _ = refine_icp(kd, pts, np.stack([T0, scene.poses[0]]), cfg)
    T_t, fit_t, _ = refine_icp(gpu_path, pts, np.stack([T0, scene.poses[0]]), cfg)
    assert np.allclose(T_t, T_kd, atol=1e-6) and np.allclose(fit_t, fit_kd, atol=1e-3)
    V_kd = refine_icp_visible(kd, pts, T0, depth, INTRINSICS.K, cfg, tau_m=0.01)
    V_t = refine_icp_visible(gpu_path, pts, T0, depth, INTRINSICS.K, cfg, tau_m=0.01)
    assert np.allclose(V_t, V_kd, atol=1e-6)
    assert add_s_m(model.dense_points, V_t, scene.poses[0]) < 0.003


def test_model_index_within_answers_exactly_as_the_kd_tree(load_ycb):
    """The distance map only decides which points skip the KD-tree: answers must be the KD-tree's, for points
    on, near, off and far off the model, at the bounds registration uses (and one beyond the map's reach)."""
    model = load_ycb("025_mug")
    index = ModelIndex(model)
    rng = np.random.default_rng(0)
    v = model.voxel_m
    near = index.dense_points[rng.integers(0, len(index.dense_points), 20000)]
    P = np.concatenate(
        [near + rng.normal(size=near.shape) * s for s in (0.2 * v, v, 3 * v)] + [rng.uniform(-0.5, 0.5, size=(2000, 3))]
    )
    for bound in (1.5 * v, 2.5 * v, 1.0 * v, 5.0 * v):
        d_kd, _ = index.dense_tree.query(P, distance_upper_bound=bound)
        assert np.array_equal(index.within(P, bound), np.isfinite(d_kd))
        assert 0.05 < np.isfinite(d_kd).mean() < 0.95  # both answers occur


def test_close_pose_pairs_decides_every_pair_as_the_scalar_tests_do():
    """The all-pairs de-duplication test equals the one-pair tests it replaced (np.linalg.norm of the shift,
    _rotation_angle), also for pairs placed within rounding of both thresholds."""
    rng = np.random.default_rng(3)
    base = Rotation.random(random_state=3).as_matrix()
    T = np.tile(np.eye(4), (40, 1, 1))
    for b in range(40):
        axis = rng.normal(size=3)
        rotvec = np.radians(rng.uniform(0, 40)) * axis / np.linalg.norm(axis)
        T[b, :3, :3] = Rotation.from_rotvec(rotvec).as_matrix() @ base
        T[b, :3, 3] = rng.normal(scale=0.02, size=3)
    # pairs exactly at the thresholds: 20 deg about z and a 3 cm shift from pose 0
    T[1] = T[0].copy()
    T[1, :3, :3] = Rotation.from_euler("z", 20.0, degrees=True).as_matrix() @ T[0, :3, :3]
    T[2] = T[0].copy()
    T[2, :3, 3] += [0.03, 0.0, 0.0]
    close = close_pose_pairs(T, 20.0, 0.03)
    for i in range(40):
        for k in range(40):
            shift = np.linalg.norm(T[i, :3, 3] - T[k, :3, 3])
            scalar = shift < 0.03 and _rotation_angle(T[i, :3, :3], T[k, :3, :3]) < 20.0
            assert close[i, k] == scalar, (i, k)
    assert close.diagonal().all()
