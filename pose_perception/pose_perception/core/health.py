"""Node health from what happened recently, not since start: the level and message every node publishes on
/diagnostics. ROS-free; ros/base_node.py feeds it and converts the verdict.

A node that succeeded once and then fails every frame is ERROR, not OK; a node that still answers but with errors,
lost frames or stale input is WARN; a node whose input arrives while nothing comes out is ERROR (hung pipeline).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Optional

OK, WARN, ERROR = 0, 1, 2  # the diagnostic_msgs/DiagnosticStatus levels
HUNG_MARK = "pipeline hung"  # in the message of a node whose input arrives while nothing comes out (`up` restarts it)
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


@dataclass(frozen=True)
class HealthThresholds:
    """window_s: how far back "recent" reaches. stale_input_s: input older than this is stale (WARN), and input
    arriving with no output for this long is a hung pipeline (ERROR). error_fraction_error: failed / arrived frames
    in the window at or above which the level is ERROR (any error is WARN). drop_fraction_warn: frames replaced
    before the pipeline took them (latest-frame-wins) above which the node says it cannot keep up."""

    window_s: float = 10.0
    stale_input_s: float = 5.0
    error_fraction_error: float = 0.5
    drop_fraction_warn: float = 0.75


@dataclass(frozen=True)
class HealthVerdict:
    level: int
    message: str
    values: dict


class HealthMonitor:
    """Thread-safe record of frame events with their times (monotonic seconds); verdict(now) judges the recent ones.

    Events: arrived (a frame reached the node), finished (a result went out), failed (a frame or input was refused,
    or something degraded was reported), dropped (replaced unprocessed by a newer frame), lost (frames the transport
    never delivered: DDS sequence gaps)."""

    KINDS = ("arrived", "finished", "failed", "dropped", "lost")

    def __init__(self, thresholds: HealthThresholds = HealthThresholds(), max_events: int = 10000):
        self.thresholds = thresholds
        self._lock = threading.Lock()
        self._events = {k: deque(maxlen=max_events) for k in self.KINDS}
        self._last: dict[str, Optional[float]] = {k: None for k in self.KINDS}
        self.last_error = ""
        self.last_error_time: Optional[float] = None

    def record(self, kind: str, t: float, count: int = 1, message: str = "") -> None:
        with self._lock:
            for _ in range(min(count, self._events[kind].maxlen)):
                self._events[kind].append(t)
            self._last[kind] = t
            if kind == "failed":
                self.last_error, self.last_error_time = message, t

    def recent(self, now: float) -> dict[str, int]:
        with self._lock:
            return {k: sum(1 for t in q if now - t <= self.thresholds.window_s) for k, q in self._events.items()}

    def verdict(self, now: float, active: bool = True) -> HealthVerdict:
        th = self.thresholds
        n = self.recent(now)
        with self._lock:
            last = dict(self._last)
            last_error = self.last_error
        since = {k: (now - t if t is not None else float("inf")) for k, t in last.items()}
        values = {f"recent_{k}": v for k, v in n.items()}
        values["window_s"] = th.window_s
        if not active:
            return HealthVerdict(WARN, "inactive", values)
        problems: list[tuple[int, str]] = []
        if since["arrived"] > th.stale_input_s:
            problems.append((WARN, "no input" if last["arrived"] is None else f"no input for {since['arrived']:.0f} s"))
        elif since["finished"] > th.stale_input_s and n["failed"] == 0 and self._input_span(now) > th.stale_input_s:
            # input has flowed for longer than the threshold (a first frame may take a while) and nothing came out
            waited = "yet" if last["finished"] is None else f"for {since['finished']:.0f} s"
            problems.append((ERROR, f"input arrives but no output {waited}: {HUNG_MARK}"))
        if n["failed"]:
            if n["finished"] == 0 and n["arrived"] > 0:
                problems.append((ERROR, f"every frame in the last {th.window_s:.0f} s failed: {last_error[:200]}"))
            elif n["arrived"] and n["failed"] / n["arrived"] >= th.error_fraction_error:
                problems.append(
                    (
                        ERROR,
                        f"{n['failed']} errors for {n['arrived']} frames in the last "
                        f"{th.window_s:.0f} s: {last_error[:200]}",
                    )
                )
            else:
                problems.append((WARN, f"{n['failed']} errors in the last {th.window_s:.0f} s: {last_error[:200]}"))
        if n["lost"]:
            problems.append(
                (WARN, f"{n['lost']} frames lost in transport in the last {th.window_s:.0f} s (DDS sequence gaps)")
            )
        if n["arrived"] >= 10 and n["dropped"] / n["arrived"] > th.drop_fraction_warn:
            problems.append(
                (
                    WARN,
                    f"cannot keep up: {100 * n['dropped'] / n['arrived']:.0f} % of the input "
                    f"frames in the last {th.window_s:.0f} s were replaced before processing",
                )
            )
        if not problems:
            return HealthVerdict(OK, "ok", values)
        return HealthVerdict(max(p[0] for p in problems), "; ".join(p[1] for p in problems), values)

    def _input_span(self, now: float) -> float:
        """How long input has been arriving without a pause longer than stale_input_s, up to now."""
        with self._lock:
            q = list(self._events["arrived"])
        if not q:
            return 0.0
        start = q[-1]
        for t in reversed(q):
            if start - t > self.thresholds.stale_input_s:
                break
            start = t
        return now - start
