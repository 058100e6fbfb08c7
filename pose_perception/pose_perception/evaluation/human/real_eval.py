"""Accuracy of people found in real annotated photos: dataset readers and metrics (ROS-free).

Reads the small annotated sets under `<realdata>/humans/mmpose_testdata` (PoseTrack18, MPII, MHP, ExLPose,
JHMDB; each in its own keypoint order) into one form, COCO body 17 with a visibility mask, and scores
estimates against them: person recall / precision, body PCK@0.2 with misses counted as wrong, OKS with the
COCO-WholeBody body sigmas. Used by `pose-perception eval human --real DIR`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

# COCO-WholeBody sigmas of the body 17 (the COCO keypoint sigmas; cocoapi / xtcocotools). The annotated sets
# here have body keypoints only, so OKS is given for the body part alone.
BODY_SIGMAS = np.array(
    [
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ],
    np.float64,
)

# Index into each dataset's keypoint list for COCO body 17 (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles; -1: the dataset has no such point). Orders from each JSON's `categories[0].keypoints`.
_MPII_16 = (-1, -1, -1, -1, -1, 13, 12, 14, 11, 15, 10, 3, 2, 4, 1, 5, 0)  # MPII and MHP (same 16 joints)
_POSETRACK_17 = (0, -1, -1, -1, -1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)  # ears are never annotated
_EXLPOSE_14 = (-1, -1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_JHMDB_15 = (-1, -1, -1, -1, -1, 4, 3, 8, 7, 12, 11, 6, 5, 10, 9, 14, 13)

MIN_PERSON_HEIGHT_PX = 40.0  # people smaller than this are neither required nor counted as false finds


class RealDataMissingError(FileNotFoundError):
    """The real photo sets are not where they were looked for."""


@dataclass(frozen=True)
class AnnotatedPerson:
    """keypoints_uv: (17, 2) float64 COCO body pixels; visible: (17,) bool (annotated); bbox_xyxy: (4,) pixels;
    track_id: the dataset's track id or -1; head_xyxy: (4,) annotated head box or None."""

    keypoints_uv: np.ndarray
    visible: np.ndarray
    bbox_xyxy: np.ndarray
    track_id: int = -1
    head_xyxy: Optional[np.ndarray] = None

    @property
    def height_px(self) -> float:
        return float(self.bbox_xyxy[3] - self.bbox_xyxy[1])

    @property
    def area_px2(self) -> float:
        """Object area for OKS: 0.53 of the box (the ratio of segment to box area COCO's persons have)."""
        return 0.53 * float((self.bbox_xyxy[2] - self.bbox_xyxy[0]) * (self.bbox_xyxy[3] - self.bbox_xyxy[1]))


@dataclass(frozen=True)
class AnnotatedImage:
    """One photo: dataset name, image path, annotated people; exhaustive: every person in it is annotated (else
    a find nobody annotated is not counted as false); ignore_polygons: [(N, 2) pixels] regions where finds are
    not judged (PoseTrack18)."""

    dataset: str
    path: Path
    people: tuple[AnnotatedPerson, ...]
    exhaustive: bool
    ignore_polygons: tuple[np.ndarray, ...] = field(default=())


def _to_body17(points: np.ndarray, vis: np.ndarray, index: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    uv = np.full((17, 2), np.nan)
    ok = np.zeros(17, bool)
    for k, j in enumerate(index):
        if j >= 0 and vis[j]:
            uv[k], ok[k] = points[j], True
    return uv, ok


def _extent_box(uv: np.ndarray, ok: np.ndarray, pad: float = 0.1) -> np.ndarray:
    lo, hi = np.nanmin(uv[ok], axis=0), np.nanmax(uv[ok], axis=0)
    size = hi - lo
    return np.concatenate([lo - pad * size, hi + pad * size])


def _coco_style(
    json_path: Path, image_root: Path, dataset: str, index: tuple[int, ...], exhaustive: bool, n_src: int
) -> list[AnnotatedImage]:
    """COCO-format annotation files (images + annotations with flat [x, y, v] keypoints)."""
    data = json.loads(json_path.read_text())
    out = []
    for im in data["images"]:
        people = []
        for a in data["annotations"]:
            if a["image_id"] != im["id"] or a.get("iscrowd"):
                continue
            k = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[:n_src]
            # A point is annotated when its visibility flag is set and it is not at the origin (MHP marks
            # missing points 0, 0, 0; PoseTrack18 1 means annotated).
            vis = (k[:, 2] > 0) & ~((k[:, 0] == 0) & (k[:, 1] == 0))
            uv, ok = _to_body17(k[:, :2], vis, index)
            if ok.sum() < 2:
                continue
            if "bbox" in a:
                x, y, w, h = a["bbox"]
                box = np.array([x, y, x + w, y + h], np.float64)
            else:
                box = _extent_box(uv, ok)
            head = None
            if "bbox_head" in a:
                x, y, w, h = a["bbox_head"]
                head = np.array([x, y, x + w, y + h], np.float64)
            people.append(AnnotatedPerson(uv, ok, box, int(a.get("track_id", -1)), head))
        ignore = ()
        if "ignore_regions_x" in im:
            ignore = tuple(
                np.stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)], axis=1)
                for xs, ys in zip(im["ignore_regions_x"], im["ignore_regions_y"])
                if len(xs) >= 3
            )
        out.append(AnnotatedImage(dataset, image_root / im["file_name"], tuple(people), exhaustive, ignore))
    return out


