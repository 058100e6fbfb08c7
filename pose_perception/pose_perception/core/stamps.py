"""Sensor stamps that jump: one frame 1000 s ahead or 5 s behind (a bad clock sync, a corrupted header) must not
reset every track, and must not make the next frames look old. ROS-free; the radar node keeps one guard per
sensor (header frame_id).

Each frame's stamp is compared with what its arrival time predicts from the last accepted frame. A frame off by
more than `tolerance_s` is refused on its own; when `rebase_frames` frames in a row agree with each other on a new
clock (the source restarted, a bag looped, the clock was reset), the guard re-bases: it maps the sensor's stamps
onto a continuous pipeline time, so trackers see time go on and keep their ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class StampVerdict:
    """stamp_s: pipeline time to use (None: refuse the frame). message: why it was refused, or the re-base notice."""

    stamp_s: Optional[float]
    message: str = ""


class _Sensor:
    __slots__ = ("last_stamp", "last_arrival", "offset", "candidates")

    def __init__(self, stamp: float, arrival: float):
        self.last_stamp, self.last_arrival, self.offset = stamp, arrival, 0.0
        self.candidates: list[tuple[float, float]] = []  # (stamp, arrival) of consecutive refused frames


class StampGuard:
    def __init__(self, tolerance_s: float = 0.25, rebase_frames: int = 3):
        self.tolerance_s = tolerance_s
        self.rebase_frames = rebase_frames
        self._sensors: dict[str, _Sensor] = {}

    def check(self, sensor: str, stamp_s: float, arrival_s: float) -> StampVerdict:
        """stamp_s: the frame's header stamp; arrival_s: when it arrived (any monotonic clock, seconds)."""
        if stamp_s != stamp_s or stamp_s in (float("inf"), float("-inf")):
            return StampVerdict(None, f"'{sensor}' frame stamp {stamp_s} is not a number of seconds: frame refused")
        s = self._sensors.get(sensor)
        if s is None:
            self._sensors[sensor] = _Sensor(stamp_s, arrival_s)
            return StampVerdict(stamp_s)
        expected = s.last_stamp + (arrival_s - s.last_arrival)
        off = stamp_s - expected
        if abs(off) <= self.tolerance_s:
            if stamp_s <= s.last_stamp:
                return StampVerdict(
                    None,
                    f"'{sensor}' frame stamp {stamp_s:.3f} s is not after the previous "
                    f"{s.last_stamp:.3f} s (out of order or repeated): frame refused",
                )
            s.last_stamp, s.last_arrival, s.candidates = stamp_s, arrival_s, []
            return StampVerdict(stamp_s + s.offset)
        # a jump: refused unless the last refused frames agree with this one on a new clock
        if s.candidates and abs((stamp_s - arrival_s) - (s.candidates[-1][0] - s.candidates[-1][1])) > self.tolerance_s:
            s.candidates = []
        s.candidates.append((stamp_s, arrival_s))
        if len(s.candidates) < self.rebase_frames:
            when = "ahead of" if off > 0 else "behind"
            return StampVerdict(
                None,
                f"'{sensor}' frame stamp {stamp_s:.3f} s is {abs(off):.3f} s {when} what its "
                f"arrival implies: frame refused, tracks kept ({self.rebase_frames} frames in a "
                "row on one new clock re-base it)",
            )
        # re-base: pipeline time continues from the last accepted frame by the arrival interval
        pipeline_now = s.last_stamp + s.offset + (arrival_s - s.last_arrival)
        s.offset = pipeline_now - stamp_s
        s.last_stamp, s.last_arrival, s.candidates = stamp_s, arrival_s, []
        return StampVerdict(
            stamp_s + s.offset,
            f"'{sensor}' clock jumped by {off:+.3f} s for {self.rebase_frames} "
            "frames in a row (source restarted or clock reset): re-based, tracks kept",
        )
