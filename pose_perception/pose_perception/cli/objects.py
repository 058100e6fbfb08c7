"""`pose-perception objects estimate`: 6D poses of known-mesh objects in one RGB-D frame, written as JSON.

OUT.json: {"objects": [{"name", "instance", "pose": 4x4 row-major object -> camera (metres), "score"}], "timing_ms"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path


def _mesh_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--mesh expects NAME=PATH, got '{text}'")
    return name, path


def register(subparsers) -> None:
    parser = subparsers.add_parser("objects", help=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="objects_command", required=True)
    est = sub.add_parser("estimate", help="estimate object poses in one RGB-D frame")
    est.add_argument(
        "--mesh",
        type=_mesh_arg,
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="object name and CAD mesh (.obj/.stl/.ply/.glb); repeat for several objects",
    )
    est.add_argument("--mesh-units", choices=("m", "mm"), default="m", help="units of the mesh files (default m)")
    est.add_argument(
        "--rgb",
        required=True,
        help="colour image registered with the depth (its edges are checked against each pose's outline)",
    )
    est.add_argument("--depth", required=True, help="16-bit PNG in millimetres or float32 .npy in metres")
    est.add_argument("--camera-info", required=True, help="ROS camera_info YAML of the (registered) depth image")
    est.add_argument("--out", required=True, help="output JSON")
    est.set_defaults(func=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    from pose_perception.core.io import InputFileError, read_camera_info_yaml, read_depth_m, read_image_rgb
    from pose_perception.core.camera import CameraModelError
    from pose_perception.objects.estimator import EstimatorInputError, ObjectPoseEstimator
    from pose_perception.objects.model import MeshUnitsWarning, ObjectModelError, load_object_model

    t0 = time.perf_counter()
    try:
        names = [n for n, _ in args.mesh]
        if len(set(names)) != len(names):
            raise ObjectModelError(f"object names must be unique, got {names}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MeshUnitsWarning)
            models = [load_object_model(n, p, units=args.mesh_units) for n, p in args.mesh]
        for w in caught:
            if issubclass(w.category, MeshUnitsWarning):
                print(f"warning: {w.message}", file=sys.stderr)
        t1 = time.perf_counter()
        rgb = read_image_rgb(args.rgb)
        depth_m = read_depth_m(args.depth)
        intrinsics = read_camera_info_yaml(args.camera_info)
        t2 = time.perf_counter()
        estimator = ObjectPoseEstimator(models)
        poses = estimator.estimate(rgb, depth_m, intrinsics)
        t3 = time.perf_counter()
    except (ObjectModelError, InputFileError, CameraModelError, EstimatorInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {
        "objects": [
            {
                "name": p.name,
                "instance": int(p.instance),
                "pose": p.T_cam_obj.tolist(),
                "score": round(float(p.score), 4),
            }
            for p in poses
        ],
        "timing_ms": {
            "total": round(1000 * (t3 - t0), 1),
            "load_models": round(1000 * (t1 - t0), 1),
            "read_inputs": round(1000 * (t2 - t1), 1),
            "estimate": round(1000 * (t3 - t2), 1),
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{len(poses)} object(s) -> {args.out} ({result['timing_ms']['total']:.0f} ms)")
    return 0
