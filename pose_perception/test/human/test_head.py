"""Head orientation by PnP against the face template (REP-155 head axes)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose_perception.core.camera import project
from pose_perception.core.frames import transform_points
from pose_perception.human.head import FACE_TEMPLATE_68_M, HeadPoseError, head_pose_from_face

K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
# Head frame (x forward, y left, z up) facing the camera: forward = -z_cam, left = +x_cam, up = -y_cam.
R_CAM_HEAD_FACING = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


def _T(yaw, pitch, roll, t=(0.1, -0.2, 1.5)):
    T = np.eye(4)
    T[:3, :3] = R_CAM_HEAD_FACING @ Rotation.from_euler("zyx", [yaw, pitch, roll], degrees=True).as_matrix()
    T[:3, 3] = t
    return T


def _angle_deg(Ra, Rb):
    return np.degrees(np.linalg.norm(Rotation.from_matrix(Ra.T @ Rb).as_rotvec()))


def test_template_is_a_face_in_rep155_axes():
    tip, left_eye_outer, right_eye_outer, chin = FACE_TEMPLATE_68_M[[30, 45, 36, 8]]
    assert tip[0] > 0.02  # nose tip forward
    assert left_eye_outer[1] > 0 > right_eye_outer[1]  # iBUG 45 is the subject's left
    assert chin[2] < -0.1  # chin below the eyes


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (35, 0, 0), (-30, 15, 5), (10, -20, -15), (50, 10, 0)])
def test_recovers_a_known_rotation_from_projected_template_points(yaw, pitch, roll):
    T_true = _T(yaw, pitch, roll)
    uv = project(transform_points(T_true, FACE_TEMPLATE_68_M), K)
    T = head_pose_from_face(uv, np.ones(68), K)
    assert T is not None
    assert _angle_deg(T[:3, :3], T_true[:3, :3]) < 0.5
    np.testing.assert_allclose(T[:3, 3], T_true[:3, 3], atol=5e-3)
    assert T[:3, 0] @ [0, 0, -1] > 0.5  # x forward points back at the camera


def test_pixel_noise_gives_a_few_degrees_at_most():
    rng = np.random.default_rng(3)
    T_true = _T(20, -10, 5)
    uv = project(transform_points(T_true, FACE_TEMPLATE_68_M), K) + rng.normal(scale=1.0, size=(68, 2))
    T = head_pose_from_face(uv, np.ones(68), K)
    assert T is not None and _angle_deg(T[:3, :3], T_true[:3, :3]) < 5.0


def test_only_confident_landmarks_are_used():
    T_true = _T(15, 5, 0)
    uv = project(transform_points(T_true, FACE_TEMPLATE_68_M), K)
    conf = np.ones(68)
    uv[:17] += 80.0  # a wrong jaw line, flagged as unreliable
    conf[:17] = 0.05
    T = head_pose_from_face(uv, conf, K)
    assert T is not None and _angle_deg(T[:3, :3], T_true[:3, :3]) < 0.5


def test_too_few_landmarks_or_nan_give_none():
    uv = project(transform_points(_T(0, 0, 0), FACE_TEMPLATE_68_M), K)
    conf = np.zeros(68)
    conf[:4] = 1.0
    assert head_pose_from_face(uv, conf, K) is None
    assert head_pose_from_face(np.full((68, 2), np.nan), np.ones(68), K) is None


def test_wrong_shapes_raise():
    with pytest.raises(HeadPoseError):
        head_pose_from_face(np.zeros((67, 2)), np.ones(67), K)
