"""The demo's camera clips play forwards then backwards, so a moving object never jumps back to its start."""

import numpy as np

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.evaluation.samples.streams import CameraStream, RgbdFrame


def _clip(n):
    frames = tuple(RgbdFrame(np.zeros((2, 2, 3), np.uint8)) for _ in range(n))
    return CameraStream("test", frames, CameraIntrinsics.default_for_size(2, 2), "test")


def test_a_clip_plays_forwards_then_backwards_without_repeating_its_ends():
    assert [_clip(4).index_of_publication(k) for k in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]


def test_consecutive_publications_are_at_most_one_frame_apart():
    clip = _clip(5)
    steps = np.abs(np.diff([clip.index_of_publication(k) for k in range(40)]))
    assert steps.max() == 1


def test_a_one_frame_clip_repeats_it():
    assert {_clip(1).index_of_publication(k) for k in range(5)} == {0}
