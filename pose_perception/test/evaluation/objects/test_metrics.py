"""Pose metrics against hand-computed cases: ADD, ADD-S, BOP MSSD / MSPD and their recalls."""

import numpy as np
import pytest
import trimesh

from pose_perception.core.frames import make_T
from pose_perception.evaluation.objects import metrics as M


def rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


SQUARE = np.array([[1.0, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]]) * 0.05  # 10 cm square, centred


def test_identical_poses_have_zero_error_everywhere():
    T = make_T(rot_z(30), [0.1, -0.2, 0.8])
    e = M.pose_errors(T, T, SQUARE, M.symmetry_transforms("none", SQUARE), np.diag([600.0, 600, 1]))
    assert e == M.PoseErrors(0.0, 0.0, 0.0, 0.0)


def test_add_of_a_pure_translation_is_its_length():
    T_gt = make_T(np.eye(3), [0, 0, 1.0])
    T_est = make_T(np.eye(3), [0.01, 0, 1.0])
    assert M.add_error(T_est, T_gt, SQUARE) == pytest.approx(0.01)


def test_mspd_of_a_lateral_shift_is_focal_length_times_shift_over_depth():
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    T_gt = make_T(np.eye(3), [0, 0, 1.0])
    T_est = make_T(np.eye(3), [0.01, 0, 1.0])
    assert M.mspd_error(T_est, T_gt, SQUARE, np.eye(4)[None], K) == pytest.approx(6.0)


def test_square_turned_a_quarter_is_perfect_only_with_its_declared_symmetry():
    T_gt = make_T(np.eye(3), [0, 0, 1.0])
    T_est = make_T(rot_z(90), [0, 0, 1.0])
    # corners move to their neighbours: 10 cm each
    assert M.add_error(T_est, T_gt, SQUARE) == pytest.approx(0.1)
    assert M.mssd_error(T_est, T_gt, SQUARE, M.symmetry_transforms("none", SQUARE)) == pytest.approx(0.1)
    square_group = M.symmetry_transforms("discrete:z:4", SQUARE)
    assert M.mssd_error(T_est, T_gt, SQUARE, square_group) == pytest.approx(0, abs=1e-12)
    assert M.adds_error(T_est, T_gt, SQUARE) == pytest.approx(0, abs=1e-12)


def test_symmetric_can_rotated_about_its_axis_has_adds_zero_but_large_add():
    # a can whose axis is NOT through the model origin (like the YCB meshes): symmetry about the bbox centre line
    can = trimesh.creation.cylinder(radius=0.05, height=0.14, sections=720)
    can.apply_translation([0.03, -0.02, 0.07])
    points = np.asarray(can.vertices)
    centre = np.array([0.03, -0.02, 0.0])
    R = rot_z(37)
    T_gt = make_T(rot_z(10), [0.1, 0.0, 0.9])
    T_sym = make_T(R, centre - R @ centre)  # rotation about the can's own axis
    T_est = T_gt @ T_sym
    sym = M.symmetry_transforms("continuous:z", points)
    assert M.adds_error(T_est, T_gt, points) == pytest.approx(0, abs=2e-4)
    assert M.add_error(T_est, T_gt, points) > 0.02
    # continuous symmetries are discretised with rim steps of 1 % of the diameter
    d = M.model_diameter_m(points)
    assert M.mssd_error(T_est, T_gt, points, sym) < 0.01 * d
    # without the declaration the rim moves by the chord of 37 degrees
    chord = 2 * 0.05 * np.sin(np.deg2rad(37) / 2)
    assert M.mssd_error(T_est, T_gt, points, M.symmetry_transforms("none", points)) == pytest.approx(chord, rel=1e-3)


def test_continuous_symmetry_discretisation_follows_the_bop_toolkit():
    T = M.symmetry_transforms("continuous:x", SQUARE)
    assert T.shape == (int(np.ceil(np.pi / 0.01)), 4, 4)
    np.testing.assert_allclose(T[0], np.eye(4))


@pytest.mark.parametrize(
    "spec", ["cylinder", "continuous", "continuous:w", "discrete:z", "discrete:z:1", "discrete:z:x"]
)
def test_bad_symmetry_declarations_are_refused(spec):
    with pytest.raises(M.SymmetrySpecError):
        M.symmetry_transforms(spec, SQUARE)


def test_bop19_thresholds():
    np.testing.assert_allclose(M.mssd_thresholds_m(0.2), np.arange(1, 11) * 0.01)
    np.testing.assert_allclose(M.mspd_thresholds_px(640), np.arange(5, 51, 5))
    np.testing.assert_allclose(M.mspd_thresholds_px(320), np.arange(10, 101, 10))  # scaled by 640 / w


def test_average_recall_counts_thresholds_passed_and_misses_count_as_failures():
    d = 0.2
    th = M.mssd_thresholds_m(d)
    assert M.average_recall([0.07 * d], th) == pytest.approx(0.9)  # passes 0.10 .. 0.50
    assert M.average_recall([0.07 * d, np.inf], th) == pytest.approx(0.45)
    assert M.recall([0.0, np.inf, 0.5], 0.1) == pytest.approx(1 / 3)
    assert np.isnan(M.recall([], 0.1))


def test_a_missing_or_broken_estimate_is_a_miss():
    T = np.eye(4)
    assert M.pose_errors(None, T, SQUARE, np.eye(4)[None], np.eye(3)) == M.MISSING
    assert M.pose_errors(np.full((4, 4), np.nan), T, SQUARE, np.eye(4)[None], np.eye(3)) == M.MISSING


def test_estimate_behind_the_camera_has_infinite_mspd():
    K = np.diag([600.0, 600, 1])
    behind, in_front = make_T(np.eye(3), [0, 0, -1.0]), make_T(np.eye(3), [0, 0, 1.0])
    assert M.mspd_error(behind, in_front, SQUARE, np.eye(4)[None], K) == np.inf


def test_diameter_of_a_cube_is_its_space_diagonal():
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    assert M.model_diameter_m(corners) == pytest.approx(np.sqrt(3))
