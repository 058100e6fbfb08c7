"""Person finder for real photos: MediaPipe's bundled detectors fused over tiles and scales (CPU, offline).

Sources, each decoded over all anchors (`human/detectors.py`): the BlazePose person detector (a head box plus
the hip centre and a full-body radius: people seen from any side, as long as the head shows), the full-range
face detector (small and partly hidden faces) and, optionally, the palm detector (support for a person whose
head is cut off) and the selfie-segmentation mask's blobs. Each runs on the whole image and on overlapping
tiles (small people become big enough for the 192-224 px model inputs), within a time budget; detections
of one person from several windows and sources are merged into one proposal with a body box, a head box
and a score. The keypoint model then confirms or rejects each proposal (pipeline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from pose_perception.human.detectors import (
    FACE_DETECTOR,
    PALM_DETECTOR,
    POSE_DETECTOR,
    Detection,
    SsdDetector,
    nms,
    tile_windows,
)
from pose_perception.human.proposals import PersonProposal, apply_depth, body_box_from_face
from pose_perception.human.tracking import box_iou


@dataclass(frozen=True)
class FinderConfig:
    """pose_min_score / face_min_score: detector score thresholds (the keypoint model confirms afterwards);
    tile_fractions: tile sides as fractions of the image's shorter side, coarse to fine (the whole image is
    always looked at first); pose_only_min_score: a person detection the face detector does not back needs
    this score (the pose detector scores cups and wheels up to ~0.52; people facing away have no face to
    back them, so they need a clear detection); budget_ms: most time one propose() call spends on detectors (0: no limit; windows
    left over are looked at on the next calls, so a video stream covers all tiles every few frames);
    palms: run the palm detector too; nms_iou: head boxes overlapping more are one detection."""

    pose_min_score: float = 0.35
    pose_only_min_score: float = 0.55
    face_min_score: float = 0.5
    tile_fractions: tuple[float, ...] = (0.6,)
    tile_overlap: float = 0.25
    budget_ms: float = 0.0
    palms: bool = False
    nms_iou: float = 0.3
    depth_band_m: float = 0.6
    threads: int = 1


@dataclass
class _Person:
    """Evidence for one person: head box (4,) or None, body box (4,), hip centre (2,) or None, score."""

    head: Optional[np.ndarray]
    body: np.ndarray
    score: float
    alignment: Optional[np.ndarray] = None  # (2, 2) hip centre, full-body scale point
    sources: set = field(default_factory=set)


def body_box_from_pose(det: Detection, width: int, height: int) -> np.ndarray:
    """(4,) body box of a BlazePose detection: the circle around the hip centre through the full-body scale
    point (MediaPipe's landmark region before its 1.25 margin), grown to hold the head box; clipped."""
    hip, scale = det.keypoints_uv[0], det.keypoints_uv[1]
    r = float(np.linalg.norm(scale - hip))
    box = np.array([hip[0] - r, hip[1] - r, hip[0] + r, hip[1] + r], np.float32)
    box = np.array(
        [
            min(box[0], det.box_xyxy[0]),
            min(box[1], det.box_xyxy[1]),
            max(box[2], det.box_xyxy[2]),
            max(box[3], det.box_xyxy[3]),
        ],
        np.float32,
    )
    return np.clip(box, 0, [width, height, width, height]).astype(np.float32)


def _same_head(a: np.ndarray, b: np.ndarray) -> bool:
    """Two head boxes show one head: they overlap by IoU, or one's centre lies inside the other."""
    if box_iou(a, b) > 0.3:
        return True
    for p, q in ((a, b), (b, a)):
        c = 0.5 * (p[:2] + p[2:])
        if q[0] <= c[0] <= q[2] and q[1] <= c[1] <= q[3]:
            return True
    return False


class PersonFinder:
    """PersonProposer fusing MediaPipe's bundled detectors; see the module docstring. Not thread-safe."""

    def __init__(self, config: FinderConfig = FinderConfig()) -> None:
        self.config = config
        self.pose = SsdDetector(POSE_DETECTOR, config.threads, config.pose_min_score)
        self.face = SsdDetector(FACE_DETECTOR, config.threads, config.face_min_score)
        self.palm = SsdDetector(PALM_DETECTOR, config.threads) if config.palms else None
        self._cursor = 0  # next window when the budget cut the last call short
        self._pending: list[Detection] = []
        self.last_timing_ms: dict[str, float] = {}

    def close(self) -> None:
        pass

    def windows(self, width: int, height: int) -> list[Optional[np.ndarray]]:
        """The whole image (None), then tiles coarse to fine."""
        out: list[Optional[np.ndarray]] = [None]
        short = min(width, height)
        for f in self.config.tile_fractions:
            # Tiles smaller than half the model input would be upsampled more than twice: the detectors then
            # see people in hands, feet and balls.
            if f * short >= 0.5 * POSE_DETECTOR.input_side:
                out += tile_windows(width, height, f * short, self.config.tile_overlap)
        return out

    def detect(
        self, rgb: np.ndarray, budget_ms: Optional[float] = None
    ) -> tuple[list[Detection], list[Detection], list[Detection]]:
        """Pose, face and palm detections (NMS within each source) over the windows this call's budget
        allows; returns ([pose], [face], [palm])."""
        H, W = rgb.shape[:2]
        budget = self.config.budget_ms if budget_ms is None else budget_ms
        wins = self.windows(W, H)
        t0 = time.perf_counter()
        pose: list[Detection] = []
        face: list[Detection] = []
        palm: list[Detection] = []
        timing = {"pose_ms": 0.0, "face_ms": 0.0, "palm_ms": 0.0}
        # The whole image on every call, then tiles from where the last call stopped, at least one, while the
        # budget lasts.
        tiles = list(range(1, len(wins)))
        if budget > 0 and tiles:
            k = self._cursor % len(tiles)
            tiles = tiles[k:] + tiles[:k]
        done = 0
        for i in [0] + tiles:
            if budget > 0 and done > 1 and (time.perf_counter() - t0) * 1e3 > budget:
                break
            w = wins[i]
            t = time.perf_counter()
            pose += self.pose.detect(rgb, w)
            timing["pose_ms"] += (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            face += self.face.detect(rgb, w)
            timing["face_ms"] += (time.perf_counter() - t) * 1e3
            if self.palm is not None:
                t = time.perf_counter()
                palm += self.palm.detect(rgb, w)
                timing["palm_ms"] += (time.perf_counter() - t) * 1e3
            done += 1
            if i != 0:
                self._cursor = i  # tile i is index i - 1 of the tile list: the next call starts after it
        timing["windows"] = float(done)
        self.last_timing_ms = timing
        iou = self.config.nms_iou
        return nms(pose, iou), nms(face, iou), nms(palm, iou)

    def propose(
        self, rgb: np.ndarray, depth_m: Optional[np.ndarray] = None, budget_ms: Optional[float] = None
    ) -> list[PersonProposal]:
        """rgb: (H, W, 3) uint8; depth_m: (H, W) metres or None. Proposals, best first."""
        H, W = rgb.shape[:2]
        pose, face, palm = self.detect(rgb, budget_ms)
        people: list[_Person] = []
        for d in pose:
            people.append(
                _Person(d.box_xyxy, body_box_from_pose(d, W, H), d.score, d.keypoints_uv[:2].copy(), {"pose"})
            )
        for d in face:
            match = next((p for p in people if p.head is not None and _same_head(p.head, d.box_xyxy)), None)
            if match is not None:
                match.score = 1.0 - (1.0 - match.score) * (1.0 - d.score)  # two detectors agree
                match.sources.add("face")
                continue
            people.append(_Person(d.box_xyxy, body_box_from_face(d.box_xyxy, W, H), d.score, None, {"face"}))
        for d in palm:
            # A palm inside a person's body box supports them; a palm nobody explains proposes the region around
            # it (a person whose head is out of view), at a lower score.
            c = 0.5 * (d.box_xyxy[:2] + d.box_xyxy[2:])
            holder = [p for p in people if p.body[0] <= c[0] <= p.body[2] and p.body[1] <= c[1] <= p.body[3]]
            if holder:
                continue
            s = max(d.box_xyxy[2] - d.box_xyxy[0], d.box_xyxy[3] - d.box_xyxy[1])
            body = np.clip(
                np.array([c[0] - 3 * s, c[1] - 4 * s, c[0] + 3 * s, c[1] + 4 * s], np.float32), 0, [W, H, W, H]
            ).astype(np.float32)
            people.append(_Person(None, body, 0.5 * d.score, None, {"palm"}))
        people = [p for p in people if p.sources != {"pose"} or p.score >= self.config.pose_only_min_score]
        people.sort(key=lambda p: -p.score)
        proposals = []
        for p in people:
            anchor = None if p.head is None else (0.5 * (p.head[:2] + p.head[2:])).astype(np.float32)
            proposals.append(
                PersonProposal(
                    p.body,
                    float(p.score),
                    anchor,
                    source="+".join(sorted(p.sources)),
                    head_xyxy=p.head,
                    alignment_uv=p.alignment,
                )
            )
        return apply_depth(proposals, depth_m, self.config.depth_band_m)
