"""Runs estimate() with the ICPs' nearest-sample search on the KD-tree and on torch (the CUDA path's search, here
on the CPU) over the same SYNTHETIC single-object scenes, and prints how far the two results lie apart.

    bash tools/with_env.sh python tools/compare_nn_backends.py [--device cpu|cuda]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "objects"))
from scenes import INTRINSICS, add_s_m, make_scene, ycb_path

from pose_perception.core.machine import machine_description
from pose_perception.objects.estimator import ObjectPoseEstimator
from pose_perception.objects.model import load_object_model
from pose_perception.objects.registration import ModelIndex

NAMES = ("004_sugar_box", "006_mustard_bottle", "025_mug", "005_tomato_soup_can", "011_banana")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device of the torch search (cpu | cuda)")
    parser.add_argument("--scenes-per-object", type=int, default=2)
    args = parser.parse_args()
    print(machine_description())
    seconds = {"kdtree": 0.0, "torch": 0.0}
    for i, name in enumerate(NAMES):
        model = load_object_model(name, ycb_path(name), symmetry="auto")
        for s in range(args.scenes_per_object):
            scene = make_scene([model], np.random.default_rng(10 * i + s))
            rgb = np.zeros(scene.depth_m.shape + (3,), np.uint8)
            found = {}
            for backend, device in (("kdtree", "cpu"), ("torch", args.device)):
                estimator = ObjectPoseEstimator([model])
                # only the ICPs' search changes: verification stays on the CPU for both runs
                estimator._index = {model.name: ModelIndex(model, device=device, nn_backend=backend)}
                t0 = time.perf_counter()
                found[backend] = estimator.estimate(rgb, scene.depth_m, INTRINSICS)
                seconds[backend] += time.perf_counter() - t0
            a, b = found["kdtree"], found["torch"]
            apart = [1000 * add_s_m(model.dense_points, x.T_cam_obj, y.T_cam_obj) for x, y in zip(a, b)]
            print(
                f"{name} scene {s}: found {len(a)} / {len(b)}, scores {[round(x.score, 3) for x in a]} / "
                f"{[round(y.score, 3) for y in b]}, ADD-S between them {[round(d, 4) for d in apart]} mm"
            )
    print(f"estimate() total: kdtree {seconds['kdtree']:.2f} s, torch on {args.device} {seconds['torch']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
