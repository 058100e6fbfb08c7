"""Approximate-time synchronisation of several topics (message_filters is not on PyPI).

The matching policy is ROS-free (`ApproximateMatcher`); `ApproximateTimeSync` wires it to subscriptions.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Optional, Sequence

from pose_perception.ros.conversions import stamp_to_s


class ApproximateMatcher:
    """Keeps the last `queue_size` items per input; emits the newest set whose stamps span <= slop_s.

    Emitted items and everything older are discarded, so each message is used at most once and a set is
    never older than one already emitted.
    """

    def __init__(self, num_inputs: int, slop_s: float, queue_size: int = 10):
        if num_inputs < 1 or slop_s < 0 or queue_size < 1:
            raise ValueError("need num_inputs >= 1, slop_s >= 0, queue_size >= 1")
        self.slop_s = slop_s
        self._queues: list[deque] = [deque(maxlen=queue_size) for _ in range(num_inputs)]
        self._last_emitted = float("-inf")

    def add(self, index: int, stamp_s: float, item: Any) -> Optional[list[Any]]:
        if stamp_s <= self._last_emitted:
            return None  # late or out of order: a newer set already went out
        self._queues[index].append((stamp_s, item))
        if any(not q for q in self._queues):
            return None
        # Pivot on the newest arrival; take in every other queue the item closest to it.
        chosen = []
        for q in self._queues:
            best = min(q, key=lambda e: abs(e[0] - stamp_s))
            chosen.append(best)
        stamps = [s for s, _ in chosen]
        if max(stamps) - min(stamps) > self.slop_s:
            return None
        newest = max(stamps)
        for q, (s, _) in zip(self._queues, chosen):
            while q and q[0][0] <= s:
                q.popleft()
        self._last_emitted = newest
        return [item for _, item in chosen]


class ApproximateTimeSync:
    """Subscribes to each (msg_type, topic) and calls callback(*msgs) with approximately simultaneous messages.

    Messages without a header (or with a zero stamp) cannot be synchronised and are refused by the matcher.
    """

    def __init__(
        self,
        node,
        topics: Sequence[tuple[type, str]],
        qos,
        slop_s: float,
        callback: Callable[..., None],
        queue_size: int = 10,
        event_callbacks=None,
    ):
        """event_callbacks: rclpy SubscriptionEventCallbacks for every input (e.g. message_lost)."""
        self._matcher = ApproximateMatcher(len(topics), slop_s, queue_size)
        self._callback = callback
        self._lock = threading.Lock()
        self.subscriptions = [
            node.create_subscription(msg_type, topic, self._make_cb(i), qos, event_callbacks=event_callbacks)
            for i, (msg_type, topic) in enumerate(topics)
        ]

    def _make_cb(self, index: int):
        def cb(msg):
            with self._lock:
                matched = self._matcher.add(index, stamp_to_s(msg.header.stamp), msg)
            if matched is not None:
                self._callback(*matched)

        return cb
