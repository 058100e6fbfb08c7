"""The human pose pipeline on real photos: one and three people, nobody, tiny / huge / grey images, depth of
the wrong size or all invalid, a camera model of another image size; 3D when the lifting stage is present."""

import numpy as np
import pytest

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.keypoints import FACE
from pose_perception.human.pipeline import (
    HumanInputError,
    HumanPipelineConfig,
    HumanPosePipeline,
    PipelineConfigError,
    as_rgb,
    is_same_person,
    uncovered_strips,
)
from pose_perception.evaluation.samples.photos import three_person_frame

TWO_D = HumanPipelineConfig(lift_3d=False, tracking=False, head_pose=False)


def has_module(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def pipeline():
    p = HumanPosePipeline(TWO_D)
    yield p
    p.close()


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def test_one_person_is_found_on_the_astronaut_photo(pipeline, astronaut):
    humans, timing = pipeline.process(astronaut, None, None, 0.0)
    assert len(humans) == 1
    h = humans[0]
    assert h.keypoints_uv.shape == (133, 2) and h.keypoints_3d is None and h.track_id == 0
    nose = h.keypoints_uv[0]
    assert 170 < nose[0] < 290 and 60 < nose[1] < 200
    assert set(timing) >= {"proposals", "keypoints", "lifting", "tracking", "head", "mesh", "total"}
    assert timing["total"] >= timing["proposals"] + timing["keypoints"] - 1e-6


def test_three_people_side_by_side_are_all_found(pipeline):
    frame = three_person_frame(640, 480)
    humans, _ = pipeline.process(frame, None, None, 0.0)
    assert len(humans) == 3
    centres = sorted(float(np.nanmedian(h.keypoints_uv[:5, 0])) for h in humans)  # head x of each person
    assert centres[0] < 213 < centres[1] < 427 < centres[2]
    assert sorted(h.track_id for h in humans) == [0, 1, 2]


def test_max_people_caps_the_result(astronaut):
    p = HumanPosePipeline(HumanPipelineConfig(lift_3d=False, tracking=False, head_pose=False, max_people=1))
    try:
        assert len(p.process(three_person_frame(), None, None, 0.0)[0]) == 1
    finally:
        p.close()


def test_nobody_tiny_and_blank_images_give_empty_results(pipeline):
    from skimage import data

    assert pipeline.process(data.coffee(), None, None, 0.0)[0] == []
    assert pipeline.process(np.zeros((480, 640, 3), np.uint8), None, None, 0.0)[0] == []
    assert pipeline.process(np.zeros((8, 8, 3), np.uint8), None, None, 0.0)[0] == []
    assert pipeline.process(np.zeros((1, 4000), np.uint8), None, None, 0.0)[0] == []


def test_grey_and_huge_images_work_and_report_input_pixels(pipeline, astronaut):
    import cv2

    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    humans, _ = pipeline.process(grey, None, None, 0.0)
    assert len(humans) == 1
    huge = cv2.resize(astronaut, (4096, 4096), interpolation=cv2.INTER_LINEAR)  # 8x: downscaled inside
    humans, _ = pipeline.process(huge, None, None, 0.0)
    assert len(humans) == 1
    nose = humans[0].keypoints_uv[0] / 8.0
    assert 170 < nose[0] < 290 and 60 < nose[1] < 200


def test_bad_inputs_are_refused_with_clear_errors(pipeline, astronaut):
    with pytest.raises(HumanInputError, match="registered"):
        pipeline.process(astronaut, np.ones((10, 10), np.float32), None, 0.0)
    K = CameraIntrinsics.default_for_size(640, 480)
    with pytest.raises(HumanInputError, match="camera info is for 640x480"):
        pipeline.process(astronaut, None, K, 0.0)
    with pytest.raises(HumanInputError, match="channels"):
        pipeline.process(np.zeros((20, 20, 5), np.uint8), None, None, 0.0)
    with pytest.raises(HumanInputError):
        pipeline.process(np.zeros((0, 0, 3), np.uint8), None, None, 0.0)
    with pytest.raises(HumanInputError, match="dtype"):
        pipeline.process(np.zeros((20, 20, 3), np.int64), None, None, 0.0)


def test_all_invalid_depth_does_not_break_2d(pipeline, astronaut):
    depth = np.full(astronaut.shape[:2], np.nan, np.float32)
    humans, _ = pipeline.process(astronaut, depth, CameraIntrinsics.default_for_size(512, 512), 0.0)
    assert len(humans) == 1


def test_config_errors_are_specific():
    with pytest.raises(PipelineConfigError, match="backend"):
        HumanPosePipeline(HumanPipelineConfig(backend="openpose"))
    with pytest.raises(PipelineConfigError, match="max_people"):
        HumanPosePipeline(HumanPipelineConfig(max_people=0))
    with pytest.raises(PipelineConfigError, match="full_frame_search"):
        HumanPosePipeline(
            HumanPipelineConfig(
                proposer="none", full_frame_search=False, lift_3d=False, tracking=False, head_pose=False
            )
        )


def test_image_conversions():
    assert as_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.full((4, 5, 1), 65535, np.uint16))[0, 0, 0] == 255
    assert as_rgb(np.ones((4, 5, 4), np.float32)).shape == (4, 5, 3)