def _mpii(json_path: Path, image_root: Path) -> list[AnnotatedImage]:
    """MPII: one annotated person per entry ("joints", "joints_vis", center / scale); other people in the photo
    are not annotated, so MPII photos are not exhaustive."""
    entries = json.loads(json_path.read_text())
    by_image: dict[str, list[AnnotatedPerson]] = {}
    for e in entries:
        j = np.asarray(e["joints"], np.float64)
        vis = (np.asarray(e["joints_vis"]) > 0) & np.all(j > 0, axis=1)
        uv, ok = _to_body17(j, vis, _MPII_16)
        # MPII's head top and upper neck are not COCO points but bound the person: use them for the box.
        extra = j[[8, 9]][vis[[8, 9]]]
        allp = np.concatenate([uv[ok], extra]) if len(extra) else uv[ok]
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        box = np.concatenate([lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)])
        head = None
        if vis[8] and vis[9]:  # MPII's head segment: the box of upper neck to head top, square
            c, r = 0.5 * (j[8] + j[9]), 0.5 * np.linalg.norm(j[9] - j[8])
            head = np.array([c[0] - r, c[1] - r, c[0] + r, c[1] + r])
        by_image.setdefault(e["image"], []).append(AnnotatedPerson(uv, ok, box, -1, head))
    return [AnnotatedImage("mpii", image_root / name, tuple(p), False) for name, p in sorted(by_image.items())]


def load_annotated_sets(humans_dir: Path) -> list[AnnotatedImage]:
    """All annotated photos under humans_dir/mmpose_testdata, in a fixed order; raises RealDataMissingError."""
    root = Path(humans_dir) / "mmpose_testdata"
    if not root.is_dir():
        raise RealDataMissingError(
            f"no annotated real photos at '{root}': the eval reads ../shared/realdata/humans beside the repository "
            f"(or pass --real DIR pointing at a realdata/humans folder)"
        )
    images: list[AnnotatedImage] = []
    pt = root / "posetrack18"
    images += _coco_style(pt / "annotations" / "test_posetrack18_val.json", pt, "posetrack18", _POSETRACK_17, True, 17)
    images += _mpii(root / "mpii" / "test_mpii.json", root / "mpii")
    images += _coco_style(root / "mhp" / "test_mhp.json", root / "mhp", "mhp", _MPII_16, True, 16)
    images += _coco_style(root / "exlpose" / "test_exlpose.json", root / "exlpose", "exlpose", _EXLPOSE_14, True, 14)
    # JHMDB clips named np1 show one person: the annotation is exhaustive.
    images += _coco_style(root / "jhmdb" / "test_jhmdb_sub1.json", root / "jhmdb", "jhmdb", _JHMDB_15, True, 15)
    missing = [str(im.path) for im in images if not im.path.is_file()]
    if missing:
        raise RealDataMissingError(f"annotated images missing: {missing[:3]} ...")
    return images


def video_frames(humans_dir: Path) -> list[Path]:
    """The consecutive PoseTrack18 video frames (no annotations), in order."""
    d = Path(humans_dir) / "mmpose_testdata" / "posetrack18" / "videos"
    return sorted(d.glob("*/*.jpg")) if d.is_dir() else []


def unannotated_photos(humans_dir: Path) -> list[Path]:
    d = Path(humans_dir) / "coco_photos"
    return sorted(d.glob("*.jpg")) if d.is_dir() else []


# ---- metrics -------------------------------------------------------------------------------------------------


def body_oks(pred_uv: np.ndarray, gt: AnnotatedPerson) -> float:
    """COCO OKS over the person's annotated body keypoints. pred_uv: (17, 2) pixels (NaN = not found)."""
    d2 = np.sum((pred_uv - gt.keypoints_uv) ** 2, axis=1)
    var = (2 * BODY_SIGMAS) ** 2
    e = d2 / var / (2 * max(gt.area_px2, 1.0))
    sim = np.where(np.isfinite(e), np.exp(-np.nan_to_num(e, nan=np.inf)), 0.0)
    return float(np.mean(sim[gt.visible])) if gt.visible.any() else 0.0


