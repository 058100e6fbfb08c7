"""Radar point frames: parse structured arrays as TI mmWave drivers publish them into (N, 5) float32
[x, y, z, velocity, intensity] in REP-103 axes, drop invalid points, and accumulate the last frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

# Column order of every radar point array in this package.
X, Y, Z, VELOCITY, INTENSITY = range(5)
NUM_COLUMNS = 5


class RadarInputError(ValueError):
    """A radar frame that cannot be used (base class of the specific errors below)."""


class MissingFieldError(RadarInputError):
    """The point cloud lacks a field the parser was configured to read."""


class TooManyPointsError(RadarInputError):
    """A frame with more points than any mmWave radar produces: most likely a wrong topic (lidar, depth)."""


class StampOrderError(RadarInputError):
    """A frame older than the previous one (bag looped, clock jumped, or two radars on one topic)."""


@dataclass(frozen=True)
class FieldNames:
    """Which structured-array fields hold what; the first name present in each tuple is used.

    Velocity and intensity are optional (0 when absent, e.g. a radar without Doppler output).
    """

    x: str = "x"
    y: str = "y"
    z: str = "z"
    velocity: tuple[str, ...] = ("velocity", "doppler", "v")
    intensity: tuple[str, ...] = ("intensity", "snr", "power")


# TI mmWave SDK native sensor axes: x right (cross-range), y forward (boresight), z up.
# REP-103: x forward, y left, z up. So x_rep = y_ti, y_rep = -x_ti, z_rep = z_ti.
R_REP103_FROM_TI = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)

AXES = ("rep103", "ti")


def _first_present(names: tuple[str, ...], available: tuple[str, ...]) -> str | None:
    for name in names:
        if name in available:
            return name
    return None


def parse_structured(
    cloud: np.ndarray, fields: FieldNames = FieldNames(), axes: str = "rep103", max_points: int = 20000
) -> np.ndarray:
    """Structured array (N,) with named fields -> (M, 5) float32 [x, y, z, velocity m/s, intensity], REP-103.

    axes: "rep103" (already x forward, y left, z up) or "ti" (TI native: x right, y forward, z up).
    Non-finite points are dropped. Raises MissingFieldError / TooManyPointsError with what to change.
    """
    if cloud.dtype.names is None:
        raise MissingFieldError(
            f"radar cloud must be a structured array with fields x, y, z; got plain dtype {cloud.dtype}"
        )
    available = cloud.dtype.names
    for name in (fields.x, fields.y, fields.z):
        if name not in available:
            raise MissingFieldError(
                f"radar cloud has no field '{name}' (fields: {list(available)}); set the field-name parameters"
            )
    n = cloud.shape[0]
    if n > max_points:
        raise TooManyPointsError(
            f"radar frame has {n} points, more than max_points={max_points}; mmWave radars give 20-300 per "
            "frame: check the topic, or raise max_points"
        )
    out = np.zeros((n, NUM_COLUMNS), dtype=np.float32)
    out[:, X] = cloud[fields.x]
    out[:, Y] = cloud[fields.y]
    out[:, Z] = cloud[fields.z]
    v_name = _first_present(fields.velocity, available)
    if v_name is not None:
        out[:, VELOCITY] = cloud[v_name]
    i_name = _first_present(fields.intensity, available)
    if i_name is not None:
        out[:, INTENSITY] = cloud[i_name]
    return to_rep103(out, axes)


def to_rep103(points: np.ndarray, axes: str) -> np.ndarray:
    """(N, 5) points in `axes` ("rep103" | "ti") -> (M, 5) float32 REP-103, non-finite rows dropped."""
    if axes not in AXES:
        raise RadarInputError(f"unknown radar axes '{axes}'; use one of {AXES}")
    points = validate_points(points)
    if axes == "ti":
        points = points.copy()
        points[:, :3] = points[:, :3] @ R_REP103_FROM_TI.T
    return points


def validate_points(points: np.ndarray, max_points: int | None = None) -> np.ndarray:
    """(N, 5) array-like -> (M, 5) float32 with rows containing NaN/inf removed. Raises RadarInputError."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != NUM_COLUMNS:
        raise RadarInputError(f"radar points must be (N, 5) [x, y, z, velocity, intensity], got shape {points.shape}")
    if not np.issubdtype(points.dtype, np.number):
        raise RadarInputError(f"radar points must be numeric, got dtype {points.dtype}")
    if max_points is not None and points.shape[0] > max_points:
        raise TooManyPointsError(
            f"radar frame has {points.shape[0]} points, more than max_points={max_points}; mmWave radars give "
            "20-300 per frame: check the topic, or raise max_points"
        )
    points = points.astype(np.float32, copy=False)
    finite = np.all(np.isfinite(points), axis=1)
    return np.ascontiguousarray(points[finite])


class FrameAccumulator:
    """Keeps the last `window_frames` frames no older than `max_age_s` and stacks them.

    Accumulating makes sparse radar frames (tens of points per person) dense enough to see limbs.
    """

    def __init__(self, window_frames: int = 4, max_age_s: float = 0.5):
        if window_frames < 1:
            raise ValueError(f"window_frames must be >= 1, got {window_frames}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.window_frames = window_frames
        self.max_age_s = max_age_s
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=window_frames)

    @property
    def last_stamp_s(self) -> float | None:
        return self._frames[-1][0] if self._frames else None

    def add(self, stamp_s: float, points: np.ndarray) -> None:
        """Append a validated (N, 5) frame. Raises StampOrderError if older than the last one."""
        last = self.last_stamp_s
        if last is not None and stamp_s < last:
            raise StampOrderError(
                f"radar frame stamp {stamp_s:.3f} s is older than the previous {last:.3f} s; frame ignored "
                "(reset the pipeline if the source restarted)"
            )
        self._frames.append((float(stamp_s), points))

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """-> points (M, 5) float32 and age_s (M,) float32 (0 for the newest frame) of the frames in the window."""
        points, age, _ = self.stacked_frames()
        return points, age

    def stacked_frames(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> points (M, 5) float32, age_s (M,) float32 and frames_back (M,) int64 (0 for the newest frame, 1 for
        the one before, ...) of the frames in the window."""
        if not self._frames:
            return np.zeros((0, NUM_COLUMNS), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        newest = self._frames[-1][0]
        kept = [(back, t, p) for back, (t, p) in enumerate(reversed(self._frames)) if newest - t <= self.max_age_s][
            ::-1
        ]
        points = np.concatenate([p for _, _, p in kept], axis=0)
        age = np.concatenate([np.full(len(p), newest - t, np.float32) for _, t, p in kept])
        back = np.concatenate([np.full(len(p), b, np.int64) for b, _, p in kept])
        return points, age, back

    def reset(self) -> None:
        self._frames.clear()
