"""SYNTHETIC scene generator: deterministic, physically placed, ground truth consistent, noise as configured."""

import numpy as np
import pytest

from pose_perception.core.frames import invert_T, transform_points
from pose_perception.evaluation.objects import synthetic as S
from pose_perception.objects.render import render_depth

# few, small distractors keep each scene quick to compose
FAST = S.SceneConfig(distractor_pool=("013_apple", "017_orange", "007_tuna_fish_can"), n_distractors=(1, 2))
TARGET = "006_mustard_bottle"


@pytest.fixture(scope="module")
def occluded_scenes():
    cfg = S.SceneConfig(**{**FAST.__dict__, "occlusion_range": (0.3, 0.5)})
    return [S.make_scene(TARGET, [5, i], cfg) for i in range(2)]


def test_same_seed_same_scene_and_other_seed_other_scene():
    a = S.make_scene(TARGET, 11, FAST)
    b = S.make_scene(TARGET, 11, FAST)
    c = S.make_scene(TARGET, 12, FAST)
    assert np.array_equal(a.rgb, b.rgb)
    assert np.array_equal(a.depth_m, b.depth_m, equal_nan=True)
    np.testing.assert_array_equal(a.object(TARGET).T_cam_obj, b.object(TARGET).T_cam_obj)
    assert not np.allclose(a.object(TARGET).T_cam_obj, c.object(TARGET).T_cam_obj)
    assert a.label.startswith("SYNTHETIC")


def test_scene_is_640x480_rgbd_with_the_target_in_range(occluded_scenes):
    for scene in occluded_scenes:
        assert scene.rgb.shape == (480, 640, 3) and scene.rgb.dtype == np.uint8
        assert scene.depth_m.shape == (480, 640) and scene.depth_m.dtype == np.float32
        obj = S.load_eval_object(TARGET)
        v_cam = transform_points(scene.object(TARGET).T_cam_obj, obj.vertices_m)
        centre = (v_cam.min(axis=0) + v_cam.max(axis=0)) / 2
        assert 0.4 <= np.linalg.norm(centre) <= 1.2
        assert [o.role for o in scene.objects].count("distractor") >= 1


def test_occlusion_fraction_is_in_the_requested_range(occluded_scenes):
    for scene in occluded_scenes:
        visible = scene.object(TARGET).visible_fraction
        assert 0.5 - 0.03 <= visible <= 0.7 + 0.03
        assert any(p.role == "occluder" for p in scene.layout.placements)


def test_ground_truth_pose_reproduces_the_target_pixels(occluded_scenes):
    scene = occluded_scenes[0]
    obj = S.load_eval_object(TARGET)
    alone, _ = render_depth([((obj.vertices_m, obj.faces), scene.object(TARGET).T_cam_obj)], scene.intrinsics)
    mask = scene.mask(TARGET)
    assert mask.sum() > 500
    np.testing.assert_allclose(scene.depth_clean_m[mask], alone[mask], atol=1e-5)


def test_objects_rest_on_the_table(occluded_scenes):
    scene = occluded_scenes[1]
    T_world_cam = invert_T(scene.layout.T_cam_world)
    for o in scene.objects:
        v_world = transform_points(T_world_cam @ o.T_cam_obj, S.load_eval_object(o.name).vertices_m)
        assert v_world[:, 2].min() == pytest.approx(0.0, abs=1e-6)


def test_negative_scene_leaves_out_the_excluded_object():
    scene = S.make_scene(
        None, 3, S.SceneConfig(distractor_pool=("013_apple", TARGET), n_distractors=(2, 2)), exclude=(TARGET,)
    )
    assert scene.object(TARGET) is None and not scene.mask(TARGET).any()
    assert scene.object("013_apple") is not None


def test_renderer_is_swappable():
    calls = []

    def counting(items, intrinsics):
        calls.append(len(items))
        return render_depth(items, intrinsics)

    S.make_scene(TARGET, 1, FAST, renderer=counting)
    assert calls


def test_unknown_object_is_a_clear_error():
    with pytest.raises(S.SyntheticSceneError, match="unknown object"):
        S.make_scene("no_such_object", 0, FAST)


# --- sensor noise -----------------------------------------------------------------------------------------------

K = np.array([[615.0, 0, 319.5], [0, 615, 239.5], [0, 0, 1]])
ONLY = S.DepthNoiseConfig.noiseless()


def test_axial_noise_has_the_configured_range_dependent_sigma():
    rng = np.random.default_rng(0)
    noise = S.DepthNoiseConfig(**{**ONLY.__dict__, "axial_a_m": 0.0012, "axial_b_per_m": 0.0019})
    for z in (0.5, 1.2):
        flat = np.full((240, 320), z, dtype=np.float32)  # fronto-parallel wall: incidence angle 0
        noisy = S.apply_depth_noise(flat, K, noise, rng)
        expected = 0.0012 + 0.0019 * (z - 0.4) ** 2
        assert np.nanstd(noisy - z) == pytest.approx(expected, rel=0.05)
        assert abs(np.nanmean(noisy - z)) < 0.1 * expected


