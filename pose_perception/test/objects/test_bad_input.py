"""Issue 15's "Bad input" list, at the estimator (the node's handling is tested in test/ros): frames with no valid
depth, a catalogue of 0 or 100 meshes, detections naming unknown objects or lying outside the image, colour and
depth of different sizes give a clear error or an empty result, and the loaded objects are kept."""

from dataclasses import replace

import numpy as np
import pytest

from scenes import INTRINSICS, make_scene
from pose_perception.objects.detections import Detection2D
from pose_perception.objects.estimator import EstimatorInputError, ObjectPoseEstimator
from pose_perception.objects.segmentation import SegmentationError


def test_no_valid_depth_and_mismatched_sizes_are_refused_and_the_models_kept(load_ycb):
    can = load_ycb("005_tomato_soup_can")
    est = ObjectPoseEstimator([can])
    rgb = np.zeros((480, 640, 3), np.uint8)
    for depth in (
        np.full((480, 640), np.nan, np.float32),
        np.zeros((480, 640), np.float32),
        np.full((480, 640), np.inf, np.float32),
        np.full((480, 640), -1.0, np.float32),
    ):
        with pytest.raises(EstimatorInputError, match="no valid pixels"):
            est.estimate(rgb, depth, INTRINSICS)
        with pytest.raises(EstimatorInputError, match="no valid pixels"):
            est.track(rgb, depth, INTRINSICS, [])
    with pytest.raises(EstimatorInputError, match="differ in size"):
        est.estimate(np.zeros((480, 320, 3), np.uint8), np.ones((480, 640), np.float32), INTRINSICS)
    with pytest.raises(EstimatorInputError, match="camera info says"):
        est.track(None, np.ones((240, 320), np.float32), INTRINSICS, [])
    assert list(est.models) == ["005_tomato_soup_can"]


def _can_scene(load_ycb):
    return make_scene([load_ycb("005_tomato_soup_can")], np.random.default_rng(3), distance_m=0.7)


def test_an_empty_catalogue_gives_empty_results(load_ycb):
    scene = _can_scene(load_ycb)
    est = ObjectPoseEstimator([])
    assert est.estimate(scene.rgb, scene.depth_m, INTRINSICS) == []
    found = ObjectPoseEstimator([load_ycb("005_tomato_soup_can")]).estimate(scene.rgb, scene.depth_m, INTRINSICS)
    assert len(found) == 1
    # tracks of objects that are not loaded (removed meanwhile) are dropped, not an error
    assert est.track(scene.rgb, scene.depth_m, INTRINSICS, found) == []


def test_detections_outside_the_image_or_of_unknown_objects_give_nothing_and_bad_boxes_a_clear_error(load_ycb):
    scene = _can_scene(load_ycb)
    est = ObjectPoseEstimator([load_ycb("005_tomato_soup_can")])
    for box, name in (
        ([700, 10, 800, 60], "005_tomato_soup_can"),
        ([-50, -50, -10, -10], None),
        ([300, 200, 100, 50], None),
        ([0, 0, 640, 480], "not_loaded"),
    ):
        assert est.estimate(scene.rgb, scene.depth_m, INTRINSICS, masks=[Detection2D(np.array(box, float), name)]) == []
    with pytest.raises(SegmentationError, match="not 4 finite"):
        est.estimate(scene.rgb, scene.depth_m, INTRINSICS, masks=[Detection2D(np.array([0, 0, np.nan, 5.0]))])
    with pytest.raises(SegmentationError, match="bool mask"):
        est.estimate(scene.rgb, scene.depth_m, INTRINSICS, masks=[np.ones((10, 10), bool)])
    assert list(est.models) == ["005_tomato_soup_can"]


def test_a_catalogue_of_100_meshes_is_searched_within_its_time_budget(load_ycb):
    """100 models (named copies of a can and a box, so every one passes the size prefilter): the search ends at the
    first copy of the can that fits well (likeliest size first) instead of trying all 100, and with a spent budget
    it starts none and says so."""
    can, box = load_ycb("005_tomato_soup_can"), load_ycb("004_sugar_box")
    models = [replace(can if i % 2 else box, name=f"m{i:03d}") for i in range(100)]
    est = ObjectPoseEstimator(models)
    assert len(est.models) == 100
    scene = _can_scene(load_ycb)
    found = est.estimate(scene.rgb, scene.depth_m, INTRINSICS)
    assert len(found) == 1 and int(found[0].name[1:]) % 2 == 1  # a copy of the can
    assert est.last_stats["searches"] < 10
    est.config = replace(est.config, time_budget_s=0.0)  # the same 100 indexes (building them is the slow part)
    assert est.estimate(scene.rgb, scene.depth_m, INTRINSICS) == []
    assert est.last_stats["searches"] == 0 and est.last_stats["skipped"] == 100
