"""Global registration (FPFH + compatibility-guided hypotheses) and point-to-plane ICP."""
import numpy as np
from scipy.spatial.transform import Rotation

from scenes import INTRINSICS, add_s_m, make_scene
from pose_perception.objects.registration import (
    ModelIndex,
    RegistrationConfig,
    compatibility_hypotheses,
    kabsch_batched,
    prepare_patch,
    refine_icp,
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
