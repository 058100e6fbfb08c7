"""Temporal smoothing of noisy per-frame estimates (keypoints in pixels or metres, poses).

The One-Euro filter: an adaptive low-pass filter that smooths jitter at rest and follows fast motion.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


class FilterTimeError(ValueError):
    """A timestamp that is not a finite number of seconds."""


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter with this cutoff for a sample period dt_s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) applied elementwise to arrays of any fixed shape.

    min_cutoff: Hz, the cutoff at rest (lower = smoother, more lag). beta: cutoff increase per unit/s of speed
    (higher = less lag on fast motion). d_cutoff: Hz, cutoff of the speed estimate.

    NaN-aware: a NaN input element gives NaN output and forgets that element's state, so a keypoint that
    reappears starts fresh instead of being dragged from where it was lost. A timestamp that goes backwards
    (a replayed bag looping) resets the filter; a repeated timestamp returns the previous output.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"OneEuroFilter {name} must be a positive frequency in Hz, got {value}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"OneEuroFilter beta must be >= 0, got {beta}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._t: Optional[float] = None
        self._x: Optional[np.ndarray] = None  # last filtered value, NaN where no state
        self._dx: Optional[np.ndarray] = None  # last filtered speed

    def __call__(self, t_s: float, x: np.ndarray) -> np.ndarray:
        """t_s: timestamp in seconds; x: array (any shape, same every call). Returns the filtered array
        (float64, same shape as x)."""
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise FilterTimeError(f"OneEuroFilter timestamp must be finite seconds, got {t_s}")
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._dx is None or self._x.shape != x.shape or self._t is None or t_s < self._t:
            self._start(t_s, x)
            return x.copy()
        dt = t_s - self._t
        if dt == 0.0:
            out = np.where(np.isfinite(self._x), self._x, x)
            return out
        valid_in = np.isfinite(x)
        has_state = np.isfinite(self._x)
        update = valid_in & has_state

        dx = np.zeros_like(x)
        dx[update] = (x[update] - self._x[update]) / dt
        dx_hat = _alpha(self.d_cutoff, dt) * dx + (1.0 - _alpha(self.d_cutoff, dt)) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = np.where(update, a * x + (1.0 - a) * np.where(has_state, self._x, 0.0), x)

        # Elements without state start from the raw value; NaN inputs forget theirs.
        self._x = np.where(valid_in, x_hat, np.nan)
        self._dx = np.where(update, dx_hat, 0.0)
        self._t = t_s
        return self._x.copy()

    def _start(self, t_s: float, x: np.ndarray) -> None:
        self._t = t_s
        self._x = np.where(np.isfinite(x), x, np.nan)
        self._dx = np.zeros_like(x)
