"""Multi-person tracking: stable ids across frames and One-Euro smoothing of 2D and 3D keypoints.

Assignment by box IoU + keypoint similarity (OKS-like), births and losses with hysteresis, ids never reused.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose_perception.core import keypoints as kp
from pose_perception.core.filters import OneEuroFilter
from pose_perception.core.types import HumanPose
from pose_perception.core.frames import body_frame


def bbox_of(human: HumanPose, min_conf: float = 0.2) -> Optional[np.ndarray]:
    """(4,) float64 [x0, y0, x1, y1]: the human's box, else the extent of its confident 2D keypoints."""
    if human.bbox_xyxy is not None and np.all(np.isfinite(human.bbox_xyxy)):
        return np.asarray(human.bbox_xyxy, dtype=np.float64)
    uv = np.asarray(human.keypoints_uv, dtype=np.float64)
    ok = np.all(np.isfinite(uv), axis=1) & (np.asarray(human.confidence) >= min_conf)
    if np.count_nonzero(ok) < 2:
        return None
    return np.concatenate([uv[ok].min(axis=0), uv[ok].max(axis=0)])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def keypoint_similarity(
    uv_a: np.ndarray,
    conf_a: np.ndarray,
    uv_b: np.ndarray,
    conf_b: np.ndarray,
    box: np.ndarray,
    kappa: float = 0.1,
    min_conf: float = 0.2,
) -> float:
    """OKS-like similarity in [0, 1]: mean of exp(-d^2 / (2 s^2 kappa^2)) over keypoints confident in both,
    s = sqrt(box area); 0 with fewer than 3 shared keypoints."""
    ok = (
        (conf_a >= min_conf)
        & (conf_b >= min_conf)
        & np.all(np.isfinite(uv_a), axis=1)
        & np.all(np.isfinite(uv_b), axis=1)
    )
    if np.count_nonzero(ok) < 3:
        return 0.0
    s2 = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    d2 = np.sum((uv_a[ok] - uv_b[ok]) ** 2, axis=1)
    return float(np.mean(np.exp(-d2 / (2.0 * s2 * kappa**2))))


def _pelvis_3d(human: HumanPose) -> Optional[np.ndarray]:
    if human.keypoints_3d is None or len(human.keypoints_3d) < 17:
        return None
    p = kp.pelvis(np.asarray(human.keypoints_3d, dtype=np.float64))
    return p if np.all(np.isfinite(p)) else None


@dataclass
class _Track:
    last: HumanPose
    hits: int = 1
    misses: int = 0
    track_id: Optional[int] = None  # given on confirmation, so dropped tentative tracks burn no ids
    filter_uv: OneEuroFilter = field(default=None)  # type: ignore[assignment]
    filter_3d: OneEuroFilter = field(default=None)  # type: ignore[assignment]