def test_box_helpers():
    a = np.array([0, 0, 100, 200.0])
    assert is_same_person(a, np.array([10, 10, 90, 150.0]), 0.4)  # mostly inside
    assert not is_same_person(a, np.array([90, 0, 190, 200.0]), 0.4)
    assert uncovered_strips([np.array([100, 0, 200, 10.0])], 640, 50) == [(200.0, 640.0), (0.0, 100.0)]
    assert uncovered_strips([], 640, 50) == [(0.0, 640.0)]


@pytest.mark.skipif(not has_module("pose_perception.human.lifting"), reason="3D lifting (area human3d) not merged")
def test_3d_from_world_landmarks_without_depth(astronaut):
    p = HumanPosePipeline(HumanPipelineConfig(tracking=False, head_pose=False))
    try:
        K = CameraIntrinsics.default_for_size(512, 512)
        humans, _ = p.process(astronaut, None, K, 0.0)
        h = humans[0]
        assert h.keypoints_3d is not None and h.keypoints_3d.shape == (133, 3)
        ok = np.isfinite(h.keypoints_3d[:17]).all(axis=1)
        assert ok[5] and ok[6] and 0.2 < np.linalg.norm(h.keypoints_3d[5] - h.keypoints_3d[6]) < 0.6
        assert np.all(h.keypoints_3d[:17][ok][:, 2] > 0)  # in front of the camera
    finally:
        p.close()


@pytest.mark.skipif(not has_module("pose_perception.human.lifting"), reason="3D lifting (area human3d) not merged")
def test_3d_from_depth_sits_at_the_depth_of_the_person(astronaut):
    p = HumanPosePipeline(HumanPipelineConfig(tracking=False, head_pose=False))
    try:
        K = CameraIntrinsics.default_for_size(512, 512)
        depth = np.full((512, 512), 1.8, np.float32)  # a flat person-sized plane at 1.8 m (synthetic depth)
        humans, _ = p.process(astronaut, depth, K, 0.0)
        h = humans[0]
        assert int(h.source) == 1
        z = h.keypoints_3d[:7, 2]
        assert np.nanmedian(z) == pytest.approx(1.8, abs=0.05)
    finally:
        p.close()


@pytest.mark.skipif(not has_module("pose_perception.human.head"), reason="head pose (area human3d) not merged")
def test_head_frame_looks_at_the_camera(astronaut):
    p = HumanPosePipeline(HumanPipelineConfig(tracking=False, lift_3d=False))
    try:
        humans, _ = p.process(astronaut, None, CameraIntrinsics.default_for_size(512, 512), 0.0)
        T = humans[0].T_sensor_head
        assert T is not None and np.isfinite(humans[0].keypoints_uv[FACE]).all()
        assert T[2, 0] < -0.7  # x (out of the face) points back towards the camera (-z)
    finally:
        p.close()


def test_three_people_stay_tracked_in_video_with_a_bounded_search():
    # Node settings: search every 3rd frame, one backend run per search; the tracker confirms after 3 hits.
    p = HumanPosePipeline(
        HumanPipelineConfig(
            lift_3d=False, head_pose=False, search_period=3, search_calls_per_frame=1, max_search_backoff=8
        )
    )
    try:
        frame = three_person_frame()
        runs = [p.process(frame, None, None, 0.1 * i) for i in range(9)]
        counts = [len(humans) for humans, _ in runs]
        assert counts[-3:] == [3, 3, 3], counts
        # A proposal round every 3rd frame: the first frame's on its own, the others on the finder's thread while
        # the three are followed (finder_overlap), each timed by itself.
        assert [t["proposals"] > 0 for _, t in runs] == [True, False, False] * 3, [t["proposals"] for _, t in runs]
    finally:
        p.close()


def test_fruitless_searches_back_off_in_video(astronaut):
    p = HumanPosePipeline(
        HumanPipelineConfig(
            lift_3d=False, head_pose=False, search_period=1, search_calls_per_frame=1, max_search_backoff=4
        )
    )
    calls = []
    estimate = p.backend.estimate
    p.backend.estimate = lambda im, box, lane=None, *a, **kw: (calls.append(box), estimate(im, box, lane, *a, **kw))[1]
    try:
        for i in range(16):
            p.process(astronaut, None, None, 0.1 * i)
        # 16 runs following the astronaut; without back-off also 16 search runs and 32 runs on the two false
        # face proposals of this photo (each frame), with it far fewer.
        assert len(calls) - 16 <= 14, len(calls)
        assert p._search_backoff == 4
    finally:
        p.close()


def test_people_found_are_followed_in_lanes_and_a_scene_cut_leaves_no_ghost(astronaut):
    from skimage import data

    p = HumanPosePipeline(
        HumanPipelineConfig(
            lift_3d=False,
            head_pose=False,
            tracking=False,
            search_period=3,
            search_calls_per_frame=1,
            max_search_backoff=8,
        )
    )
    lanes = []
    estimate = p.backend.estimate
    p.backend.estimate = lambda im, box, lane=None, *a, **kw: (lanes.append(lane), estimate(im, box, lane, *a, **kw))[1]
    try:
        counts = [len(p.process(three_person_frame(), None, None, 0.1 * i)[0]) for i in range(6)]
        assert counts[-1] == 3, counts
        lanes.clear()
        assert len(p.process(three_person_frame(), None, None, 0.6)[0]) == 3
        assert sorted(lanes) == [0, 1, 2]  # each person followed in their own lane, no fresh detection
        # After a cut to a scene without people, no lane goes on "finding" someone in the clutter.
        assert p.process(data.coffee(), None, None, 0.7)[0] == []
        assert p.process(data.coffee(), None, None, 0.8)[0] == []
    finally:
        p.close()
