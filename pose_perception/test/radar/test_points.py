"""Radar frame parsing: field names, TI axes, invalid points, oversized frames, accumulation and stamp order."""

import numpy as np
import pytest

from pose_perception.radar.points import (
    FieldNames,
    FrameAccumulator,
    MissingFieldError,
    RadarInputError,
    StampOrderError,
    TooManyPointsError,
    parse_structured,
    to_rep103,
    validate_points,
)


def _cloud(names, n=4):
    dt = np.dtype([(name, np.float32) for name in names])
    arr = np.zeros(n, dt)
    for i, name in enumerate(names):
        arr[name] = np.arange(n) + 10 * i
    return arr


def test_parses_ti_driver_field_names_doppler_and_snr():
    cloud = _cloud(["x", "y", "z", "doppler", "snr"])
    pts = parse_structured(cloud)
    assert pts.shape == (4, 5) and pts.dtype == np.float32
    np.testing.assert_array_equal(pts[:, 3], cloud["doppler"])
    np.testing.assert_array_equal(pts[:, 4], cloud["snr"])


def test_configurable_field_names_and_optional_velocity():
    cloud = _cloud(["px", "py", "pz", "power"])
    pts = parse_structured(cloud, FieldNames(x="px", y="py", z="pz"))
    np.testing.assert_array_equal(pts[:, 0], cloud["px"])
    assert np.all(pts[:, 3] == 0)  # no velocity field: zero, not an error
    np.testing.assert_array_equal(pts[:, 4], cloud["power"])


def test_missing_position_field_is_a_clear_error():
    with pytest.raises(MissingFieldError, match="no field 'z'"):
        parse_structured(_cloud(["x", "y", "velocity"]))
    with pytest.raises(MissingFieldError, match="structured array"):
        parse_structured(np.zeros((3, 5), np.float32))


def test_ti_native_axes_become_rep103():
    # TI: x right, y forward (boresight), z up. A point 2 m ahead and 0.5 m to the right:
    ti = np.array([[0.5, 2.0, 0.3, 1.0, 20.0]], np.float32)
    rep = to_rep103(ti, "ti")
    np.testing.assert_allclose(rep[0, :3], [2.0, -0.5, 0.3])  # x forward, y left
    with pytest.raises(RadarInputError, match="unknown radar axes"):
        to_rep103(ti, "enu")


def test_nan_and_inf_points_are_dropped():
    pts = np.array([[1, 0, 0, 0, 1], [np.nan, 0, 0, 0, 1], [1, np.inf, 0, 0, 1], [2, 0, 0, -np.inf, 1]], np.float32)
    out = validate_points(pts)
    assert out.shape == (1, 5)


def test_wrong_shapes_and_oversized_frames_are_refused():
    with pytest.raises(RadarInputError, match=r"\(N, 5\)"):
        validate_points(np.zeros((10, 3), np.float32))
    with pytest.raises(TooManyPointsError, match="100000 points"):
        validate_points(np.zeros((100_000, 5), np.float32), max_points=10_000)


def test_accumulator_keeps_the_last_frames_with_their_age_and_refuses_older_stamps():
    acc = FrameAccumulator(window_frames=3, max_age_s=1.0)
    for k in range(5):
        acc.add(0.05 * k, np.full((2, 5), k, np.float32))
    pts, age = acc.stacked()
    assert sorted(set(pts[:, 0].tolist())) == [2.0, 3.0, 4.0]
    np.testing.assert_allclose(sorted(set(np.round(age, 3).tolist())), [0.0, 0.05, 0.1])
    with pytest.raises(StampOrderError, match="older than the previous"):
        acc.add(0.1, np.zeros((1, 5), np.float32))
    assert acc.last_stamp_s == pytest.approx(0.2)  # the refused frame changed nothing
    pts, age, back = acc.stacked_frames()
    np.testing.assert_array_equal(back, 4 - pts[:, 0])  # frame k holds the value k; 4 is the newest
    np.testing.assert_allclose(age, 0.05 * back, atol=1e-6)


def test_accumulator_drops_frames_older_than_max_age():
    acc = FrameAccumulator(window_frames=4, max_age_s=0.15)
    acc.add(0.0, np.zeros((3, 5), np.float32))
    acc.add(1.0, np.ones((2, 5), np.float32))
    pts, _ = acc.stacked()
    assert len(pts) == 2
