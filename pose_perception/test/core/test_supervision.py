"""Restarts within a budget per time window with back-off; a node is hung when its diagnostics stop or say so."""

from pose_perception.core.supervision import HangDetector, RestartBudget, RestartPolicy


def test_restart_budget_is_per_window_and_backs_off():
    budget = RestartBudget(RestartPolicy(max_restarts=3, window_s=60.0, backoff_initial_s=0.5, backoff_max_s=1.5))
    assert [budget.exited(t) for t in (0.0, 1.0, 2.0)] == [0.5, 1.0, 1.5]
    assert budget.exited(3.0) is None  # a 4th crash within 60 s: give up
    # crashes spread over a long life never exhaust it: the 4th crash 61 s after the first is allowed
    budget = RestartBudget(RestartPolicy(max_restarts=3, window_s=60.0))
    for t in (0.0, 30.0, 59.0):
        assert budget.exited(t) is not None
    assert budget.exited(61.0) is not None and budget.in_window(61.0) == 3


def test_hang_detector():
    hang = HangDetector(timeout_s=5.0)
    assert hang.hung("n", 100.0) is None  # never heard: still starting
    hang.heard("n", 100.0, "ok")
    assert hang.hung("n", 104.0) is None
    assert "no /diagnostics for 6.0 s" in hang.hung("n", 106.0)
    hang.heard("n", 107.0, "input arrives but no output for 6 s: pipeline hung")
    assert "pipeline hung" in hang.hung("n", 107.0)
    hang.forget("n")
    assert hang.hung("n", 200.0) is None
    assert HangDetector(timeout_s=0.0).hung("n", 1e9) is None
