"""The person finder's looks, one by one (docs/human-real.md, "Discovery in video").

`python tools/finder_looks.py cost`: median ms of each kind of look on a 640x480 PoseTrack18 frame (MediaPipe's
pose and face detectors on the whole image and on one tile, the SSDLite box detector on the whole image and on one
tile). `python tools/finder_looks.py coverage`: on the annotated PoseTrack18, MPII and MHP frames, which windows
alone (fused as the finder fuses them) propose each annotated person >= 40 px tall (body box IoU > 0.4 with the
annotated box, or the proposal's head centre inside the annotated head box). Run from the repo root with tools/with_env.sh; reads ../shared/realdata/humans.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pose_perception.core.io import read_image_rgb
from pose_perception.evaluation.human.real_eval import MIN_PERSON_HEIGHT_PX, load_annotated_sets
from pose_perception.human.finder import FinderConfig, PersonFinder, _cut_by_tile, fuse_detections
from pose_perception.human.tracking import box_iou

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "humans"


def _median_ms(fn, n: int = 15) -> float:
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def cost(finder: PersonFinder) -> None:
    path = sorted((REAL / "mmpose_testdata" / "posetrack18" / "images" / "val").glob("*/*.jpg"))[0]
    rgb = cv2.resize(read_image_rgb(path), (640, 480), interpolation=cv2.INTER_AREA)
    items = finder.work(640, 480)
    mp_tile = next(w for k, w in items if k == "mp" and w is not None)
    box_tile = next(w for k, w in items if k == "box" and w is not None)
    print(
        f"640x480: {len(items)} looks a full round ({[k for k, _ in items].count('mp')} MediaPipe, "
        f"{[k for k, _ in items].count('box')} box)"
    )
    print(
        f"MediaPipe whole image: pose {_median_ms(lambda: finder.pose.detect(rgb, None)):.1f} ms, "
        f"face {_median_ms(lambda: finder.face.detect(rgb, None)):.1f} ms"
    )
    print(
        f"MediaPipe one tile: pose {_median_ms(lambda: finder.pose.detect(rgb, mp_tile)):.1f} ms, "
        f"face {_median_ms(lambda: finder.face.detect(rgb, mp_tile)):.1f} ms"
    )
    assert finder.boxes is not None
    print(
        f"SSDLite boxes: whole image {_median_ms(lambda: finder.boxes.detect(rgb, None)):.1f} ms, "
        f"one tile {_median_ms(lambda: finder.boxes.detect(rgb, box_tile)):.1f} ms"
    )


def _in_head(anchor_uv, head_xyxy) -> bool:
    """A head proposal's anchor (its head centre) inside the person's annotated head box."""
    if anchor_uv is None or head_xyxy is None:
        return False
    return bool(head_xyxy[0] <= anchor_uv[0] <= head_xyxy[2] and head_xyxy[1] <= anchor_uv[1] <= head_xyxy[3])


def coverage(finder: PersonFinder) -> None:
    images = [im for im in load_annotated_sets(REAL) if im.dataset in ("posetrack18", "mpii", "mhp")]
    found_by: collections.Counter = collections.Counter()
    only_by: collections.Counter = collections.Counter()
    people = 0
    for im in images:
        rgb = read_image_rgb(im.path)
        H, W = rgb.shape[:2]
        short = min(W, H)
        cover: dict[int, set] = collections.defaultdict(set)
        for kind, w in finder.work(W, H):
            name = f"{kind} whole" if w is None else f"{kind} tile {max(w[2] - w[0], w[3] - w[1]) / short:.2f}"
            if kind == "box":
                assert finder.boxes is not None
                boxes = [b for b in finder.boxes.detect(rgb, w) if w is None or not _cut_by_tile(b, W, H)]
                props = fuse_detections([], [], [], boxes, W, H, 0.55)
            else:
                props = fuse_detections(finder.pose.detect(rgb, w), finder.face.detect(rgb, w), [], [], W, H, 0.55)
            for gi, g in enumerate(im.people):
                if any(box_iou(p.bbox_xyxy, g.bbox_xyxy) > 0.4 or _in_head(p.anchor_uv, g.head_xyxy) for p in props):
                    cover[gi].add(name)
        required = [gi for gi, g in enumerate(im.people) if g.height_px >= MIN_PERSON_HEIGHT_PX]
        people += len(required)
        print(f"{im.dataset} {im.path.parent.name}/{im.path.name} {W}x{H}")
        for gi in required:
            print(f"  person {gi} ({im.people[gi].height_px:.0f} px): {sorted(cover[gi]) or 'no window'}")
            found_by.update(cover[gi])
            if len(cover[gi]) == 1:
                only_by.update(cover[gi])
    print(f"{people} people; proposed by: {dict(found_by)}; by one kind of window only: {dict(only_by)}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cost"
    if what not in ("cost", "coverage"):
        raise SystemExit("usage: python tools/finder_looks.py cost|coverage")
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} is missing (the dev photos: ../shared/realdata/humans beside the repo)")
    f = PersonFinder(FinderConfig(tile_fractions=(0.6, 0.35)))
    cost(f) if what == "cost" else coverage(f)
