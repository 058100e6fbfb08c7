"""Multi-person tracking on the radar's ground plane: constant-velocity Kalman filters on (x, y), Hungarian
assignment of cluster centroids (scipy), birth/loss hysteresis, ids stable and never reused.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class TrackerConfig:
    """Units: metres, seconds. gate_m: largest centroid-to-prediction distance for an assignment."""

    gate_m: float = 1.0
    min_hits: int = 3  # a tentative track is confirmed after this many assigned frames
    max_tentative_misses: int = 1  # in total before confirmation: ghosts rarely repeat in place
    max_coast_s: float = 2.0  # a confirmed track without measurements survives this long (still people)
    # ... but only once it has been measured this often: a ghost that repeated a few times in place (REAL
    # multipath) ends at its first miss instead of being reported for max_coast_s.
    min_hits_to_coast: int = 8
    # A coasting track this close (m) to a measured one is the same body (its cluster now belongs to the other
    # track, e.g. a limb that was clustered apart) and ends.
    coast_exclusion_m: float = 0.8
    # A tentative track is confirmed only if its clusters held this many points on average: REAL multipath
    # ghosts that repeat in place are small (median 13 accumulated points over 4 frames in MARS, a person
    # 60-120; 15 lost frames of the simulator's spinning person at 20 Hz).
    min_confirm_points: float = 10.0
    accel_sigma: float = 2.0  # process noise, m/s^2 (people start and stop quickly)
    meas_sigma_m: float = 0.15  # centroid noise of a radar cluster


@dataclass
class Track:
    """A person hypothesis. state: (4,) [x, y, vx, vy]; P: (4, 4) covariance; z_m: smoothed centroid height."""

    id: int
    state: np.ndarray
    P: np.ndarray
    z_m: float
    last_update_s: float
    hits: int = 1
    points_sum: float = 0.0  # accumulated cluster sizes while tentative (confirmation needs min_confirm_points)
    misses: int = 0  # consecutive frames without a measurement
    total_misses: int = 0  # a tentative track is dropped when these exceed max_tentative_misses
    confirmed: bool = False
    cluster: int | None = field(default=None)  # index of this frame's assigned cluster, None if coasting

    @property
    def position_m(self) -> np.ndarray:
        return np.array([self.state[0], self.state[1], self.z_m])


class MultiTargetTracker:
    """update(stamp_s, centroids (M, 3)) -> confirmed tracks; each track's `cluster` names its measurement."""

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self._ids = itertools.count(1)
        self.tracks: list[Track] = []
        self._last_stamp: float | None = None

    def reset(self) -> None:
        """Drop all tracks; ids keep counting so no id is ever reused."""
        self.tracks = []
        self._last_stamp = None

    def _predict(self, dt: float) -> None:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = self.config.accel_sigma**2
        G = np.array([[0.5 * dt * dt, 0], [0, 0.5 * dt * dt], [dt, 0], [0, dt]])
        Q = G @ G.T * q
        for tr in self.tracks:
            tr.state = F @ tr.state
            tr.P = F @ tr.P @ F.T + Q

    def _correct(self, tr: Track, z: np.ndarray, stamp_s: float, size: float) -> None:
        H = np.zeros((2, 4))
        H[0, 0] = H[1, 1] = 1.0
        Rm = np.eye(2) * self.config.meas_sigma_m**2
        S = H @ tr.P @ H.T + Rm
        # Closed-form 2x2 inverse: LAPACK's thread pool costs milliseconds per call on a busy machine.
        S_inv = np.array([[S[1, 1], -S[0, 1]], [-S[1, 0], S[0, 0]]]) / (S[0, 0] * S[1, 1] - S[0, 1] * S[1, 0])
        K = tr.P @ H.T @ S_inv
        tr.state = tr.state + K @ (z[:2] - H @ tr.state)
        tr.P = (np.eye(4) - K @ H) @ tr.P
        tr.z_m = 0.7 * tr.z_m + 0.3 * float(z[2])
        tr.last_update_s = stamp_s
        tr.hits += 1
        tr.misses = 0
        tr.points_sum += size
        if tr.hits >= self.config.min_hits and tr.points_sum >= self.config.min_confirm_points * tr.hits:
            tr.confirmed = True

    def update(self, stamp_s: float, centroids_m: np.ndarray, sizes: np.ndarray | None = None) -> list[Track]:
        """stamp_s must not decrease (the caller checks); centroids_m (M, 3) radar frame; sizes (M,): points
        of each cluster (None: large enough). Returns confirmed tracks alive after this frame, assigned ones
        with `cluster` set."""
        centroids_m = np.asarray(centroids_m, np.float64).reshape(-1, 3)
        sizes = np.full(len(centroids_m), np.inf) if sizes is None else np.asarray(sizes, np.float64)
        dt = 0.0 if self._last_stamp is None else max(0.0, stamp_s - self._last_stamp)
        self._last_stamp = stamp_s
        self._predict(dt)
        for tr in self.tracks:
            tr.cluster = None
        unassigned = set(range(len(centroids_m)))
        if self.tracks and len(centroids_m):
            pred = np.array([tr.state[:2] for tr in self.tracks])
            cost = np.linalg.norm(pred[:, None, :] - centroids_m[None, :, :2], axis=2)
            # Confirmed tracks win ties against tentative ones.
            cost += np.array([0.0 if tr.confirmed else 0.05 for tr in self.tracks])[:, None]
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] <= self.config.gate_m:
                    self._correct(self.tracks[r], centroids_m[c], stamp_s, float(sizes[c]))
                    self.tracks[r].cluster = int(c)
                    unassigned.discard(int(c))
        alive = []
        measured = np.array([tr.state[:2] for tr in self.tracks if tr.cluster is not None]).reshape(-1, 2)
        for tr in self.tracks:
            if tr.cluster is None:
                if (
                    len(measured)
                    and np.min(np.linalg.norm(measured - tr.state[:2], axis=1)) < self.config.coast_exclusion_m
                ):
                    continue
                tr.misses += 1
                tr.total_misses += 1
                if not tr.confirmed and tr.total_misses > self.config.max_tentative_misses:
                    continue
                if tr.confirmed and (
                    stamp_s - tr.last_update_s > self.config.max_coast_s or tr.hits < self.config.min_hits_to_coast
                ):
                    continue
                # A coasting person most likely stopped: bleed off the velocity instead of drifting away.
                tr.state[2:] *= 0.5
            alive.append(tr)
        for c in sorted(unassigned):
            z = centroids_m[c]
            P = np.diag([self.config.meas_sigma_m**2] * 2 + [1.0, 1.0])
            alive.append(
                Track(
                    next(self._ids),
                    np.array([z[0], z[1], 0.0, 0.0]),
                    P,
                    float(z[2]),
                    stamp_s,
                    points_sum=float(sizes[c]),
                    confirmed=self.config.min_hits <= 1 and sizes[c] >= self.config.min_confirm_points,
                    cluster=c,
                )
            )
        self.tracks = alive
        return [tr for tr in self.tracks if tr.confirmed]
