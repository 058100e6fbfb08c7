"""OneEuroFilter: smooths jitter at rest, follows motion, NaN-aware, robust to time going backwards."""

import numpy as np
import pytest

from pose_perception.core.filters import FilterTimeError, OneEuroFilter


def test_constant_signal_passes_unchanged():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    x = np.array([[1.0, 2.0], [3.0, -4.0]])
    for i in range(10):
        out = f(i / 30.0, x)
    np.testing.assert_allclose(out, x)


def test_jitter_at_rest_is_reduced():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    raw = 5.0 + rng.normal(scale=1.0, size=(300, 3))
    out = np.array([f(i / 30.0, raw[i]) for i in range(300)])
    assert out[50:].std() < 0.4 * raw[50:].std()
    assert abs(out[50:].mean() - 5.0) < 0.2


def test_beta_reduces_lag_on_fast_motion():
    t = np.arange(60) / 30.0
    ramp = 2.0 * t  # 2 units/s
    slow = OneEuroFilter(min_cutoff=0.5, beta=0.0)
    fast = OneEuroFilter(min_cutoff=0.5, beta=5.0)
    lag_slow = ramp[-1] - [slow(ti, np.array([x])) for ti, x in zip(t, ramp)][-1][0]
    lag_fast = ramp[-1] - [fast(ti, np.array([x])) for ti, x in zip(t, ramp)][-1][0]
    assert 0 <= lag_fast < 0.5 * lag_slow


def test_nan_element_gives_nan_and_restarts_fresh():
    f = OneEuroFilter(min_cutoff=0.5)
    f(0.0, np.array([0.0, 0.0]))
    out = f(0.1, np.array([np.nan, 1.0]))
    assert np.isnan(out[0]) and 0.0 < out[1] < 1.0
    out = f(0.2, np.array([10.0, 1.0]))
    assert out[0] == 10.0  # no drag from the value before the gap


def test_time_backwards_resets_and_repeated_time_holds():
    f = OneEuroFilter(min_cutoff=0.5)
    f(1.0, np.array([0.0]))
    held = f(1.1, np.array([1.0]))
    np.testing.assert_allclose(f(1.1, np.array([5.0])), held)
    np.testing.assert_allclose(f(0.5, np.array([7.0])), [7.0])


def test_shape_change_restarts():
    f = OneEuroFilter()
    f(0.0, np.zeros(3))
    np.testing.assert_allclose(f(0.1, np.ones(4)), np.ones(4))


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0.0}, {"d_cutoff": -1.0}, {"beta": -0.1}, {"min_cutoff": np.nan}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        OneEuroFilter(**kwargs)


def test_non_finite_time_raises():
    with pytest.raises(FilterTimeError):
        OneEuroFilter()(float("nan"), np.zeros(2))
