"""Where derived data is cached on disk (object features, body model, synthetic scene data): one root for all."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """$POSE_PERCEPTION_CACHE/<kind>, else $XDG_CACHE_HOME/pose_perception/<kind>, else ~/.cache/pose_perception/<kind>."""
    root = os.environ.get("POSE_PERCEPTION_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pose_perception")
    return Path(root) / kind