def torso_size_px(gt: AnnotatedPerson) -> float:
    """PCK normaliser: the longer shoulder-hip diagonal; without both diagonals, 0.3 x the box height (a
    standing adult's torso diagonal is about that)."""
    diags = [
        np.linalg.norm(gt.keypoints_uv[a] - gt.keypoints_uv[b])
        for a, b in ((5, 12), (6, 11))
        if gt.visible[a] and gt.visible[b]
    ]
    return float(max(diags)) if diags else 0.3 * gt.height_px


def pck_hits(pred_uv: Optional[np.ndarray], gt: AnnotatedPerson, alpha: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(torso-normalised hits, box-normalised hits) over the annotated keypoints: bool arrays, one per
    annotated point; all False when pred_uv is None (a missed person)."""
    n = int(gt.visible.sum())
    if pred_uv is None:
        return np.zeros(n, bool), np.zeros(n, bool)
    d = np.linalg.norm(pred_uv[gt.visible] - gt.keypoints_uv[gt.visible], axis=1)
    d = np.where(np.isfinite(d), d, np.inf)
    box = max(gt.bbox_xyxy[2] - gt.bbox_xyxy[0], gt.bbox_xyxy[3] - gt.bbox_xyxy[1])
    return d <= alpha * torso_size_px(gt), d <= alpha * box


def match_people(
    pred_uvs: list[np.ndarray], people: tuple[AnnotatedPerson, ...], min_oks: float = 0.1
) -> dict[int, int]:
    """Hungarian matching by body OKS: {annotated person index: estimate index} for pairs with OKS >= min_oks."""
    if not pred_uvs or not people:
        return {}
    sim = np.array([[body_oks(p, g) for p in pred_uvs] for g in people])
    rows, cols = linear_sum_assignment(-sim)
    return {int(r): int(c) for r, c in zip(rows, cols) if sim[r, c] >= min_oks}


def point_in_polygon(uv: np.ndarray, polygon: np.ndarray) -> bool:
    """Even-odd rule; uv (2,), polygon (N, 2)."""
    x, y = float(uv[0]), float(uv[1])
    inside = False
    px, py = polygon[:, 0], polygon[:, 1]
    for i in range(len(polygon)):
        x0, y0, x1, y1 = px[i - 1], py[i - 1], px[i], py[i]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


@dataclass
class ImageScore:
    """Per-image counts: required = annotated people >= MIN_PERSON_HEIGHT_PX; found = those matched; false =
    unmatched finds (judged only on exhaustive images, outside ignore regions, not on too-small people)."""

    required: int = 0
    found: int = 0
    estimates: int = 0
    false: int = 0
    judged: int = 0  # estimates whose truth is known (precision's denominator)
    pck_torso: list = field(default_factory=list)  # bool per annotated keypoint of required people
    pck_box: list = field(default_factory=list)
    pck_box_found: list = field(default_factory=list)
    oks: list = field(default_factory=list)  # OKS per required person (0 for a miss)
    matched: dict = field(default_factory=dict)  # annotated person index -> estimate index


def score_image(image: AnnotatedImage, pred_uvs: list[np.ndarray], pred_boxes: list[np.ndarray]) -> ImageScore:
    """pred_uvs: per estimate (17, 2) body pixels (NaN unknown); pred_boxes: per estimate (4,) pixels."""
    s = ImageScore(estimates=len(pred_uvs))
    s.matched = match_people(pred_uvs, image.people)
    matched_preds = set(s.matched.values())
    for gi, g in enumerate(image.people):
        pi = s.matched.get(gi)
        if g.height_px < MIN_PERSON_HEIGHT_PX:
            continue
        s.required += 1
        pred = pred_uvs[pi] if pi is not None else None
        torso, box = pck_hits(pred, g)
        s.pck_torso += torso.tolist()
        s.pck_box += box.tolist()
        s.oks.append(body_oks(pred, g) if pred is not None else 0.0)
        if pi is not None:
            s.found += 1
            s.pck_box_found += box.tolist()
    small_matched = {pi for gi, pi in s.matched.items() if image.people[gi].height_px < MIN_PERSON_HEIGHT_PX}
    for pi, box in enumerate(pred_boxes):
        if pi in small_matched:
            continue
        if pi in matched_preds:
            s.judged += 1
            continue
        if not image.exhaustive:
            continue
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        if any(point_in_polygon(centre, poly) for poly in image.ignore_polygons):
            continue
        s.judged += 1
        s.false += 1
    return s
