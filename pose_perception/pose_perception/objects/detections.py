"""2D detections from outside (any detector or segmenter a robot already runs) as input to the object estimator:
a class name restricts which model is searched, a box where.

The ROS node converts `vision_msgs/Detection2DArray` into these (ros/conversions.py: detections_from_msg); the
mapping: `results[0].hypothesis.class_id` (the best hypothesis) is the object name as loaded (NAME of NAME=PATH),
empty for "any object"; `bbox.center.position` (x, y) and `bbox.size_x`, `size_y` in pixels give the box
[cx - sx/2, cy - sy/2, cx + sx/2, cy + sy/2); `bbox.center.theta` is ignored (an axis-aligned box around a turned
one would be needed; detectors publish 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class Detection2D:
    """box_xyxy (4,) float pixels [u0, v0, u1, v1); name: the object to search for there (None: any loaded one)."""

    box_xyxy: np.ndarray
    name: str | None = None


def valid_detections(
    detections: Iterable[Detection2D],
    width: int,
    height: int,
    known: Sequence[str],
) -> tuple[list[Detection2D], list[str]]:
    """The usable detections, boxes clipped to the image, and one message per dropped one: boxes that are not
    finite, empty, or wholly outside the width x height image, and names that are not loaded (`known`)."""
    kept: list[Detection2D] = []
    problems: list[str] = []
    for i, d in enumerate(detections):
        box = np.asarray(d.box_xyxy, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            problems.append(f"detection {i}: box {box.tolist()} is not 4 finite numbers")
            continue
        if d.name is not None and d.name not in known:
            problems.append(f"detection {i}: '{d.name}' is not a loaded object (loaded: {', '.join(sorted(known))})")
            continue
        clipped = np.clip(box, 0, [width, height, width, height])
        if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            problems.append(
                f"detection {i}: box {box.round(1).tolist()} is empty or outside the {width}x{height} image"
            )
            continue
        kept.append(Detection2D(clipped, d.name))
    return kept, problems
