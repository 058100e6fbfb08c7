"""Person finder for real photos: MediaPipe's bundled detectors fused over tiles and scales (CPU, offline).

Sources, each decoded over all anchors (`human/detectors.py`): the BlazePose person detector (a head box plus
the hip centre and a full-body radius: people seen from any side, as long as the head shows), the full-range
face detector (small and partly hidden faces), an SSDLite person detector that sees whole bodies
(`human/person_ssd.py`: people whose head the BlazePose detector scores low) and, optionally, the palm detector
(support for a person whose head is cut off). Each runs on the whole image and on overlapping
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
from pose_perception.human.person_ssd import INPUT_SIDE as BOX_INPUT_SIDE
from pose_perception.human.person_ssd import PersonBox, SsdLitePersonDetector
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
    palms: run the palm detector too; nms_iou: head boxes overlapping more are one detection;
    person_boxes: run the SSDLite whole-body person detector too, on the whole image and on tiles of
    box_tile_fractions, keeping boxes scored box_min_score or more: a box backs the head detections in its top
    part, and a box that backs nobody is a proposal of its own; covered_fraction: with a budget, a tile this much inside people already found is looked at last."""

    pose_min_score: float = 0.35
    pose_only_min_score: float = 0.55
    face_min_score: float = 0.5
    tile_fractions: tuple[float, ...] = (0.6,)
    tile_overlap: float = 0.25
    budget_ms: float = 0.0
    palms: bool = False
    nms_iou: float = 0.3
    person_boxes: bool = True
    box_min_score: float = 0.4
    box_tile_fractions: tuple[float, ...] = (0.6,)
    covered_fraction: float = 0.7
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
    """PersonProposer fusing MediaPipe's bundled detectors and the SSDLite person detector; see the module
    docstring. Not thread-safe."""

    def __init__(self, config: FinderConfig = FinderConfig()) -> None:
        self.config = config
        self.pose = SsdDetector(POSE_DETECTOR, config.threads, config.pose_min_score)
        self.face = SsdDetector(FACE_DETECTOR, config.threads, config.face_min_score)
        self.palm = SsdDetector(PALM_DETECTOR, config.threads) if config.palms else None
        self.boxes = SsdLitePersonDetector(config.box_min_score) if config.person_boxes else None
        self._cursor = 0  # next work item when the budget cut the last call short
        self.last_timing_ms: dict[str, float] = {}

    def close(self) -> None:
        pass

    def _tiles(self, width: int, height: int, fractions: tuple[float, ...], input_side: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        short = min(width, height)
        for f in fractions:
            # Tiles smaller than half the model input would be upsampled more than twice: the detectors then
            # see people in hands, feet and balls.
            if f * short >= 0.5 * input_side:
                out += tile_windows(width, height, f * short, self.config.tile_overlap)
        return out

    def windows(self, width: int, height: int) -> list[Optional[np.ndarray]]:
        """The MediaPipe detectors' windows: the whole image (None), then tiles coarse to fine."""
        return [None] + list(self._tiles(width, height, self.config.tile_fractions, POSE_DETECTOR.input_side))

    def work(self, width: int, height: int) -> list[tuple[str, Optional[np.ndarray]]]:
        """(detector, window) items of one full round: the MediaPipe detectors ("mp") on the whole image first,
        then the person-box detector ("box") on the whole image, the MediaPipe tiles and the box tiles."""
        items: list[tuple[str, Optional[np.ndarray]]] = [("mp", None)]
        if self.boxes is not None:
            items.append(("box", None))
        items += [("mp", w) for w in self.windows(width, height)[1:]]
        if self.boxes is not None:
            items += [("box", w) for w in self._tiles(width, height, self.config.box_tile_fractions, BOX_INPUT_SIDE)]
        return items

    def schedule(self, items: list[tuple[str, Optional[np.ndarray]]], known_boxes: Optional[list] = None) -> list[int]:
        """Indices into `items` in the order a budgeted call (video) looks at them: MediaPipe on the whole image
        first, then the other items (the box detector's whole-image pass, the tiles) round-robin from where the
        last call stopped, tiles mostly inside a person already found (known_boxes) last: one more look there
        seldom finds anyone new, and the whole-image passes still see who is behind them. (The whole-image box
        pass in every round instead was tried: it halves the rate at which the tiles come round, and the people
        only the box detector finds on the dev frames are found in its tiles, docs/human-real.md.)"""
        rest = list(range(1, len(items)))
        if rest:
            k = self._cursor % len(rest)
            rest = rest[k:] + rest[:k]
            if known_boxes:
                covered = [
                    i
                    for i in rest
                    if items[i][1] is not None and _covered(items[i][1], known_boxes, self.config.covered_fraction)
                ]
                rest = [i for i in rest if i not in covered] + covered
        return [0] + rest

    def detect(
        self, rgb: np.ndarray, budget_ms: Optional[float] = None, known_boxes: Optional[list] = None
    ) -> tuple[list[Detection], list[Detection], list[Detection], list[PersonBox]]:
        """Pose, face and palm detections (NMS within each source) and person boxes over the windows this call's
        budget allows (all of them without a budget; else in schedule()'s order, at least two, until the budget
        is spent); known_boxes: [(4,)] people already found (their tiles go last). Returns ([pose], [face],
        [palm], [box])."""
        H, W = rgb.shape[:2]
        budget = self.config.budget_ms if budget_ms is None else budget_ms
        items = self.work(W, H)
        order = self.schedule(items, known_boxes) if budget > 0 else list(range(len(items)))
        t0 = time.perf_counter()
        pose: list[Detection] = []
        face: list[Detection] = []
        palm: list[Detection] = []
        boxes: list[PersonBox] = []
        timing = {"pose_ms": 0.0, "face_ms": 0.0, "palm_ms": 0.0, "box_ms": 0.0}
        done = 0
        for i in order:
            if budget > 0 and done > 1 and (time.perf_counter() - t0) * 1e3 > budget:
                break
            kind, w = items[i]
            if kind == "box":
                assert self.boxes is not None
                t = time.perf_counter()
                boxes += [b for b in self.boxes.detect(rgb, w) if w is None or not _cut_by_tile(b, W, H)]
                timing["box_ms"] += (time.perf_counter() - t) * 1e3
            else:
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
                self._cursor = i  # item i is index i - 1 of the rest: the next call starts after it
        timing["windows"] = float(done)
        self.last_timing_ms = timing
        iou = self.config.nms_iou
        return nms(pose, iou), nms(face, iou), nms(palm, iou), nms(boxes, 0.5)

    def propose(
        self,
        rgb: np.ndarray,
        depth_m: Optional[np.ndarray] = None,
        budget_ms: Optional[float] = None,
        known_boxes: Optional[list] = None,
    ) -> list[PersonProposal]:
        """rgb: (H, W, 3) uint8; depth_m: (H, W) metres or None; known_boxes: [(4,)] pixels, people already found
        (video: their tiles are looked at last). Proposals, best first."""
        H, W = rgb.shape[:2]
        pose, face, palm, boxes = self.detect(rgb, budget_ms, known_boxes)
        proposals = fuse_detections(pose, face, palm, boxes, W, H, self.config.pose_only_min_score)
        return apply_depth(proposals, depth_m, self.config.depth_band_m)


def fuse_detections(
    pose: list[Detection],
    face: list[Detection],
    palm: list[Detection],
    boxes: list[PersonBox],
    width: int,
    height: int,
    pose_only_min_score: float,
) -> list[PersonProposal]:
    """One proposal per person the detections show, those with a head first, each group best first (module and
    FinderConfig docstrings): a face on a pose detection's head is that person; a whole-body box backs the heads
    in its top part, or is a person of its own; a palm nobody holds proposes the region around it; a pose
    detection without a face needs pose_only_min_score."""
    W, H = width, height
    people: list[_Person] = []
    for d in pose:
        people.append(_Person(d.box_xyxy, body_box_from_pose(d, W, H), d.score, d.keypoints_uv[:2].copy(), {"pose"}))
    for d in face:
        match = next((p for p in people if p.head is not None and _same_head(p.head, d.box_xyxy)), None)
        if match is not None:
            match.score = 1.0 - (1.0 - match.score) * (1.0 - d.score)  # two detectors agree
            match.sources.add("face")
            continue
        people.append(_Person(d.box_xyxy, body_box_from_face(d.box_xyxy, W, H), d.score, None, {"face"}))
    for b in boxes:
        # A whole-body box backs the heads in its top part; a box that backs nobody is a person whose head the
        # other detectors missed. Only heads that will be proposed count: a box over a weak head detection alone
        # (dropped below) stays a proposal of its own.
        backed = [
            p
            for p in people
            if p.head is not None
            and _head_of_box(p.head, b.box_xyxy)
            and (p.sources != {"pose"} or p.score >= pose_only_min_score)
        ]
        for p in backed:
            p.sources.add("box")
        if not backed:
            people.append(_Person(None, b.box_xyxy.copy(), b.score, None, {"box"}))
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
    # A box does not rescue a weak pose detection: on the dev photos that added finds, none right (docs/human-real.md).
    people = [p for p in people if p.sources - {"box"} != {"pose"} or p.score >= pose_only_min_score]
    # People a head detector saw first, best first; whole-body boxes nothing else saw after them: they only fill
    # gaps (a region from a box alone gives a rougher skeleton than one from the person's head and hips).
    people.sort(key=lambda p: (p.head is None, -p.score))
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
    return proposals


def _covered(window: np.ndarray, known_boxes: list, fraction: float) -> bool:
    """Whether at least `fraction` of a window's area lies inside the known boxes (summed overlaps: boxes of
    people found in one frame hardly overlap)."""
    x0, y0, x1, y1 = window
    area = max(1e-6, float((x1 - x0) * (y1 - y0)))
    inside = 0.0
    for b in known_boxes:
        w = min(x1, b[2]) - max(x0, b[0])
        h = min(y1, b[3]) - max(y0, b[1])
        inside += max(0.0, w) * max(0.0, h)
    return inside >= fraction * area


def _cut_by_tile(b: PersonBox, width: int, height: int, margin: float = 0.05) -> bool:
    """Whether a box seen in a tile touches one of the tile's inner edges (not the image's): the person
    goes on outside the tile, and a larger window sees them whole."""
    x0, y0, x1, y1 = b.window_xyxy
    m = margin * max(x1 - x0, y1 - y0)
    bx0, by0, bx1, by1 = b.box_xyxy
    return bool(
        (x0 > 0 and bx0 <= x0 + m)
        or (y0 > 0 and by0 <= y0 + m)
        or (x1 < width and bx1 >= x1 - m)
        or (y1 < height and by1 >= y1 - m)
    )


def _head_of_box(head: np.ndarray, box: np.ndarray) -> bool:
    """Whether a head box can be the head of a whole-body box: its centre lies across the box and within its top
    40 % (a head detection's centre is near the top of a standing person's box, lower for one bent or seen from
    above), and the head is not larger than half the box."""
    c = 0.5 * (head[:2] + head[2:])
    w, h = box[2] - box[0], box[3] - box[1]
    return bool(
        box[0] <= c[0] <= box[2]
        and box[1] - 0.1 * h <= c[1] <= box[1] + 0.4 * h
        and max(head[2] - head[0], head[3] - head[1]) <= 0.5 * max(w, h)
    )
