"""Candidate segments: support-plane removal + clustering, or the masks/boxes a detector gives."""

import numpy as np
import pytest

from scenes import INTRINSICS, make_scene
from pose_perception.objects.segmentation import SegmentationError, segment_depth


@pytest.fixture(scope="module")
def two_objects(load_ycb):
    return make_scene([load_ycb("025_mug"), load_ycb("003_cracker_box")], np.random.default_rng(3), gap_m=0.08)


def test_plane_is_removed_and_each_object_is_one_segment(two_objects):
    seg = segment_depth(two_objects.depth_m, INTRINSICS)
    assert seg.plane is not None
    assert len(seg.segments) == 2
    H, W = two_objects.depth_m.shape
    for s in seg.segments:
        ids = two_objects.instance_ids.ravel()[s.pixel_index]
        # nearly all of a segment is one object (a few table pixels at the contact line may stick)
        assert np.bincount(ids[ids >= 0]).max() > 0.95 * len(ids)
        u0, v0, u1, v1 = s.bbox_xyxy
        assert 0 <= u0 < u1 <= W and 0 <= v0 < v1 <= H


def test_masks_and_boxes_select_their_object(two_objects):
    mask = two_objects.instance_ids == 1
    v, u = np.nonzero(two_objects.instance_ids == 0)
    box = np.array([u.min(), v.min(), u.max() + 1, v.max() + 1])
    seg = segment_depth(two_objects.depth_m, INTRINSICS, masks=[mask, box])
    assert len(seg.segments) == 2
    ids0 = two_objects.instance_ids.ravel()[seg.segments[0].pixel_index]
    ids1 = two_objects.instance_ids.ravel()[seg.segments[1].pixel_index]
    assert np.all(ids0 == 1)
    assert np.mean(ids1 == 0) > 0.95


def test_bad_mask_shape_is_refused(two_objects):
    with pytest.raises(SegmentationError, match="mask 0"):
        segment_depth(two_objects.depth_m, INTRINSICS, masks=[np.ones((10, 10), bool)])


def test_empty_depth_gives_no_segments():
    seg = segment_depth(np.full((480, 640), np.nan, np.float32), INTRINSICS)
    assert seg.segments == [] and seg.plane is None


def test_a_box_keeps_a_thin_object_lying_on_the_table():
    # Scissors-like: 8 mm above the table, inside the plane tolerance (12 mm), so plane removal takes all of it; in a
    # box that the plane emptied, the points a few mm above the table around them are kept (REAL: the scissors).
    rng = np.random.default_rng(0)
    depth = (0.8 + rng.normal(0.0, 0.001, (480, 640))).astype(np.float32)
    slab = np.zeros((480, 640), bool)
    slab[300:340, 250:370] = True
    depth[slab] -= 0.008
    seg = segment_depth(depth, INTRINSICS, masks=[np.array([220, 270, 400, 370])])
    assert seg.plane is not None
    assert len(seg.segments) == 1
    on_slab = slab.ravel()[seg.segments[0].pixel_index]
    assert on_slab.mean() > 0.95
    assert on_slab.sum() > 0.8 * slab[::2, ::2].sum()
    # own segmentation (no box) still removes it with the table: a depth-only segmenter cannot tell it from noise
    assert segment_depth(depth, INTRINSICS).segments == []
