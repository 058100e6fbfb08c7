"""One frame whose stamp jumps (1000 s ahead, 5 s behind, 0.5 s ahead) is refused on its own and the next frames are
taken as before; a clock that really moved (several frames agree) is followed without a reset; sensors are separate."""

from pose_perception.core.stamps import StampGuard


def run(guard, frames, sensor="radar"):
    return [guard.check(sensor, stamp, arrival) for stamp, arrival in frames]


def stream(n, t0=100.0, a0=0.0, dt=0.05):
    return [(t0 + k * dt, a0 + k * dt) for k in range(n)]


def test_single_jumps_are_refused_and_the_next_frames_accepted():
    for jump in (1000.0, -5.0, 0.5):
        guard = StampGuard()
        frames = stream(10)
        frames[5] = (frames[5][0] + jump, frames[5][1])
        verdicts = run(guard, frames)
        assert verdicts[5].stamp_s is None and ("ahead of" if jump > 0 else "behind") in verdicts[5].message
        assert all(v.stamp_s == f[0] for i, (v, f) in enumerate(zip(verdicts, frames)) if i != 5)


def test_a_restarted_clock_is_followed_without_going_back():
    guard = StampGuard(rebase_frames=3)
    frames = stream(10) + [(5.0 + k * 0.05, 0.5 + k * 0.05) for k in range(5)]  # clock back by ~95 s, then steady
    v = run(guard, frames)
    assert [x.stamp_s is None for x in v[10:]] == [True, True, False, False, False]
    assert "re-based, tracks kept" in v[12].message
    pipeline = [x.stamp_s for x in v if x.stamp_s is not None]
    assert all(b > a for a, b in zip(pipeline, pipeline[1:]))  # pipeline time only moves on


def test_rate_mismatch_repeats_and_sensors():
    guard = StampGuard()
    # replayed at 2x: stamps advance 0.05 per 0.025 s of arrival, always accepted
    assert all(v.stamp_s is not None for v in run(guard, [(k * 0.05, k * 0.025) for k in range(40)]))
    assert run(guard, [(39 * 0.05, 40 * 0.025)])[0].stamp_s is None  # the same stamp again
    # another sensor has its own clock
    assert guard.check("radar_2", 5000.0, 1.0).stamp_s == 5000.0
    assert guard.check("radar", float("nan"), 1.0).stamp_s is None
