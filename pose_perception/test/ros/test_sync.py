"""Approximate-time matching of image, depth and camera_info streams."""

import pytest

from pose_perception.ros.sync import ApproximateMatcher


def test_matches_messages_within_slop_and_uses_each_once():
    m = ApproximateMatcher(3, slop_s=0.01)
    assert m.add(0, 1.000, "img1") is None
    assert m.add(1, 1.004, "depth1") is None
    assert m.add(2, 0.998, "info1") == ["img1", "depth1", "info1"]
    # Nothing left over: the next set needs three new messages.
    assert m.add(0, 1.033, "img2") is None
    assert m.add(2, 1.034, "info2") is None
    assert m.add(1, 1.031, "depth2") == ["img2", "depth2", "info2"]


def test_sets_wider_than_slop_are_not_emitted():
    m = ApproximateMatcher(2, slop_s=0.01)
    m.add(0, 1.0, "a")
    assert m.add(1, 1.05, "b") is None


def test_late_messages_older_than_an_emitted_set_are_ignored():
    m = ApproximateMatcher(2, slop_s=0.01)
    m.add(0, 2.0, "a")
    assert m.add(1, 2.0, "b") == ["a", "b"]
    assert m.add(0, 1.5, "old") is None
    assert m.add(1, 1.5, "old") is None


def test_a_dropped_depth_frame_does_not_stall_the_stream():
    m = ApproximateMatcher(2, slop_s=0.005, queue_size=5)
    m.add(0, 1.0, "img1")  # its depth never arrives
    m.add(0, 1.1, "img2")
    assert m.add(1, 1.1, "depth2") == ["img2", "depth2"]


def test_bad_construction_is_refused():
    with pytest.raises(ValueError):
        ApproximateMatcher(0, 0.01)
