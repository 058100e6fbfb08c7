"""DeepMimic mocap clips retargeted onto the body-model groups: real motion for the synthetic bodies."""
import numpy as np
import pytest

from pose_perception.human.body_model import GROUP_NAMES, MODEL_KEYPOINT_NAMES
from pose_perception.human.mocap import (
    C_MODEL_FROM_MOCAP,
    DEFAULT_CLIPS,
    MocapError,
    available_clips,
    load_clip,
    resample,
    retarget,
)


def test_default_clips_ship_with_pybullet():
    assert set(DEFAULT_CLIPS) <= set(available_clips())
    clip = load_clip("walk")
    assert clip.num_frames > 20 and 0.01 < clip.frame_dt_s < 0.1
    assert 0.7 < clip.root_position_m[:, 1].mean() < 1.0  # pelvis height, y up in the mocap axes


def test_unknown_clip_names_the_available_ones():
    with pytest.raises(MocapError, match="walk"):
        load_clip("moonwalk")


def test_axes_change_is_a_rotation():
    np.testing.assert_allclose(C_MODEL_FROM_MOCAP @ C_MODEL_FROM_MOCAP.T, np.eye(3))
    assert np.isclose(np.linalg.det(C_MODEL_FROM_MOCAP), 1.0)


def test_resample_keeps_duration():
    clip = load_clip("run")
    slow = resample(clip, 10.0)
    assert abs(slow.num_frames / 10.0 - clip.num_frames * clip.frame_dt_s) < 0.2
    np.testing.assert_allclose(slow.root_position_m[0], clip.root_position_m[0])


def test_retargeted_walk_keeps_a_person_upright_and_stepping():
    """With the model's reference pose, a walking frame keeps the head above the pelvis and the feet below it."""
    from pose_perception.human.body_mesh import BodyMeshFitter
    import torch

    fitter = BodyMeshFitter(device="cpu")
    clip = resample(load_clip("walk"), 10.0)
    ankle_gap = []
    for i in range(clip.num_frames):
        rotvecs, translation = retarget(clip, i, fitter._ref_kp)
        assert rotvecs.shape == (len(GROUP_NAMES), 3)
        with torch.no_grad():
            kp = fitter.body.keypoints(torch.as_tensor(rotvecs), torch.as_tensor(translation),
                                       torch.as_tensor(fitter.data.default_shape)).numpy()
        k = {n: kp[j] for j, n in enumerate(MODEL_KEYPOINT_NAMES)}
        pelvis = 0.5 * (k["left_hip"] + k["right_hip"])
        assert k["nose"][2] > pelvis[2] + 0.4 and k["left_ankle"][2] < pelvis[2] - 0.5
        ankle_gap.append(k["left_ankle"][1] - k["right_ankle"][1])  # along the walking (y) axis
    assert max(ankle_gap) > 0.2 and min(ankle_gap) < -0.2  # the feet alternate
