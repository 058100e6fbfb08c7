"""Pinhole model: projection and back-projection invert each other; nonsense intrinsics are refused."""

import numpy as np
import pytest

from pose_perception.core.camera import CameraIntrinsics, CameraModelError, backproject, depth_to_points, project

K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])


def test_project_backproject_round_trip():
    pts = np.random.default_rng(0).uniform([-1, -1, 0.5], [1, 1, 4], (50, 3))
    uv = project(pts, K)
    np.testing.assert_allclose(backproject(uv, pts[:, 2], K), pts, atol=1e-9)


def test_points_behind_the_camera_project_to_nan():
    assert np.isnan(project(np.array([[0.0, 0, -1]]), K)).all()


def test_depth_to_points_skips_invalid_pixels():
    depth = np.full((4, 6), 2.0, np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = 0
    pts, idx = depth_to_points(depth, K)
    assert len(pts) == 22 and 0 not in idx and 7 not in idx
    assert np.allclose(pts[:, 2], 2.0)


def test_default_intrinsics_use_image_width_as_focal_length():
    c = CameraIntrinsics.default_for_size(640, 480)
    assert c.fx == c.fy == 640 and c.cx == 319.5 and c.cy == 239.5


@pytest.mark.parametrize("K_bad,match", [(np.zeros((3, 3)), "uncalibrated"), (np.diag([-5.0, 5, 1]), "positive")])
def test_bad_intrinsics_are_refused(K_bad, match):
    with pytest.raises(CameraModelError, match=match):
        CameraIntrinsics(K=K_bad, width=640, height=480)
    with pytest.raises(CameraModelError, match="size"):
        CameraIntrinsics(K=K, width=0, height=480)


def test_scaling_intrinsics_with_the_image():
    s = CameraIntrinsics(K=K, width=640, height=480).scaled(0.5, 0.5)
    assert (s.width, s.height, s.fx) == (320, 240, 262.5)
