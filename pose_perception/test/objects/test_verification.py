"""Render-and-compare verification: true poses score high; shifted poses, smaller models fitted into a larger
object's surface and poses over missing depth score low; the torch scoring path agrees with numpy."""

import numpy as np
import pytest

from scenes import INTRINSICS, make_scene
from pose_perception.objects.segmentation import segment_depth
from pose_perception.objects.verification import (
    VerificationConfig,
    _scores_numpy,
    _scores_torch,
    observed_normals,
    verify_hypotheses,
)


@pytest.fixture(scope="module")
def can_scene(load_ycb):
    return make_scene([load_ycb("002_master_chef_can")], np.random.default_rng(5))


def _true_and_shifted(model, scene):
    """The true pose of the scene's object and one shifted sideways by 0.3 diameters; the support plane."""
    plane = segment_depth(scene.depth_m, INTRINSICS).plane
    T_true = scene.poses[0]
    T_shift = T_true.copy()
    T_shift[:3, 3] += [0.3 * model.diameter_m, 0, 0]
    return T_true, T_shift, plane


def test_true_pose_scores_high_and_shifted_pose_low(load_ycb, can_scene):
    model = load_ycb("002_master_chef_can")
    T_true, T_shift, plane = _true_and_shifted(model, can_scene)
    T_far = T_true.copy()
    T_far[:3, 3] *= 1.3
    good, shifted, behind = verify_hypotheses(
        model, [T_true, T_shift, T_far], can_scene.depth_m, INTRINSICS, plane=plane
    )
    assert good.score > 0.85 and good.boundary > 0.9
    assert shifted.score < 0.5
    assert behind.score < 0.2  # completely hidden behind the observed can: no support at all


def test_smaller_can_inside_a_bigger_can_is_rejected(load_ycb, can_scene):
    big = load_ycb("002_master_chef_can")
    small = load_ycb("005_tomato_soup_can")
    plane = segment_depth(can_scene.depth_m, INTRINSICS).plane
    T = can_scene.poses[0].copy()
    # Put the small can's front surface where the big can's is: its surface matches, but the big can goes on
    # around its silhouette (the boundary test) or it is occluded (the visibility term).
    centre_big = T[:3, :3] @ big.centre_m + T[:3, 3]
    T_small = T.copy()
    T_small[:3, 3] = centre_big - T[:3, :3] @ small.centre_m
    toward_cam = -centre_big / np.linalg.norm(centre_big)
    T_small[:3, 3] += toward_cam * (big.bbox_size_m[0] - small.bbox_size_m[0]) / 2
    result = verify_hypotheses(small, [T_small], can_scene.depth_m, INTRINSICS, plane=plane)[0]
    assert result.score < 0.7


def test_torch_scoring_matches_numpy():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    dr = rng.uniform(0.5, 0.6, (3, 200)).astype(np.float32)
    dr[:, :20] = np.nan
    do = (dr[0] + rng.normal(0, 0.01, 200)).astype(np.float32)
    do[190:] = np.nan
    nr = rng.normal(size=(3, 200, 3)).astype(np.float32)
    no = rng.normal(size=(200, 3)).astype(np.float32)
    cfg = VerificationConfig()
    a = _scores_numpy(dr, nr, do, no, 0.01, cfg)
    b = _scores_torch(dr, nr, do, no, 0.01, cfg, "cpu")
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_observed_normals_do_not_straddle_a_depth_step():
    """SYNTHETIC organised grid: a fronto-parallel plane at 0.6 m whose right half is a second plane at 0.7 m.
    Central differences across the step give tilted normals; the edge-aware ones stay (0, 0, -1) on both sides."""
    v, u = np.mgrid[0:20, 0:20].astype(np.float64)
    z = np.where(u < 10, 0.6, 0.7)
    pts = np.stack([(u - 10) * z / 600, (v - 10) * z / 600, z], axis=-1)
    naive = observed_normals(pts, step=2)
    aware = observed_normals(pts, step=2, max_jump_m=0.02)
    near_step = (slice(2, -2), slice(8, 12))
    assert np.nanmin(np.abs(naive[near_step][..., 2])) < 0.5  # the naive normals tilt at the step
    assert np.allclose(aware[near_step], [0.0, 0.0, -1.0], atol=1e-6)


def test_unknown_observed_normal_is_judged_by_depth_alone():
    dr = np.full((1, 4), 0.5, np.float32)
    nr = np.tile(np.array([0.0, 0.0, -1.0], np.float32), (1, 4, 1))
    do = np.full(4, 0.5, np.float32)
    no = np.array([[0, 0, -1], [1, 0, 0], [np.nan] * 3, [np.nan] * 3], np.float32)
    n_r, n_m, n_v, n_o, n_w, _ = _scores_numpy(dr, nr, do, no, 0.01, VerificationConfig())
    assert (n_r[0], n_m[0], n_w[0]) == (4, 3, 1)  # the perpendicular normal is wrong; unknown ones match


def test_min_score_skips_the_costly_tests_only_where_the_score_cannot_reach_it(load_ycb, can_scene):
    model = load_ycb("002_master_chef_can")
    T_true, T_shift, plane = _true_and_shifted(model, can_scene)
    poses = [T_true, T_shift]
    full = verify_hypotheses(model, poses, can_scene.depth_m, INTRINSICS, plane=plane)
    fast = verify_hypotheses(model, poses, can_scene.depth_m, INTRINSICS, plane=plane, min_score=0.7)
    assert fast[0] == full[0]  # can pass: scored in full
    assert np.isnan(fast[1].boundary) and np.isfinite(full[1].boundary)
    assert fast[1].n_missing == 0 < full[1].n_missing
    assert full[1].score <= fast[1].score < 0.7  # an upper bound, still below the threshold
    assert full[1].fit <= fast[1].fit  # missing depth not counted
    assert (fast[1].visible_fraction, fast[1].support) == (full[1].visible_fraction, full[1].support)


