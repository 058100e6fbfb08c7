"""Where the real recordings for development and evaluation live: `../shared/realdata` beside the clone.

One resolver for every eval command and test, so a source run, an installed package run from the clone, and a
run from the package folder all find the same folder (the data is never shipped: see its README's licences)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "POSE_PERCEPTION_REALDATA"


def realdata_dir(*parts: str) -> Path:
    """The folder `<realdata>/<parts...>`: $POSE_PERCEPTION_REALDATA if set, else the first `shared/realdata`
    beside the source tree's clone or beside the working directory or one of its parents. Returns the
    first candidate even when it does not exist, so callers can say where they looked."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).joinpath(*parts)
    clone = Path(__file__).resolve().parents[3]  # <clone>/pose_perception/pose_perception/core/realdata.py
    cwd = Path.cwd().resolve()
    candidates = [clone.parent / "shared" / "realdata"]
    candidates += [d.parent / "shared" / "realdata" for d in (cwd, *cwd.parents) if d.parent != d]
    for root in candidates:
        if root.joinpath(*parts).is_dir():
            return root.joinpath(*parts)
    return candidates[0].joinpath(*parts)
