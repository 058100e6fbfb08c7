"""CLI file formats: depth PNG in mm / npy in m, ROS camera_info YAML; broken files get clear errors."""

import numpy as np
import pytest

from pose_perception.core.camera import CameraIntrinsics, CameraModelError
from pose_perception.core.io import (
    InputFileError,
    read_camera_info_yaml,
    read_depth_m,
    read_image_rgb,
    write_camera_info_yaml,
    write_depth_png_mm,
)


def test_depth_png_and_npy_agree(tmp_path):
    depth = np.array([[0.5, np.nan], [1.234, 3.0]], np.float32)
    write_depth_png_mm(tmp_path / "d.png", depth)
    np.save(tmp_path / "d.npy", depth)
    a, b = read_depth_m(tmp_path / "d.png"), read_depth_m(tmp_path / "d.npy")
    np.testing.assert_allclose(a, b, atol=5e-4)
    assert np.isnan(a[0, 1]) and np.isnan(b[0, 1])


def test_8bit_png_is_not_depth(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(InputFileError, match="16-bit"):
        read_depth_m(tmp_path / "x.png")
    with pytest.raises(InputFileError, match="cannot read"):
        read_image_rgb(tmp_path / "missing.png")


def test_camera_info_yaml_round_trip_and_errors(tmp_path):
    intr = CameraIntrinsics(K=np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]]), width=640, height=480)
    write_camera_info_yaml(tmp_path / "c.yaml", intr)
    back = read_camera_info_yaml(tmp_path / "c.yaml")
    np.testing.assert_allclose(back.K, intr.K)
    (tmp_path / "bad.yaml").write_text("image_width: 640\n")
    with pytest.raises(InputFileError, match="camera_matrix"):
        read_camera_info_yaml(tmp_path / "bad.yaml")
    (tmp_path / "zero.yaml").write_text("image_width: 4\nimage_height: 4\ncamera_matrix: {data: [0,0,0,0,0,0,0,0,0]}\n")
    with pytest.raises(CameraModelError):
        read_camera_info_yaml(tmp_path / "zero.yaml")
