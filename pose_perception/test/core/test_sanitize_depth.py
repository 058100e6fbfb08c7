"""core.depth.sanitize_depth_m: the one depth clean-up (0, negative, NaN, inf -> NaN; float32 copy)."""

import numpy as np

from pose_perception.core.depth import sanitize_depth_m


def test_invalid_pixels_become_nan_and_the_input_is_untouched():
    raw = np.array([[0.0, -1.0, np.nan], [np.inf, 0.5, 2.0]], np.float64)
    out = sanitize_depth_m(raw)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert np.isnan(out[0]).all() and np.isnan(out[1, 0])
    assert out[1, 1] == np.float32(0.5) and out[1, 2] == np.float32(2.0)
    assert raw[0, 0] == 0.0  # a copy
    mm = np.array([[0, 1500]], np.uint16)
    assert np.isnan(sanitize_depth_m(mm * 0.001)[0, 0]) and sanitize_depth_m(mm * 0.001)[0, 1] == np.float32(1.5)
