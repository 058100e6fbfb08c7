"""Health from recent events: OK only while frames come out clean; errors, losses, stale input and a hung pipeline
are told, with the level they deserve, whatever happened before."""

from pose_perception.core.health import ERROR, OK, WARN, HealthMonitor, HealthThresholds


def feed(monitor, t0, t1, rate_hz=10.0, fail_every=0, finish=True):
    t, k = t0, 0
    while t < t1:
        monitor.record("arrived", t)
        if fail_every and k % fail_every == 0:
            monitor.record("failed", t, message=f"frame failed: ValueError: bad frame {k}")
        elif finish:
            monitor.record("finished", t)
        t += 1.0 / rate_hz
        k += 1


def test_clean_frames_are_ok_and_inactive_is_warn():
    m = HealthMonitor()
    feed(m, 0.0, 20.0)
    assert m.verdict(20.0).level == OK and m.verdict(20.0).message == "ok"
    assert m.verdict(20.0, active=False).level == WARN


def test_every_frame_failing_after_a_success_is_error():
    m = HealthMonitor()
    feed(m, 0.0, 10.0)
    feed(m, 10.0, 25.0, fail_every=1)
    v = m.verdict(25.0)
    assert v.level == ERROR and "every frame in the last 10 s failed" in v.message and "bad frame" in v.message


def test_some_errors_warn_many_errors_are_error_and_old_errors_are_forgotten():
    m = HealthMonitor()
    feed(m, 0.0, 10.0, fail_every=5)  # 20 % fail
    assert m.verdict(10.0).level == WARN
    m = HealthMonitor()
    feed(m, 0.0, 10.0, fail_every=2)  # 50 % fail
    assert m.verdict(10.0).level == ERROR
    feed(m, 10.0, 30.0)  # then 20 s clean
    assert m.verdict(30.0).level == OK


def test_stale_input_warns_and_input_without_output_is_a_hung_pipeline():
    m = HealthMonitor(HealthThresholds(stale_input_s=5.0))
    feed(m, 0.0, 10.0)
    v = m.verdict(17.0)
    assert v.level == WARN and "no input for 7 s" in v.message
    assert "no input" in HealthMonitor().verdict(3.0).message
    m = HealthMonitor(HealthThresholds(stale_input_s=5.0))
    feed(m, 0.0, 10.0)
    feed(m, 10.0, 18.0, finish=False)  # input keeps coming, nothing comes out, nothing fails
    v = m.verdict(18.0)
    assert v.level == ERROR and "input arrives but no output for 8 s" in v.message
    # a first frame that takes a while is not a hang until input has flowed for longer than the threshold
    m = HealthMonitor(HealthThresholds(stale_input_s=5.0))
    feed(m, 0.0, 3.0, finish=False)
    assert m.verdict(3.0).level == OK


def test_lost_and_dropped_frames_warn():
    m = HealthMonitor()
    feed(m, 0.0, 10.0)
    m.record("lost", 9.0, 31)
    v = m.verdict(10.0)
    assert v.level == WARN and "31 frames lost in transport" in v.message and v.values["recent_lost"] == 31
    assert m.verdict(25.0).level == WARN  # no input for 15 s, the loss itself is forgotten
    assert "lost" not in m.verdict(25.0).message
    m = HealthMonitor()
    for k in range(100):
        m.record("arrived", k * 0.05)
        if k % 10:
            m.record("dropped", k * 0.05)
        else:
            m.record("finished", k * 0.05)
    v = m.verdict(5.0)
    assert v.level == WARN and "cannot keep up: 90 %" in v.message
