"""Supervision policy of `pose-perception up`, ROS-free: how often a node may be restarted (a budget per time window,
not per lifetime), how long to wait before each restart (exponential back-off), and when a running node counts as
hung (its /diagnostics stopped, or they say input arrives while nothing comes out).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

from pose_perception.core.health import HUNG_MARK


@dataclass(frozen=True)
class RestartPolicy:
    """max_restarts within window_s; the k-th restart in the window waits backoff_initial_s * 2^(k-1), at most
    backoff_max_s."""

    max_restarts: int = 5
    window_s: float = 300.0
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 30.0


class RestartBudget:
    """One node's restarts: exited(now) -> seconds to wait before restarting, or None when the budget is spent."""

    def __init__(self, policy: RestartPolicy = RestartPolicy()):
        self.policy = policy
        self._restarts: deque[float] = deque()

    def in_window(self, now: float) -> int:
        while self._restarts and now - self._restarts[0] > self.policy.window_s:
            self._restarts.popleft()
        return len(self._restarts)

    def exited(self, now: float) -> Optional[float]:
        k = self.in_window(now)
        if k >= self.policy.max_restarts:
            return None
        self._restarts.append(now)
        return min(self.policy.backoff_initial_s * 2**k, self.policy.backoff_max_s)


class HangDetector:
    """A node is hung when it was heard on /diagnostics and then nothing for timeout_s (a stopped or deadlocked
    process), or when its diagnostics say the pipeline is hung (input arrives, nothing comes out). A node not heard
    yet is starting (loading models) and never hung."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._heard: dict[str, float] = {}
        self._hung_message: dict[str, str] = {}

    def heard(self, node: str, now: float, message: str = "") -> None:
        self._heard[node] = now
        if HUNG_MARK in message:
            self._hung_message[node] = message
        else:
            self._hung_message.pop(node, None)

    def was_heard(self, node: str) -> bool:
        return node in self._heard

    def forget(self, node: str) -> None:
        """After a restart: wait for the new process to be heard."""
        self._heard.pop(node, None)
        self._hung_message.pop(node, None)

    def hung(self, node: str, now: float) -> Optional[str]:
        """Why the node is hung, or None."""
        if self.timeout_s <= 0 or node not in self._heard:
            return None
        if node in self._hung_message:
            return f"its diagnostics say: {self._hung_message[node]}"
        silent = now - self._heard[node]
        if silent > self.timeout_s:
            return f"no /diagnostics for {silent:.1f} s while its process is alive"
        return None