def test_disparity_quantisation_puts_depth_on_the_stereo_grid():
    noise = S.DepthNoiseConfig(**{**ONLY.__dict__, "disparity_subpixel": 0.125, "stereo_baseline_m": 0.05})
    ramp = np.tile(np.linspace(0.5, 1.5, 320, dtype=np.float32), (8, 1))
    out = S.apply_depth_noise(ramp, K, noise, np.random.default_rng(0))
    disparity = 615.0 * 0.05 / out.astype(np.float64)
    np.testing.assert_allclose(disparity / 0.125, np.round(disparity / 0.125), atol=1e-3)
    # steps grow with z^2: at 1.5 m one subpixel is about 9 mm
    assert 0.007 < np.abs(np.diff(np.unique(out[0]))).max() < 0.012


def test_dropout_at_depth_edges_random_and_grazing_angles():
    rng = np.random.default_rng(1)
    step = np.full((200, 200), 1.0, dtype=np.float32)
    step[:, 100:] = 1.3  # a 30 cm jump
    edges = S.DepthNoiseConfig(**{**ONLY.__dict__, "edge_dropout_prob": 0.5})
    out = S.apply_depth_noise(step, K, edges, rng)
    assert np.isnan(out[:, 99:101]).mean() == pytest.approx(0.5, abs=0.08)
    assert not np.isnan(out[:, :98]).any() and not np.isnan(out[:, 102:]).any()

    speckle = S.DepthNoiseConfig(**{**ONLY.__dict__, "random_dropout_prob": 0.01})
    flat = np.full((300, 300), 1.0, dtype=np.float32)
    assert np.isnan(S.apply_depth_noise(flat, K, speckle, rng)).mean() == pytest.approx(0.01, abs=0.003)

    grazing = S.DepthNoiseConfig(**{**ONLY.__dict__, "grazing_start_deg": 70.0, "grazing_full_deg": 85.0})
    v = np.arange(200, dtype=np.float64)[:, None]
    # a plane seen at ~80 degrees incidence: depth grows fast along the rows
    tilted = np.repeat((1.0 + 0.02 * v).astype(np.float32), 200, axis=1)
    frac = np.isnan(S.apply_depth_noise(tilted, K, grazing, rng)[5:-5, 5:-5]).mean()
    assert 0.2 < frac < 1.0
    assert not np.isnan(S.apply_depth_noise(flat, K, grazing, rng)).any()


def test_lateral_noise_frays_edges_but_not_flat_regions():
    noise = S.DepthNoiseConfig(**{**ONLY.__dict__, "lateral_px": 0.8})
    step = np.full((100, 100), 1.0, dtype=np.float32)
    step[:, 50:] = 1.3
    out = S.apply_depth_noise(step, K, noise, np.random.default_rng(2))
    assert (out[:, 48:52] != step[:, 48:52]).mean() > 0.1
    np.testing.assert_array_equal(out[:, 5:40], step[:, 5:40])


def test_rgb_is_shaded_and_the_target_has_its_own_colours(occluded_scenes):
    scene = occluded_scenes[0]
    mask = scene.mask(TARGET)
    target = scene.rgb[mask].astype(float)
    table = scene.rgb[scene.instance_ids == 0].astype(float)
    assert np.linalg.norm(target.mean(axis=0) - table.mean(axis=0)) > 20
    assert target.std(axis=0).max() > 5  # two-tone label and Lambertian shading, not a flat fill


def test_sequence_moves_only_the_target_at_the_requested_speed():
    cfg = S.SceneConfig(distractor_pool=("013_apple",), n_distractors=(1, 1), occlusion_range=(0.0, 0.0))
    frames = list(S.make_sequence(TARGET, 3, 8, cfg, speed_m_s=0.3, yaw_rate_deg_s=0.0, fps=30.0))
    T0, T2 = (f.object(TARGET).T_cam_obj for f in frames[::2])
    assert np.linalg.norm(T2[:3, 3] - T0[:3, 3]) == pytest.approx(0.3 * 2 / 30.0, rel=1e-6)
    np.testing.assert_allclose(T2[:3, :3], T0[:3, :3], atol=1e-12)
    np.testing.assert_array_equal(frames[0].object("013_apple").T_cam_obj, frames[2].object("013_apple").T_cam_obj)
    assert not np.array_equal(frames[0].depth_m, frames[2].depth_m, equal_nan=True)


def test_pybullet_meshes_are_scaled_to_metres_as_their_urdfs_say(tmp_path):
    import trimesh

    duck = S.load_eval_object("duck")
    assert 0.05 < duck.diameter_m < 0.15  # 1.65 units in the file, scale 0.05 in duck_vhacd.urdf
    path = S.mesh_file_in_metres("duck", tmp_path)
    assert path.parent == tmp_path
    np.testing.assert_allclose(trimesh.load(path, force="mesh", process=False).vertices, duck.vertices_m, atol=1e-6)
    assert S.mesh_file_in_metres("025_mug", tmp_path) == S.load_eval_object("025_mug").path  # already metres
