"""The executor every process of this package spins with: rclpy's C++ events executor where this rclpy has it
(Jazzy 7.1.4+, Kilted, Rolling), else SingleThreadedExecutor; POSE_PERCEPTION_EXECUTOR=events|single chooses.

The events executor dispatches each callback from C++ instead of rebuilding a Python wait set: on 2 cores it
takes about 1 ms off each 640x480 image hand-over (`pose-perception bench transport --executor ...`).
It is still `rclpy.experimental`; set POSE_PERCEPTION_EXECUTOR=single if it misbehaves on your rclpy.
"""

from __future__ import annotations

import os
import threading
from typing import Optional

EXECUTOR_ENV = "POSE_PERCEPTION_EXECUTOR"
CHOICES = ("events", "single")


class ExecutorChoiceError(ValueError):
    """POSE_PERCEPTION_EXECUTOR names no executor this package knows."""


def executor_choice(choice: Optional[str] = None) -> str:
    """'events' or 'single': the argument, else $POSE_PERCEPTION_EXECUTOR, else 'events'; 'events' falls back
    to 'single' where this rclpy has no events executor."""
    choice = (choice or os.environ.get(EXECUTOR_ENV) or "events").strip().lower()
    if choice not in CHOICES:
        raise ExecutorChoiceError(f"{EXECUTOR_ENV}={choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "events":
        try:
            from rclpy.experimental import EventsExecutor  # noqa: F401
        except ImportError:
            return "single"
    return choice


def make_executor(context=None, choice: Optional[str] = None):
    """A new executor for `context` (None: the default context), of executor_choice(choice)."""
    if executor_choice(choice) == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor(context=context)


class BackgroundSpinner:
    """Spins one node on a daemon thread until stop(): what test clients, the demo, the bag recorder and the
    Foxglove bridge need. spin_once in a loop, because spin() of Jazzy's events executor does not return when
    the context shuts down."""

    def __init__(self, node, context=None, choice: Optional[str] = None) -> None:
        import rclpy

        self._context = context or rclpy.get_default_context()
        self.executor = make_executor(context, choice)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from rclpy.executors import ExternalShutdownException

        while not self._stop.is_set() and self._context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                break
            except Exception:
                if self._context.ok():
                    raise
                break

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        self.executor.shutdown()