def _silhouette(model, T, depth_m):
    """(H, W) bool: where the model at T is rendered, and its depth (H, W) float32."""
    from pose_perception.objects.render import cast_model, pixel_rays

    dirs, _, _ = pixel_rays(INTRINSICS)
    dr, _ = cast_model(model.scene, T, dirs)
    dr = dr.reshape(depth_m.shape)
    return np.isfinite(dr), dr


def test_missing_depth_where_the_model_faces_the_camera_counts_against_it(load_ycb, can_scene):
    """A pose whose surface lies where the sensor returns nothing (beyond its range, say) is not supported by the
    pixels that happen to match: the can's middle is blanked out of the observation."""
    from scipy import ndimage

    model = load_ycb("002_master_chef_can")
    T_true, _, plane = _true_and_shifted(model, can_scene)
    inside, _ = _silhouette(model, T_true, can_scene.depth_m)
    core = ndimage.binary_erosion(inside, iterations=12)
    depth = can_scene.depth_m.copy()
    depth[core] = np.nan
    counted = verify_hypotheses(model, [T_true], depth, INTRINSICS, plane=plane)[0]
    ignored = verify_hypotheses(
        model, [T_true], depth, INTRINSICS, VerificationConfig(missing_weight=0.0), plane=plane
    )[0]
    assert counted.n_missing > 0.3 * counted.n_rendered
    assert counted.score < 0.7 <= ignored.score


def test_missing_depth_along_edges_and_occluders_is_not_counted(load_ycb, can_scene):
    """Sensors drop depth along silhouettes and beside whatever is in front: the true pose keeps its score when
    a 3 px band inside its silhouette and a 3 px band beside an occluder are blanked out."""
    from scipy import ndimage

    model = load_ycb("002_master_chef_can")
    T_true, _, plane = _true_and_shifted(model, can_scene)
    inside, dr = _silhouette(model, T_true, can_scene.depth_m)
    depth = can_scene.depth_m.copy()
    depth[inside & ~ndimage.binary_erosion(inside, iterations=3)] = np.nan
    cols = np.flatnonzero(inside.any(axis=0))
    occluder = inside & (np.arange(inside.shape[1]) < cols[0] + len(cols) // 4)[None]
    depth[occluder] = dr[occluder] - 0.1  # a post 10 cm in front of the can's left quarter
    beside = ndimage.binary_dilation(occluder, iterations=3) & ~occluder & inside
    depth[beside] = np.nan
    before = verify_hypotheses(model, [T_true], can_scene.depth_m, INTRINSICS, plane=plane)[0]
    result = verify_hypotheses(model, [T_true], depth, INTRINSICS, plane=plane)[0]
    blanked = np.sum(inside & ~np.isfinite(depth)) - np.sum(inside & ~np.isfinite(can_scene.depth_m))
    assert blanked > 0.05 * inside.sum()
    # the scene's random 2 % dropout is counted (stride 2); the blanked bands are not
    assert result.n_missing <= before.n_missing + 0.005 * result.n_rendered
    assert result.score > 0.85


def _cup(floor_z: float):
    """A cup 10 cm wide and 10 cm tall (walls 5 mm, open at the top, +z up) with its floor at floor_z."""
    import trimesh

    wall = trimesh.creation.annulus(r_min=0.045, r_max=0.05, height=0.1, sections=48)
    wall.apply_translation([0, 0, 0.05])
    floor = trimesh.creation.cylinder(radius=0.046, height=0.005, sections=48)
    floor.apply_translation([0, 0, floor_z])
    return trimesh.util.concatenate([wall, floor])


def test_a_hollow_model_is_not_blamed_for_what_the_camera_sees_inside_it(tmp_path, model_cache):
    # Scanned containers have a poor inside (the YCB mug's has a false floor halfway down): the camera, looking into
    # the real cup, sees its floor behind the model's. Those pixels must neither match nor violate; a solid shape
    # posed there must still be blamed for the background it covers.
    from pose_perception.objects.model import load_object_model
    from pose_perception.objects.render import render_depth

    path = tmp_path / "cup_false_floor.ply"
    _cup(0.05).export(path)
    model = load_object_model("cup", str(path), units="m", cache_dir=model_cache)
    assert model.concave_fraction > 0.1
    # the real cup (floor at the bottom) 0.5 m away, seen from 70 deg above, on a far background
    a = np.deg2rad(70)
    R = np.array([[1, 0, 0], [0, -np.sin(a), -np.cos(a)], [0, np.cos(a), -np.sin(a)]])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = [0, 0, 0.5]
    depth, _ = render_depth([(_cup(0.003), T)], INTRINSICS)
    depth = np.where(np.isfinite(depth), depth, 1.5).astype(np.float32)
    hollow = verify_hypotheses(model, [T], depth, INTRINSICS)[0]
    solid = verify_hypotheses(model, [T], depth, INTRINSICS, VerificationConfig(hollow_aware=False))[0]
    assert solid.n_violating > 0.1 * solid.n_rendered and solid.score < 0.5
    assert hollow.n_violating < 0.02 * hollow.n_rendered and hollow.score > 0.85
    shifted = T.copy()
    shifted[:3, 3] += [0.06, 0, 0]  # half off the cup: over the background
    assert verify_hypotheses(model, [shifted], depth, INTRINSICS)[0].score < 0.3
