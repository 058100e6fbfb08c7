"""The keypoint layout table: COCO-WholeBody 133 order, names, edges."""

import numpy as np
import pytest

from pose_perception.core.keypoints import (
    BODY,
    COCO_BODY_17,
    COCO_WHOLEBODY_133,
    FACE,
    FEET,
    LEFT_HAND,
    RIGHT_HAND,
    get_layout,
    pelvis,
)


def test_wholebody_has_133_unique_names_in_coco_order():
    names = COCO_WHOLEBODY_133.keypoint_names
    assert len(names) == 133 == len(set(names))
    assert names[BODY] == COCO_BODY_17.keypoint_names
    assert names[FEET.start] == "left_big_toe" and names[FEET.stop - 1] == "right_heel"
    assert FACE.stop - FACE.start == 68
    assert names[LEFT_HAND.start] == "left_hand_wrist" and names[RIGHT_HAND.stop - 1] == "right_hand_pinky_tip"
    assert RIGHT_HAND.stop == 133


def test_edges_reference_valid_keypoints_and_connect_hands_to_wrists():
    for layout in (COCO_BODY_17, COCO_WHOLEBODY_133):
        e = np.array(layout.edges)
        assert e.min() >= 0 and e.max() < layout.num_keypoints
    assert (9, LEFT_HAND.start) in COCO_WHOLEBODY_133.edges


def test_lookup_errors_are_specific():
    assert COCO_BODY_17.index("left_hip") == 11
    with pytest.raises(KeyError, match="not in layout"):
        COCO_BODY_17.index("tail")
    with pytest.raises(KeyError, match="known"):
        get_layout("openpose_25")


def test_pelvis_is_hip_midpoint():
    kp = np.zeros((17, 3))
    kp[11], kp[12] = [1, 0, 2], [-1, 0, 2]
    np.testing.assert_allclose(pelvis(kp), [0, 0, 2])


def test_body_mirror_swaps_left_and_right_and_keeps_the_nose():
    from pose_perception.core.keypoints import COCO_BODY_17_MIRROR, COCO_BODY_17_NAMES

    assert COCO_BODY_17_MIRROR[0] == 0
    for i, j in enumerate(COCO_BODY_17_MIRROR):
        assert COCO_BODY_17_MIRROR[j] == i
        if i:
            assert COCO_BODY_17_NAMES[i].split("_", 1)[1] == COCO_BODY_17_NAMES[j].split("_", 1)[1] and i != j
