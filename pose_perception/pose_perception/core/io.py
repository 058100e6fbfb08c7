"""File formats the CLI reads: images, depth (16-bit PNG millimetres or float32 .npy metres) and the ROS
camera_info YAML. One loader for each, shared by every command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from pose_perception.core.camera import CameraIntrinsics, CameraModelError
from pose_perception.core.depth import sanitize_depth_m


class InputFileError(ValueError):
    """A file the user named cannot be read as what it should be."""


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Any image OpenCV reads -> (H, W, 3) uint8 RGB."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputFileError(f"cannot read image '{path}': missing file or a format OpenCV does not read")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_depth_m(path: str | Path) -> np.ndarray:
    """16-bit PNG in millimetres or float32 .npy in metres -> (H, W) float32 metres, NaN where invalid."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputFileError(f"cannot read depth '{path}': {exc}") from exc
        if depth.ndim != 2:
            raise InputFileError(f"depth '{path}' must be a 2D array in metres, got shape {depth.shape}")
        depth_m = depth.astype(np.float32)
    else:
        import cv2

        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise InputFileError(f"cannot read depth '{path}': missing file or not an image")
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise InputFileError(
                f"depth '{path}' must be a single-channel 16-bit PNG in millimetres, got {raw.dtype} {raw.shape}"
            )
        depth_m = raw.astype(np.float32) / 1000.0
    return sanitize_depth_m(depth_m)


def write_depth_png_mm(path: str | Path, depth_m: np.ndarray) -> None:
    """(H, W) metres -> 16-bit PNG millimetres (0 where invalid)."""
    import cv2

    mm = np.nan_to_num(depth_m * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
    cv2.imwrite(str(path), np.clip(np.round(mm), 0, 65535).astype(np.uint16))


def read_camera_info_yaml(path: str | Path) -> CameraIntrinsics:
    """ROS camera_info YAML (camera_calibration_parsers format) -> CameraIntrinsics."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        K = np.asarray(data["camera_matrix"]["data"], dtype=np.float64).reshape(3, 3)
        dist = np.asarray(data.get("distortion_coefficients", {}).get("data", [0.0] * 5), dtype=np.float64)
        return CameraIntrinsics(K=K, width=int(data["image_width"]), height=int(data["image_height"]), dist=dist)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CameraModelError):
            raise
        raise InputFileError(
            f"cannot read camera info '{path}': expected ROS camera_info YAML with image_width, image_height, "
            f"camera_matrix.data (9 numbers) ({type(exc).__name__}: {exc})"
        ) from exc


def write_camera_info_yaml(path: str | Path, intrinsics: CameraIntrinsics, camera_name: str = "camera") -> None:
    data = {
        "image_width": intrinsics.width,
        "image_height": intrinsics.height,
        "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": intrinsics.K.ravel().tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": len(intrinsics.dist), "data": intrinsics.dist.tolist()},
    }
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
