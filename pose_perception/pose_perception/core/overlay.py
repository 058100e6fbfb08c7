"""Drawing results on images: 2D skeletons coloured per track id (CLI --overlay, debug/image, demo PNGs)."""

from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np

from pose_perception.core.keypoints import KeypointLayout
from pose_perception.core.types import HumanPose


def id_color_rgb(track_id: int) -> tuple[int, int, int]:
    """Same hue sequence as the RViz markers (golden-ratio steps)."""
    r, g, b = colorsys.hsv_to_rgb((int(track_id) * 0.618033988749895) % 1.0, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_humans(
    rgb: np.ndarray, humans: Sequence[HumanPose], layout: KeypointLayout, min_confidence: float = 0.3
) -> np.ndarray:
    """rgb (H, W, 3) uint8 -> a copy with each person's box, bones, joints and id drawn."""
    import cv2

    img = np.ascontiguousarray(rgb).copy()
    scale = max(1, round(max(img.shape[:2]) / 640))
    for h in humans:
        color = id_color_rgb(h.track_id)
        uv = np.asarray(h.keypoints_uv, dtype=np.float64)
        ok = np.isfinite(uv).all(axis=1) & (np.asarray(h.confidence) >= min_confidence)
        for a, b in layout.edges:
            if ok[a] and ok[b]:
                cv2.line(
                    img,
                    tuple(np.round(uv[a]).astype(int)),
                    tuple(np.round(uv[b]).astype(int)),
                    color,
                    scale,
                    cv2.LINE_AA,
                )
        for p in uv[ok]:
            cv2.circle(img, tuple(np.round(p).astype(int)), scale + 1, color, -1, cv2.LINE_AA)
        if h.bbox_xyxy is not None and np.isfinite(h.bbox_xyxy).all():
            x0, y0, x1, y1 = np.round(h.bbox_xyxy).astype(int)
            cv2.rectangle(img, (x0, y0), (x1, y1), color, scale)
            cv2.putText(
                img,
                f"id {h.track_id} {h.score:.2f}",
                (x0, max(12, y0 - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5 * scale,
                color,
                scale,
                cv2.LINE_AA,
            )
    return img
