"""Where the held-out error of MARS-trained radar weights comes from (REAL, network alone).

    python tools/radar_mars_error_split.py --weights-for 3 W1.pt --weights-for 1 W3.pt [--mars DIR]

For each subject, the weights trained without it run on its frames as recorded (woutlier), through the same front
end as training (`mars_training.real_dataset`, no augmentation): MPJPE over the 12 limb joints, per joint; the
error of the predicted pelvis (mean of the hips) and the limb error with the pelvis put right ("articulation");
the mean pelvis error (a bias that lasts: other body, other Kinect-to-radar alignment) and its spread; and, for
the recording alone, how far the median of the raw points of the last 1-20 frames lies from the Kinect pelvis,
and how high the subject's body and the radar's points are above the floor (does the sensor see body height?).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pose_perception.core.keypoints import COCO_BODY_17_NAMES, LIMB_12, pelvis
from pose_perception.evaluation.radar import mars
from pose_perception.evaluation.radar import mars_training as mt
from pose_perception.radar.network import load_weights
from pose_perception.radar.pipeline import RadarPipelineConfig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights-for", nargs=2, action="append", required=True, metavar=("SUBJECT", "WEIGHTS"))
    ap.add_argument("--mars", default=None, help="MARS directory (default ../shared/realdata/radar/mars)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.mars) if args.mars else mars.default_mars_dir()
    if not root.is_dir():
        print(f"error: MARS data not found at '{root}'; pass --mars DIR")
        return 2
    for subject, weights in args.weights_for:
        net, _ = load_weights(Path(weights))
        recs = mars.read_subject(root, int(subject), "woutlier")
        val = mt.real_dataset(
            recs, net.config, RadarPipelineConfig(), mt.RealDataConfig(mirror=False, scale_range=None, seed=1)
        )
        with torch.inference_mode():
            pred = np.concatenate(
                [
                    net(torch.from_numpy(val["features"][i : i + 1024]), torch.from_numpy(val["mask"][i : i + 1024]))[
                        0
                    ].numpy()
                    for i in range(0, len(val["features"]), 1024)
                ]
            )
        gt = val["joints"]
        e = np.linalg.norm(pred - gt, axis=-1) * 100
        limb = list(LIMB_12)
        print(
            f"REAL subject {subject} held out, weights {weights}: {len(gt)} frames, MPJPE(limb 12) {e[:, limb].mean():.2f} cm"
        )
        print("  per joint (cm): " + ", ".join(f"{COCO_BODY_17_NAMES[i]} {e[:, i].mean():.1f}" for i in limb))
        d = (pred[:, [11, 12]].mean(1) - gt[:, [11, 12]].mean(1)) * 100
        art = np.linalg.norm(
            (pred - pred[:, [11, 12]].mean(1, keepdims=True)) - (gt - gt[:, [11, 12]].mean(1, keepdims=True)), axis=-1
        )
        print(
            f"  pelvis error {np.linalg.norm(d, axis=-1).mean():.1f} cm (person frame x range, y lateral, z up: "
            f"mean {np.round(d.mean(0), 1)}, std {np.round(d.std(0), 1)}); limbs with the pelvis put right "
            f"(articulation) {art[:, limb].mean() * 100:.2f} cm"
        )
        for k in (1, 4, 8, 20):
            off = []
            for r in recs:
                for i in range(len(r.frames)):
                    pts = [r.frames[j] for j in range(max(0, i - k + 1), i + 1) if len(r.frames[j])]
                    if pts:
                        off.append(np.median(np.concatenate(pts)[:, :3], axis=0) - pelvis(r.coco17_m[i]))
            off = np.array(off) * 100
            print(
                f"  median of the raw points of the last {k:2d} frames - Kinect pelvis (radar frame, cm): "
                f"mean {np.round(off.mean(0), 1)}, std {np.round(off.std(0), 1)}"
            )
        print_heights(mars.read_subject(root, int(subject), "wooutlier"))
    return 0


def print_heights(recs: list[mars.MarsRecording]) -> None:
    """Kinect hip / shoulder / head heights and the radar points' height percentiles above the floor (m) of
    recordings without outliers (the body's points)."""
    body, points = [], []
    for r in recs:
        floor_below_radar_m = mars.radar_height_from_skeletons(r.kinect_m)
        body.append(r.coco17_m[:, [11, 5, 0], 2] + floor_below_radar_m)  # a hip, a shoulder, the head
        points += [f[:, 2] + floor_below_radar_m for f in r.frames if len(f)]
    b, z = np.concatenate(body), np.concatenate(points)
    print(
        f"  above the floor (m): Kinect hip {b[:, 0].mean():.3f}, shoulder {b[:, 1].mean():.3f}, head "
        f"{b[:, 2].mean():.3f}; radar points 5/50/95 % {np.round(np.percentile(z, [5, 50, 95]), 3)}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
