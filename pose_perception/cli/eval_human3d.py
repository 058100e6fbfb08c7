"""3D lifting error on SYNTHETIC RGB-D renders of the posed anny body model with known joints.

`pose-perception eval human-3d [--frames N] [--seed S] [--detected] [--json OUT.json]`: renders random anny
poses (open3d ray casting, depth-sensor noise) and reports the error of the lifted 3D joints (COCO body 17 +
feet 6) given the true 2D keypoints, with and without the bone clean-up, for all in-image joints and for
unoccluded ones; the no-depth path (world landmarks placed by the translation solve) on the same frames; and
with --detected, the error with keypoints detected by area human's MediaPipe backend on the shaded render.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.core import keypoints as kp
from pose_perception.core.machine import machine_description

NUM_JOINTS = 23  # COCO body 17 + feet 6: the joints the anny regressor gives


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=30, help="number of synthetic frames (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of poses, bodies and cameras (default 0)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--no-noise", action="store_true", help="exact depth instead of the sensor noise model")
    parser.add_argument("--detected", action="store_true",
                        help="also lift keypoints detected by the MediaPipe backend on the shaded render")
    parser.add_argument("--world-noise-m", type=float, default=0.02,
                        help="Gaussian noise (m) added to the true hip-centred joints fed to the no-depth path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the body model (default 1)")
    add_common_output(parser)


def _stats(errors_m: list[float]) -> dict:
    e = np.asarray(errors_m, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return {"n": 0, "median_cm": None, "mean_cm": None, "p90_cm": None}
    return {"n": int(e.size), "median_cm": round(float(np.median(e)) * 100, 2),
            "mean_cm": round(float(np.mean(e)) * 100, 2), "p90_cm": round(float(np.percentile(e, 90)) * 100, 2)}


def _load_detector():
    try:
        from pose_perception.human.backends import MediaPipeHolisticBackend
    except ImportError as exc:
        return None, f"skipped: the MediaPipe backend (pose_perception.human.backends, area human) is missing ({exc})"
    return MediaPipeHolisticBackend(), ""


def run(args: argparse.Namespace) -> int:
    from pose_perception.human import synthetic
    from pose_perception.human.lifting import enforce_bone_lengths, lift_with_depth, lift_with_world_landmarks

    if args.frames < 1:
        raise SystemExit("--frames must be >= 1")
    print("pose-perception eval human-3d: SYNTHETIC data (anny body model rendered with open3d, not real sensor data)")
    print(f"machine: {machine_description()}")
    t0 = time.perf_counter()
    poser = synthetic.AnnyPoser(num_threads=args.threads)
    t_load = time.perf_counter() - t0
    intrinsics = synthetic.default_intrinsics(args.width, args.height)
    rng = np.random.default_rng(args.seed)
    detector, detector_note = _load_detector() if args.detected else (None, "not requested (--detected)")

    rows: dict[str, list[float]] = {k: [] for k in (
        "depth_true2d_all", "depth_true2d_unoccluded", "depth_true2d_raw_all", "depth_true2d_raw_unoccluded",
        "world_true2d_all", "depth_detected", "world_detected")}
    missing = 0
    lift_ms: list[float] = []
    detected_frames = 0
    for _ in range(args.frames):
        frame = synthetic.random_frame(poser, rng, intrinsics, noise=not args.no_noise)
        gt = frame.keypoints_3d[:NUM_JOINTS].astype(np.float64)
        in_image = np.all(np.isfinite(frame.keypoints_uv), axis=1)
        in_image &= (frame.keypoints_uv[:, 0] >= 0) & (frame.keypoints_uv[:, 0] <= args.width - 1)
        in_image &= (frame.keypoints_uv[:, 1] >= 0) & (frame.keypoints_uv[:, 1] <= args.height - 1)
        conf = np.where(in_image & np.all(np.isfinite(frame.keypoints_3d), axis=1), 1.0, 0.0).astype(np.float32)

        t = time.perf_counter()
        raw, raw_conf = lift_with_depth(frame.keypoints_uv, conf, frame.depth_m, intrinsics.K,
                                        image_size_wh=(args.width, args.height))
        pts, _ = enforce_bone_lengths(raw, raw_conf, kp.COCO_WHOLEBODY_133)
        lift_ms.append((time.perf_counter() - t) * 1000.0)
        sel = conf[:NUM_JOINTS] > 0
        vis = sel & frame.unoccluded[:NUM_JOINTS]
        err = np.linalg.norm(pts[:NUM_JOINTS] - gt, axis=1)
        err_raw = np.linalg.norm(raw[:NUM_JOINTS] - gt, axis=1)
        missing += int(np.count_nonzero(sel & ~np.isfinite(err)))
        # A joint the lifting leaves unknown counts in `missing`, not in the error statistics.
        rows["depth_true2d_all"] += err[sel].tolist()
        rows["depth_true2d_unoccluded"] += err[vis].tolist()
        rows["depth_true2d_raw_all"] += err_raw[sel].tolist()
        rows["depth_true2d_raw_unoccluded"] += err_raw[vis].tolist()

        world = np.full_like(frame.keypoints_3d, np.nan, dtype=np.float64)
        world[:NUM_JOINTS] = gt - kp.pelvis(gt) + rng.normal(scale=args.world_noise_m, size=gt.shape)
        wpts, _ = lift_with_world_landmarks(frame.keypoints_uv, conf, world, intrinsics.K)
        rows["world_true2d_all"] += np.linalg.norm(wpts[:NUM_JOINTS] - gt, axis=1)[sel].tolist()

        if detector is not None:
            est = detector.estimate(frame.rgb, None)
            if est is not None:
                detected_frames += 1
                dconf = np.asarray(est.confidence, dtype=np.float32)
                dpts, dc = lift_with_depth(est.keypoints_uv, dconf, frame.depth_m, intrinsics.K)
                dpts, dc = enforce_bone_lengths(dpts, dc, kp.COCO_WHOLEBODY_133)
                use = sel & (dconf[:NUM_JOINTS] >= 0.5)
                rows["depth_detected"] += np.linalg.norm(dpts[:NUM_JOINTS] - gt, axis=1)[use].tolist()
                if est.keypoints_world_m is not None:
                    wd, _ = lift_with_world_landmarks(est.keypoints_uv, dconf, est.keypoints_world_m, intrinsics.K)
                    rows["world_detected"] += np.linalg.norm(wd[:NUM_JOINTS] - gt, axis=1)[use].tolist()

    labels = {
        "depth_true2d_all": "depth + true 2D, bone clean-up, all in-image joints",
        "depth_true2d_unoccluded": "depth + true 2D, bone clean-up, unoccluded joints",
        "depth_true2d_raw_all": "depth + true 2D, no clean-up, all in-image joints",
        "depth_true2d_raw_unoccluded": "depth + true 2D, no clean-up, unoccluded joints",
        "world_true2d_all": f"no depth: true joints + {args.world_noise_m * 100:.0f} cm noise as world landmarks",
        "depth_detected": "depth + MediaPipe 2D on the shaded render (conf >= 0.5)",
        "world_detected": "no depth: MediaPipe world landmarks on the render (conf >= 0.5)",
    }
    results = {name: _stats(values) for name, values in rows.items()}
    print(f"{args.frames} SYNTHETIC frames {args.width}x{args.height}, seed {args.seed}, "
          f"{'exact depth' if args.no_noise else 'sensor noise model'}; body model load {t_load:.1f} s")
    print(f"{'case':<72} {'n':>5} {'median cm':>10} {'mean cm':>8} {'p90 cm':>7}")
    for name, stats in results.items():
        if stats["n"] == 0:
            continue
        print(f"{labels[name]:<72} {stats['n']:>5} {stats['median_cm']:>10.2f} {stats['mean_cm']:>8.2f} "
              f"{stats['p90_cm']:>7.2f}")
    print(f"joints left unknown by the depth lifting: {missing}")
    print(f"lifting time per person (depth + clean-up): median {np.median(lift_ms):.1f} ms")
    print(f"detected keypoints: {detector_note or f'MediaPipe found the person in {detected_frames}/{args.frames}'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"synthetic": True, "machine": machine_description(), "frames": args.frames,
                       "seed": args.seed, "noise": not args.no_noise, "results": results,
                       "labels": labels, "missing": missing, "lift_ms_median": float(np.median(lift_ms)),
                       "detected_frames": detected_frames, "detector_note": detector_note}, f, indent=2)
    return 0
