"""A cloud whose declared byte order or point_step is wrong parses into garbage: refused with the likely fix."""

import numpy as np
import pytest

from pose_perception.core.pointcloud import PointLayoutError, check_plausible_xyz

DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("velocity", "<f4")])


def cloud(n=50):
    c = np.zeros(n, DTYPE)
    rng = np.random.default_rng(0)
    c["x"], c["y"], c["z"] = rng.uniform(0.5, 5, n), rng.uniform(-2, 2, n), rng.uniform(-1, 1, n)
    return c


def test_plausible_cloud_passes_and_swapped_bytes_are_named():
    check_plausible_xyz(cloud(), ("x", "y", "z"), False)
    swapped = cloud().byteswap()  # big-endian bytes read as little-endian
    with pytest.raises(PointLayoutError, match="says is_bigendian=false, the publisher wrote big-endian"):
        check_plausible_xyz(swapped, ("x", "y", "z"), False)


def test_misaligned_fields_are_refused():
    raw = cloud().tobytes()
    shifted = np.frombuffer(raw[2 : 2 + 16 * 49], DTYPE)  # a point_step / offset off by 2 bytes
    with pytest.raises(PointLayoutError, match="does not match the data"):
        check_plausible_xyz(shifted, ("x", "y", "z"), False)
