"""Progress of long commands with the time left: one way for every command (tqdm, pinned)."""

from __future__ import annotations

import os
import sys


def progress(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on stderr with rate and time left. Drawn on a terminal; elsewhere (logs, CI) silent unless
    POSE_PERCEPTION_PROGRESS=1. Use as bar.update(n) ... bar.close(), or as a context manager."""
    from tqdm import tqdm

    force = os.environ.get("POSE_PERCEPTION_PROGRESS") == "1"
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=False if force else not sys.stderr.isatty(),
        mininterval=0.5 if force else 0.1,
    )


def time_left(elapsed_s: float, done: int, total: int) -> str:
    """'m:ss left' (or 'h:mm:ss left') from the mean time of the steps done so far; '' before the first."""
    if done <= 0 or total <= done:
        return "" if done <= 0 else "0:00 left"
    left = int(round(elapsed_s / done * (total - done)))
    h, rem = divmod(left, 3600)
    m, s = divmod(rem, 60)
    return (f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}") + " left"
