"""DeepMimic humanoid3d mocap clips (inside the pybullet wheel's pybullet_data, zlib): their frame layout and one reader,
shared by the synthetic humans (evaluation/human/synthetic.py) and the radar simulator (evaluation/radar/simulator.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Joints driven by the mocap, in file order; 1 value = revolute about local z, 4 = quaternion (w, x, y, z).
MOTION_JOINTS = (
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
)
# A frame: duration (s), root position (3), root quaternion (w, x, y, z), then MOTION_JOINTS' values.
FRAME_LENGTH = 1 + 3 + 4 + sum(n for _, n in MOTION_JOINTS)


class MocapClipError(ValueError):
    """A mocap clip file is missing, unreadable or not in the DeepMimic layout."""


def read_clip(path: Path) -> tuple[np.ndarray, bool]:
    """(frames (F, FRAME_LENGTH) float64, wraps: the clip's "Loop" is "wrap") of a DeepMimic motion file (JSON with
    "Frames"), at least 2 frames. Raises MocapClipError naming the file."""
    try:
        data = json.loads(Path(path).read_text())
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MocapClipError(f"cannot read mocap clip '{path}': {exc}") from exc
    if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH or len(frames) < 2:
        raise MocapClipError(f"mocap clip '{path}' must have >= 2 frames of {FRAME_LENGTH} values, got {frames.shape}")
    return frames, data.get("Loop") == "wrap"
