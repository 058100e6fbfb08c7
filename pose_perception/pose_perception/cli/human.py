"""`pose-perception human IMAGE [--depth DEPTH] [--camera-info INFO.yaml] [--mesh] [--overlay OUT.png] --out OUT.json`:
whole-body 2D + 3D pose of every person in one image, written as JSON (schema in docs/human.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "human", help="whole-body pose of every person in an image -> JSON", description=__doc__.splitlines()[1]
    )
    p.add_argument("image", metavar="IMAGE", help="any image OpenCV reads")
    p.add_argument("--depth", metavar="DEPTH", help="registered depth: 16-bit PNG in mm or float32 .npy in metres")
    p.add_argument(
        "--camera-info",
        metavar="INFO.yaml",
        help="ROS camera_info YAML; default: pinhole with fx = fy = image width, centred",
    )
    p.add_argument("--mesh", action="store_true", help="also fit a body mesh per person")
    p.add_argument("--overlay", metavar="OUT.png", help="write the image with the skeletons drawn")
    p.add_argument("--out", metavar="OUT.json", required=True, help="results (layout, humans, timing_ms)")
    p.add_argument("--backend", default="roi", choices=("roi", "mediapipe", "onnx"), help=argparse.SUPPRESS)
    p.add_argument("--model", default="", help="ONNX whole-body model for --backend onnx (RTMW / DWPose export)")
    p.add_argument("--max-people", type=int, default=3, help="most people reported (default 3)")
    p.set_defaults(func=run)


def _num(x: float) -> Optional[float]:
    """JSON has no NaN: unknown values are null."""
    return float(x) if math.isfinite(float(x)) else None


def human_to_json(h: HumanPose) -> dict:
    """One HumanPose -> the OUT.json entry: pixels in the input image, 3D in the camera frame (metres)."""
    return {
        "id": int(h.track_id),
        "score": float(h.score),
        "bbox": [_num(v) for v in (h.bbox_xyxy if h.bbox_xyxy is not None else np.full(4, np.nan))],
        "keypoints_2d": [[_num(u), _num(v), float(c)] for (u, v), c in zip(h.keypoints_uv, h.confidence)],
        "keypoints_3d": None if h.keypoints_3d is None else [[_num(c) for c in p] for p in h.keypoints_3d],
        "mesh": None
        if h.mesh is None
        else {"vertices": np.round(h.mesh.vertices, 5).tolist(), "faces": np.asarray(h.mesh.faces).tolist()},
    }


def results_to_json(humans: list[HumanPose], timing_ms: dict[str, float]) -> dict:
    return {
        "layout": COCO_WHOLEBODY_133.name,
        "keypoint_names": list(COCO_WHOLEBODY_133.keypoint_names),
        "humans": [human_to_json(h) for h in humans],
        "timing_ms": {k: round(float(v), 3) for k, v in timing_ms.items()},
    }


def _make_pipeline(args):
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline, PipelineConfigError

    # One image: no tracking (ids are 0..n-1), and the proposals are searched fully.
    config = HumanPipelineConfig(
        backend=args.backend, model_path=args.model, max_people=args.max_people, tracking=False, mesh=args.mesh
    )
    try:
        return HumanPosePipeline(config)
    except PipelineConfigError as exc:
        if "not available in this build" not in str(exc) or args.mesh and "body_mesh" in str(exc):
            raise
        # 3D lifting / head pose come from other parts of the package; without them the CLI still gives 2D.
        print(f"warning: {exc}; continuing with 2D only", file=sys.stderr)
        from dataclasses import replace

        return HumanPosePipeline(replace(config, lift_3d=False, head_pose=False))


def run(args) -> int:
    from pose_perception.core.camera import CameraIntrinsics, CameraModelError
    from pose_perception.core.io import InputFileError, read_camera_info_yaml, read_depth_m, read_image_rgb
    from pose_perception.human.backends import BackendError
    from pose_perception.human.pipeline import HumanInputError, PipelineConfigError

    try:
        rgb = read_image_rgb(args.image)
        depth_m = read_depth_m(args.depth) if args.depth else None
        H, W = rgb.shape[:2]
        intrinsics = (
            read_camera_info_yaml(args.camera_info) if args.camera_info else CameraIntrinsics.default_for_size(W, H)
        )
        t0 = time.perf_counter()
        pipeline = _make_pipeline(args)
        load_ms = (time.perf_counter() - t0) * 1e3
        try:
            humans, timing = pipeline.process(rgb, depth_m, intrinsics, stamp_s=0.0)
        finally:
            pipeline.close()
    except (InputFileError, CameraModelError, HumanInputError, PipelineConfigError, BackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timing["load"] = load_ms
    Path(args.out).write_text(json.dumps(results_to_json(humans, timing)))
    if args.overlay:
        import cv2

        from pose_perception.core.overlay import draw_humans

        img = draw_humans(rgb, humans, COCO_WHOLEBODY_133)
        if not cv2.imwrite(str(args.overlay), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            print(f"error: cannot write overlay '{args.overlay}'", file=sys.stderr)
            return 2
    print(f"{len(humans)} people -> {args.out} ({timing['total']:.0f} ms, models loaded in {load_ms:.0f} ms)")
    return 0
