"""Mocap sequences: DeepMimic clips posed onto anny frame after frame (SYNTHETIC), at a chosen rate."""

import numpy as np
import pytest

from pose_perception.human.body_model import MODEL_KEYPOINT_NAMES
from pose_perception.evaluation.human.mocap import DEFAULT_CLIPS, clip_bodies, clip_length
from pose_perception.evaluation.human.synthetic import MOCAP_CLIPS, AnnyPoser, SyntheticDataError


def test_default_clips_are_upright_clips_that_ship():
    assert set(DEFAULT_CLIPS) <= set(MOCAP_CLIPS)
    assert 10 <= clip_length("walk", 10.0) <= 15 and clip_length("walk", 30.0) == 39  # 1.3 s clip


def test_a_walk_is_a_sequence_of_upright_stepping_bodies():
    poser = AnnyPoser()
    bodies = clip_bodies(poser, "walk", 10.0, 13, {})
    assert len(bodies) == 13
    np.testing.assert_allclose([t for t, _, _ in bodies], np.arange(13) / 10.0)
    k = {n: i for i, n in enumerate(MODEL_KEYPOINT_NAMES)}
    gaps = []
    for _, vertices, keypoints in bodies:
        assert np.isfinite(keypoints).all() and abs(vertices[:, 2].min()) < 1e-6  # feet on the floor
        pelvis = 0.5 * (keypoints[k["left_hip"]] + keypoints[k["right_hip"]])
        assert keypoints[k["nose"]][2] > pelvis[2] + 0.4 > keypoints[k["left_ankle"]][2] + 0.4
        step = keypoints[k["left_ankle"]] - keypoints[k["right_ankle"]]
        gaps.append(np.linalg.norm(step[:2]))
    assert max(gaps) - min(gaps) > 0.2  # the feet swing past each other
    with pytest.raises(SyntheticDataError):
        clip_bodies(poser, "moonwalk", 10.0, 3, {})
