"""The executor choice: events by default where rclpy has it, single on request, clear error otherwise."""

import pytest

from pose_perception.ros.executor import EXECUTOR_ENV, ExecutorChoiceError, executor_choice, make_executor
from pose_perception.ros.process import init_ros


def test_events_executor_is_the_default_where_rclpy_has_it(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401

        expected = "events"
    except ImportError:
        expected = "single"
    assert executor_choice() == expected


def test_the_environment_and_the_argument_choose(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "single")
    assert executor_choice() == "single"
    assert executor_choice("SINGLE ") == "single"
    monkeypatch.setenv(EXECUTOR_ENV, "multi")
    with pytest.raises(ExecutorChoiceError, match="events, single"):
        executor_choice()


@pytest.mark.parametrize("choice", ["events", "single"])
def test_each_executor_runs_a_timer(choice):
    import rclpy

    context = rclpy.Context()
    init_ros(context=context)
    try:
        node = rclpy.create_node("executor_test", context=context)
        ticks = []
        node.create_timer(0.01, lambda: ticks.append(1))
        executor = make_executor(context, choice)
        executor.add_node(node)
        for _ in range(50):
            executor.spin_once(timeout_sec=0.05)
            if len(ticks) >= 3:
                break
        assert len(ticks) >= 3
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
