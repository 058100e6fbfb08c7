"""Rigid transforms and ROS-order quaternions."""

import numpy as np
import pytest
import transforms3d.euler as te

from pose_perception.core import frames
from pose_perception.core.frames import (
    T_to_xyz_quat,
    invert_T,
    make_T,
    rotation_from_axes,
    transform_points,
    xyz_quat_to_T,
)


def test_quaternion_round_trip_in_ros_order():
    T = make_T(te.euler2mat(0.3, -0.2, 1.1), [1, 2, 3])
    xyz, q = T_to_xyz_quat(T)
    assert abs(np.linalg.norm(q) - 1) < 1e-12
    np.testing.assert_allclose(xyz_quat_to_T(xyz, q), T, atol=1e-12)
    _, q_id = T_to_xyz_quat(np.eye(4))
    np.testing.assert_allclose(q_id, [0, 0, 0, 1])


def test_inverse_and_point_transform():
    T = make_T(te.euler2mat(0.1, 0.5, -0.7), [0.3, -1, 2])
    p = np.random.default_rng(0).random((5, 3))
    np.testing.assert_allclose(transform_points(invert_T(T), transform_points(T, p)), p, atol=1e-12)


def test_rotation_from_axes_is_right_handed():
    R = rotation_from_axes(np.array([0, 0, 1.0]), np.array([0, -1.0, 0.2]))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) > 0
    np.testing.assert_allclose(R[:, 0], [0, 0, 1])


def test_invert_T_inverts_each_transform_of_a_stack():
    rng = np.random.default_rng(3)
    from scipy.spatial.transform import Rotation

    Ts = np.stack([make_T(Rotation.random(random_state=k).as_matrix(), rng.normal(size=3)) for k in range(4)])
    inv = invert_T(Ts)
    assert inv.shape == (4, 4, 4)
    for T, Ti in zip(Ts, inv):
        np.testing.assert_allclose(Ti, invert_T(T), atol=1e-12)
        np.testing.assert_allclose(Ti @ T, np.eye(4), atol=1e-12)


@pytest.mark.parametrize(
    "u, v",
    [
        ([1.0, 0, 0], [0, 1.0, 0]),
        ([0.3, -2.0, 0.5], [0.3, -2.0, 0.5]),
        ([0, 0, 1.0], [0, 0, -3.0]),
        ([1.0, 2, 3], [-1, 0.5, 2]),
    ],
)
def test_rotation_between_takes_u_onto_v_by_the_smallest_angle(u, v):
    R = frames.rotation_between(np.array(u), np.array(v))
    u_hat, v_hat = np.array(u) / np.linalg.norm(u), np.array(v) / np.linalg.norm(v)
    np.testing.assert_allclose(R @ u_hat, v_hat, atol=1e-9)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    angle = np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))
    assert angle == pytest.approx(np.arccos(np.clip(u_hat @ v_hat, -1, 1)), abs=1e-7)


def test_body_frame_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="body_frame needs"):
        frames.body_frame(np.zeros((5, 3)))