class HumanTracker:
    """Tracks people across frames.

    iou_weight, keypoint_weight: weights of box IoU and OKS-like keypoint similarity (2D sources); people
    without 2D (radar) match on pelvis distance with a Gaussian of sigma_3d_m. A pair matches when its
    similarity >= min_similarity (Hungarian assignment on 1 - similarity). A new person is output after
    min_hits consecutive matched frames; a track is dropped after max_misses consecutive frames unmatched.
    Ids start at 1 and are never reused, not even after reset(). Keypoints are smoothed per track with
    One-Euro filters (2D in pixels, 3D in metres).
    """

    def __init__(
        self,
        iou_weight: float = 0.5,
        keypoint_weight: float = 0.5,
        min_similarity: float = 0.2,
        min_hits: int = 3,
        max_misses: int = 5,
        sigma_3d_m: float = 0.4,
        min_cutoff_2d: float = 1.5,
        beta_2d: float = 0.05,
        min_cutoff_3d: float = 1.0,
        beta_3d: float = 2.0,
    ) -> None:
        if min_hits < 1 or max_misses < 0:
            raise ValueError(f"min_hits must be >= 1 and max_misses >= 0, got {min_hits} and {max_misses}")
        if iou_weight < 0 or keypoint_weight < 0 or iou_weight + keypoint_weight <= 0:
            raise ValueError("iou_weight and keypoint_weight must be >= 0 and not both 0")
        self.iou_weight = iou_weight
        self.keypoint_weight = keypoint_weight
        self.min_similarity = min_similarity
        self.min_hits = min_hits
        self.max_misses = max_misses
        self.sigma_3d_m = sigma_3d_m
        self._filter_args = ((min_cutoff_2d, beta_2d), (min_cutoff_3d, beta_3d))
        self._next_id = 1
        self._tracks: list[_Track] = []
        self._last_stamp: Optional[float] = None

    def reset(self) -> None:
        """Forget all tracks (ids keep counting up)."""
        self._tracks = []
        self._last_stamp = None

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    def similarity(self, a: HumanPose, b: HumanPose) -> float:
        box_a, box_b = bbox_of(a), bbox_of(b)
        if box_a is not None and box_b is not None:
            iou = box_iou(box_a, box_b)
            oks = keypoint_similarity(
                np.asarray(a.keypoints_uv),
                np.asarray(a.confidence),
                np.asarray(b.keypoints_uv),
                np.asarray(b.confidence),
                box_b,
            )
            return (self.iou_weight * iou + self.keypoint_weight * oks) / (self.iou_weight + self.keypoint_weight)
        pa, pb = _pelvis_3d(a), _pelvis_3d(b)
        if pa is not None and pb is not None:
            return float(math.exp(-0.5 * float(np.sum((pa - pb) ** 2)) / self.sigma_3d_m**2))
        return 0.0

    def update(self, stamp_s: float, humans: list[HumanPose]) -> list[HumanPose]:
        """stamp_s: frame time in seconds; humans: this frame's detections (their track_id is ignored).
        Returns the confirmed people seen in this frame with stable track_id and smoothed keypoints (and
        T_sensor_body recomputed from the smoothed 3D). A timestamp going backwards resets the tracks."""
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite seconds, got {stamp_s}")
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            self.reset()
        self._last_stamp = stamp_s

        matched_det: dict[int, int] = {}
        if self._tracks and humans:
            sim = np.array([[self.similarity(t.last, h) for h in humans] for t in self._tracks])
            rows, cols = linear_sum_assignment(1.0 - sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity:
                    matched_det[c] = r

        out: list[HumanPose] = []
        matched_tracks = set(matched_det.values())
        survivors: list[_Track] = []
        for i, track in enumerate(self._tracks):
            if i in matched_tracks:
                survivors.append(track)
                continue
            track.misses += 1
            # Tentative tracks die on their first miss; confirmed ones after max_misses.
            if track.track_id is not None and track.misses <= self.max_misses:
                survivors.append(track)
        by_index = {id(t): t for t in survivors}
        for det_index, human in enumerate(humans):
            if det_index in matched_det:
                track = self._tracks[matched_det[det_index]]
                if id(track) not in by_index:
                    continue
                track.hits += 1
                track.misses = 0
            else:
                (c2, b2), (c3, b3) = self._filter_args
                track = _Track(last=human, filter_uv=OneEuroFilter(c2, b2), filter_3d=OneEuroFilter(c3, b3))
                survivors.append(track)
            smoothed = self._smooth(track, stamp_s, human)
            track.last = smoothed
            if track.track_id is None and track.hits >= self.min_hits:
                track.track_id = self._next_id
                self._next_id += 1
            if track.track_id is not None:
                out.append(dataclasses.replace(smoothed, track_id=track.track_id))
        self._tracks = survivors
        return out

    def _smooth(self, track: _Track, stamp_s: float, human: HumanPose) -> HumanPose:
        uv = np.asarray(human.keypoints_uv, dtype=np.float64)
        new_uv = track.filter_uv(stamp_s, uv).astype(np.float32)
        new_3d = None
        T_body = human.T_sensor_body
        if human.keypoints_3d is not None:
            new_3d = track.filter_3d(stamp_s, np.asarray(human.keypoints_3d, dtype=np.float64)).astype(np.float32)
            if len(new_3d) >= 17:
                T_body = body_frame(new_3d)
        return dataclasses.replace(human, keypoints_uv=new_uv, keypoints_3d=new_3d, T_sensor_body=T_body)
