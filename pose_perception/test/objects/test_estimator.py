"""ObjectPoseEstimator: finds known meshes in RGB-D (synthetic renders of real YCB meshes), reports nothing
when the object is absent, separates instances, tracks, and refuses unusable input with clear errors."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenes import INTRINSICS, add_s_m, make_scene
from pose_perception.objects.estimator import (
    EstimationCancelled,
    EstimatorInputError,
    ObjectPoseEstimator,
    UnknownObjectError,
    canonical_symmetric_pose,
)
from pose_perception.objects.model import load_object_model
from pose_perception.objects.render import render_depth


def _adds_fraction(model, pose, T_gt):
    return add_s_m(model.dense_points, pose.T_cam_obj, T_gt) / model.diameter_m


@pytest.mark.parametrize("name, seed", [("025_mug", 11), ("003_cracker_box", 12), ("011_banana", 13)])
def test_recovers_a_known_pose(load_ycb, name, seed):
    model = load_ycb(name)
    scene = make_scene([model], np.random.default_rng(seed), distance_m=0.8)
    found = ObjectPoseEstimator([model]).estimate(scene.rgb, scene.depth_m, INTRINSICS)
    assert len(found) == 1
    pose = found[0]
    assert pose.name == name and pose.instance == 0
    assert _adds_fraction(model, pose, scene.poses[0]) < 0.1
    assert 0.7 <= pose.score <= 1.0
    assert np.allclose(pose.T_cam_obj[:3, :3] @ pose.T_cam_obj[:3, :3].T, np.eye(3), atol=1e-6)
    assert pose.mesh_uri.startswith("file://")


def test_finds_the_right_object_among_distractors(load_ycb):
    mug, box, can = load_ycb("025_mug"), load_ycb("004_sugar_box"), load_ycb("005_tomato_soup_can")
    scene = make_scene([box, mug, can], np.random.default_rng(21), distance_m=0.9)
    found = ObjectPoseEstimator([mug]).estimate(scene.rgb, scene.depth_m, INTRINSICS)
    assert [p.name for p in found] == ["025_mug"]
    assert _adds_fraction(mug, found[0], scene.poses[1]) < 0.1


def test_absent_object_is_not_reported(load_ycb):
    # Similar shapes of other sizes are present: a smaller can and box could be fitted into their surfaces.
    targets = [load_ycb("005_tomato_soup_can"), load_ycb("008_pudding_box")]
    others = [load_ycb("002_master_chef_can"), load_ycb("003_cracker_box"), load_ycb("006_mustard_bottle")]
    estimator = ObjectPoseEstimator(targets)
    for seed in (31, 32):
        scene = make_scene(others, np.random.default_rng(seed), distance_m=0.9)
        assert estimator.estimate(scene.rgb, scene.depth_m, INTRINSICS) == []


def test_two_instances_get_instance_numbers(load_ycb):
    can = load_ycb("005_tomato_soup_can")
    scene = make_scene([can, can], np.random.default_rng(41), distance_m=0.7, gap_m=0.06)
    found = ObjectPoseEstimator([can]).estimate(None, scene.depth_m, INTRINSICS)
    assert sorted(p.instance for p in found) == [0, 1]
    for T in scene.poses:
        assert min(_adds_fraction(can, p, T) for p in found) < 0.1


def test_tracking_follows_motion_keeps_instance_and_redetects_after_loss(load_ycb):
    model = load_ycb("006_mustard_bottle")
    rng = np.random.default_rng(51)
    scene = make_scene([model], rng, distance_m=0.8)
    estimator = ObjectPoseEstimator([model])
    poses = estimator.estimate(None, scene.depth_m, INTRINSICS)
    assert len(poses) == 1
    plane = (np.array([[-2, -2, 0], [2, -2, 0], [2, 2, 0], [-2, 2, 0]], float), np.array([[0, 1, 2], [0, 2, 3]]))
    T = scene.poses[0].copy()
    step = np.eye(4)
    step[:3, :3] = Rotation.from_euler("y", 3, degrees=True).as_matrix()
    step[:3, 3] = [0.005, 0.0, 0.003]
    for _ in range(4):
        T = T @ step
        depth, _ = render_depth([(model, T), (plane, scene.T_cam_world)], INTRINSICS)
        poses = estimator.track(None, depth, INTRINSICS, poses)
        assert len(poses) == 1 and poses[0].instance == 0
        assert _adds_fraction(model, poses[0], T) < 0.05
    # The object jumps far away: the track is lost and the object found again by re-detection.
    T_jump = T.copy()
    T_jump[:3, 3] += scene.T_cam_world[:3, :3] @ np.array([0.25, 0.1, 0.0])
    depth, _ = render_depth([(model, T_jump), (plane, scene.T_cam_world)], INTRINSICS)
    poses = estimator.track(None, depth, INTRINSICS, poses)
    assert len(poses) == 1 and _adds_fraction(model, poses[0], T_jump) < 0.1


def test_unusable_input_raises_clear_errors(load_ycb):
    estimator = ObjectPoseEstimator([load_ycb("025_mug")])
    nan = np.full((480, 640), np.nan, np.float32)
    with pytest.raises(EstimatorInputError, match="no valid pixels"):
        estimator.estimate(None, nan, INTRINSICS)
    with pytest.raises(EstimatorInputError, match="no valid pixels"):
        estimator.estimate(None, np.zeros((480, 640), np.float32), INTRINSICS)
    with pytest.raises(EstimatorInputError, match="camera info says"):
        estimator.estimate(None, np.ones((240, 320), np.float32), INTRINSICS)
    with pytest.raises(EstimatorInputError, match="differ in size"):
        estimator.estimate(np.zeros((240, 320, 3), np.uint8), np.ones((480, 640), np.float32), INTRINSICS)
    with pytest.raises(EstimatorInputError, match=r"\(H, W\)"):
        estimator.estimate(None, np.ones((480, 640, 1), np.float32), INTRINSICS)


def test_models_can_be_added_and_removed(load_ycb):
    estimator = ObjectPoseEstimator([])
    assert estimator.estimate(None, np.ones((480, 640), np.float32), INTRINSICS) == []
    estimator.add_model(load_ycb("025_mug"))
    assert list(estimator.models) == ["025_mug"]
    estimator.remove_model("025_mug")
    with pytest.raises(UnknownObjectError, match="not loaded"):
        estimator.remove_model("025_mug")


def test_a_call_under_way_keeps_the_models_it_started_with(load_ycb):
    """A node's service thread may remove a model while a search runs on another thread: the search neither fails
    nor loses its finds; later calls no longer see the model."""
    mug, box = load_ycb("025_mug"), load_ycb("004_sugar_box")
    scene = make_scene([mug], np.random.default_rng(11), distance_m=0.8)
    estimator = ObjectPoseEstimator([box, mug])
    search_one_model = estimator._coarse_search

    def removed_meanwhile(index, *args):
        if "025_mug" in estimator.models:
            estimator.remove_model("025_mug")
        return search_one_model(index, *args)

    estimator._coarse_search = removed_meanwhile
    found = estimator.estimate(None, scene.depth_m, INTRINSICS)
    assert [p.name for p in found] == ["025_mug"]
    assert list(estimator.models) == ["004_sugar_box"]
    assert estimator.track(None, scene.depth_m, INTRINSICS, found) == []
    assert estimator.merge([], found) == []


def test_every_symmetric_equivalent_of_a_box_pose_gets_the_same_frame(tmp_path):
    """SYNTHETIC: a trimesh box, detected as its whole half-turn group. Whichever of the 4 equivalent poses the
    search ends in, the published frame is the same one, so a planner never sees the box's frame flip."""
    import trimesh

    path = tmp_path / "box.stl"
    trimesh.creation.box(extents=(0.21, 0.16, 0.07)).export(path)
    model = load_object_model("box", str(path), symmetry="auto", cache_dir=tmp_path)
    assert len(model.symmetry_transforms) == 4
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    T[:3, 3] = [0.05, -0.02, 0.7]
    frames = [canonical_symmetric_pose(model, T @ S) for S in model.symmetry_transforms]
    assert all(np.allclose(F, frames[0], atol=1e-9) for F in frames)
    # and tracking keeps the frame nearest the previous one
    for S in model.symmetry_transforms:
        assert np.allclose(canonical_symmetric_pose(model, T @ S, reference=T), T, atol=1e-9)


def test_a_cancelled_estimate_stops_before_searching(load_ycb):
    model = load_ycb("006_mustard_bottle")
    scene = make_scene([model], np.random.default_rng(3))
    estimator = ObjectPoseEstimator([model])
    asked = []
    with pytest.raises(EstimationCancelled):
        estimator.estimate(None, scene.depth_m, INTRINSICS, cancelled=lambda: asked.append(1) or True)
    assert asked == [1]
    assert len(estimator.estimate(None, scene.depth_m, INTRINSICS, cancelled=lambda: False)) == 1
