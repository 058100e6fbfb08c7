"""Does OpenCV's HOG people detector add people the fused finder misses on the REAL dev photos?

`bash tools/with_env.sh python tools/hog_people_check.py [--real DIR]`: runs the pipeline (eval human settings), then
HOG (default people detector, images <= 1280 px, stride 8, scale 1.05) and the ROI landmarks on each HOG box (an
upright region 1.1 x the box height) that is not a person already found; prints recall / precision with those
additions and HOG's time. Used for docs/human-real.md (HOG is not part of the finder).
"""

import argparse
import time

import cv2
import numpy as np

from pose_perception.evaluation.cli.eval_human import DEFAULT_REAL, _body
from pose_perception.core.io import read_image_rgb
from pose_perception.core.types import HumanPose
from pose_perception.human.landmarks import Roi
from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline, inside_another, same_estimate
from pose_perception.evaluation.human.real_eval import load_annotated_sets, score_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", default=str(DEFAULT_REAL))
    args = ap.parse_args()
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    pl = HumanPosePipeline(HumanPipelineConfig(max_people=20, tracking=False, lift_3d=False, head_pose=False))
    tot = {"people": 0, "found_before": 0, "found": 0, "judged": 0, "false": 0, "hog_boxes": 0, "added": 0}
    t_hog, images = 0.0, load_annotated_sets(args.real)
    for im in images:
        rgb = read_image_rgb(im.path)
        s = min(1.0, 1280 / max(rgb.shape[:2]))
        small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else rgb
        t = time.perf_counter()
        rects, _ = hog.detectMultiScale(
            cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        t_hog += time.perf_counter() - t
        pl.reset()
        humans, _ = pl.process(rgb, None, None, 0.0)
        found = [
            type("Found", (), {"keypoints_uv": h.keypoints_uv, "confidence": h.confidence, "bbox_xyxy": h.bbox_xyxy})()
            for h in humans
        ]
        added = []
        for x, y, w, h in rects:
            b = np.array([x, y, x + w, y + h], np.float64) / s
            est = pl.backend.estimate_roi(rgb, Roi(0.5 * (b[:2] + b[2:]), 1.1 * (b[3] - b[1]), np.array([0.0, -1.0])))
            if est is None or est.score < pl.config.min_person_score:
                continue
            if any(same_estimate(est, f, 0.4) for f in found + added) or inside_another(est, found):
                continue
            added.append(est)
        before = score_image(im, *_body(humans))
        after = score_image(
            im,
            *_body(
                humans + [HumanPose(-1, e.score, e.keypoints_uv, e.confidence, bbox_xyxy=e.bbox_xyxy) for e in added]
            ),
        )
        tot["people"] += after.required
        tot["found_before"] += before.found
        tot["found"] += after.found
        tot["judged"] += after.judged
        tot["false"] += after.false
        tot["hog_boxes"] += len(rects)
        tot["added"] += len(added)
    pl.close()
    print(f"REAL annotated sets, {len(images)} photos: {tot}")
    print(
        f"recall {tot['found_before'] / tot['people']:.3f} -> {tot['found'] / tot['people']:.3f}; precision with HOG "
        f"{(tot['judged'] - tot['false']) / tot['judged']:.3f}; HOG {t_hog * 1e3 / len(images):.0f} ms per photo"
    )


if __name__ == "__main__":
    main()
