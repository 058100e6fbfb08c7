"""Depth images that parse but lie: all zero, all NaN / inf, or saturated (16-bit 65535 mm = 65 m). A node with
depth must not turn such a frame into 3D, and must say so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


def sanitize_depth_m(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres, any numeric dtype -> float32 copy with NaN where the sensor gave no depth (0, negative, NaN,
    inf). The one place every depth input goes through before use."""
    depth = np.array(depth_m, dtype=np.float32, copy=True)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


@dataclass(frozen=True)
class DepthRange:
    """min_m / max_m: depths outside are invalid pixels (sensor limits; 65.535 m is a saturated 16-bit pixel).
    min_valid_fraction: a frame with fewer valid pixels than this is unusable as a whole."""

    min_m: float = 0.1
    max_m: float = 10.0
    min_valid_fraction: float = 0.01


def validate_depth(depth_m: np.ndarray, depth_range: DepthRange = DepthRange()) -> tuple[Optional[np.ndarray], str]:
    """(H, W) float metres (NaN invalid) -> (float32 copy with out-of-range pixels NaN, "") or (None, why the frame
    is unusable, with what its pixels hold)."""
    depth = np.array(depth_m, dtype=np.float32, copy=True)
    finite = np.isfinite(depth)
    valid = finite & (depth >= depth_range.min_m) & (depth <= depth_range.max_m)
    n = max(depth.size, 1)
    if np.count_nonzero(valid) / n >= depth_range.min_valid_fraction:
        depth[~valid] = np.nan
        return depth, ""
    missing = np.count_nonzero(~finite | (depth <= 0)) / n
    near = np.count_nonzero(finite & (depth > 0) & (depth < depth_range.min_m)) / n
    far = np.count_nonzero(finite & (depth > depth_range.max_m)) / n
    return None, (
        f"depth frame unusable: {100 * np.count_nonzero(valid) / n:.1f} % of pixels within "
        f"{depth_range.min_m:g}-{depth_range.max_m:g} m ({100 * missing:.0f} % zero/NaN/inf, "
        f"{100 * near:.0f} % nearer, {100 * far:.0f} % farther)"
    )
