#!/usr/bin/env python3
"""Which SYNTHETIC absent-object scenes of `pose-perception eval objects --negatives 3` get a report, and at what score.

The seeds eval (tools/eval_objects_seeds.sh) counts reports on the scenes WITHOUT the object; this lists them. The
absent-object scenes do not depend on --occlusion (the occluder only stands before a target), so both true-mask
settings see the same scenes and the same (distractor) mask: one report there counts twice in the seeds table.
Each scene is rendered once and searched with a distractor's mask (masks=gt) and with own segmentation (masks=none).

    cd pose_perception && PYTHONPATH=$PWD bash ../tools/with_env.sh python ../tools/objects_false_reports.py \
        --seeds 0 1 2 3 4 [--set segmentation.flying_radius_px=0] [--png-dir out/negatives]

--set PATH=VALUE overrides an EstimatorConfig field (dotted into its sub-configs) for an A/B comparison.
"""

from __future__ import annotations

import argparse
import ast
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _override(config, path: str, value):
    head, _, rest = path.partition(".")
    if not rest:
        return replace(config, **{head: value})
    return replace(config, **{head: _override(getattr(config, head), rest, value)})


def main() -> int:
    from pose_perception.evaluation.cli.eval_objects import estimator_api, make_estimator
    from pose_perception.evaluation.objects.synthetic import DEV_OBJECTS, SceneConfig, load_eval_object, make_scene

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--objects", nargs="+", default=list(DEV_OBJECTS))
    ap.add_argument("--modes", nargs="+", choices=("gt", "none"), default=["gt", "none"])
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    ap.add_argument("--png-dir", default=None, help="write an overlay PNG of each scene with a report")
    args = ap.parse_args()

    api = estimator_api()
    config = SceneConfig()
    counts = {m: 0 for m in args.modes}
    n = 0
    t0 = time.perf_counter()
    for seed in args.seeds:
        for name in args.objects:
            obj = load_eval_object(name)
            est = make_estimator(api, obj)
            for kv in args.set:
                k, _, v = kv.partition("=")
                est.config = _override(est.config, k, ast.literal_eval(v))
            oi_all = list(DEV_OBJECTS).index(name)  # the eval's scene seeds use the index in its object list
            for j in range(args.negatives):
                scene = make_scene(None, [seed, oi_all, 1000 + j], config, exclude=(name,))
                distractors = [o.name for o in scene.objects if o.role == "distractor"]
                n += 1
                for mode in args.modes:
                    masks = [scene.mask(distractors[0])] if (mode == "gt" and distractors) else None
                    poses = [
                        p
                        for p in est.estimate(scene.rgb, scene.depth_m, scene.intrinsics, masks=masks)
                        if p.name == name
                    ]
                    if poses:
                        counts[mode] += 1
                        best = max(poses, key=lambda p: p.score)
                        print(
                            f"REPORT seed {seed} {name:22s} negative {j} masks={mode:4s} score {best.score:.3f} "
                            f"at {np.round(best.T_cam_obj[:3, 3], 3).tolist()} distractors {distractors}",
                            flush=True,
                        )
                        if args.png_dir:
                            _overlay(Path(args.png_dir) / f"s{seed}_{name}_n{j}_{mode}.png", scene, est, best)
    dt = time.perf_counter() - t0
    print(
        f"SYNTHETIC absent-object scenes: {n}; reports "
        + ", ".join(f"masks={m}: {c}" for m, c in counts.items())
        + f" (true-mask settings count masks=gt twice); {dt:.0f} s; overrides {args.set or 'none'}"
    )
    return 0


def _overlay(path: Path, scene, est, pose) -> None:
    from PIL import Image

    from pose_perception.objects.render import render_depth

    model = est.models[pose.name]
    depth, _ = render_depth([(model, pose.T_cam_obj)], scene.intrinsics)
    img = scene.rgb.copy()
    hit = np.isfinite(depth)
    img[hit] = (0.5 * img[hit] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


if __name__ == "__main__":
    raise SystemExit(main())
