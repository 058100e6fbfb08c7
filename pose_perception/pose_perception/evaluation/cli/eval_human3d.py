"""3D lifting error on SYNTHETIC RGB-D renders of the posed anny body model with known joints.

`pose-perception eval human-3d [--frames N] [--seed S] [--poses mocap|random] [--detected] [--json OUT.json]`:
renders anny bodies posed from mocap clips (or random pose parameters) with open3d ray casting and depth-sensor
noise, and reports the error of the lifted 3D joints (COCO body 17 + feet 6) given the true 2D keypoints, with
and without the bone clean-up, for all in-image and for unoccluded joints; the no-depth path (world landmarks
placed by the translation solve) on the same frames; and with --detected, the error with keypoints detected by
area human's MediaPipe backend on the shaded render and the head-orientation error of PnP on the detected face
landmarks (close-up renders, known head frame).
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
    parser.add_argument(
        "--poses",
        choices=("mocap", "random"),
        default="mocap",
        help="body poses from pybullet_data's DeepMimic mocap clips (default) or random anny pose parameters",
    )
    parser.add_argument(
        "--detected",
        action="store_true",
        help="also lift keypoints detected by the MediaPipe backend on the shaded render",
    )
    parser.add_argument(
        "--world-noise-m",
        type=float,
        default=0.02,
        help="Gaussian noise (m) added to the true hip-centred joints fed to the no-depth path",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the body model (default 1)")
    parser.add_argument(
        "--surface-offsets",
        action="store_true",
        help="also print the median joint-behind-surface distance per joint (unoccluded joints), "
        "the check behind lifting's surface offsets (use a seed other than the evaluation's)",
    )
    add_common_output(parser)


def _stats(errors_m: list[float]) -> dict:
    e = np.asarray(errors_m, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return {"n": 0, "median_cm": None, "mean_cm": None, "p90_cm": None}
    return {
        "n": int(e.size),
        "median_cm": round(float(np.median(e)) * 100, 2),
        "mean_cm": round(float(np.mean(e)) * 100, 2),
        "p90_cm": round(float(np.percentile(e, 90)) * 100, 2),
    }


def _load_detector():
    try:
        from pose_perception.human.backends import MediaPipeHolisticBackend
    except ImportError as exc:
        return None, f"skipped: the MediaPipe backend (pose_perception.human.backends, area human) is missing ({exc})"
    return MediaPipeHolisticBackend(), ""


def run(args: argparse.Namespace) -> int:
    from pose_perception.evaluation.human import synthetic
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
    noise_rng = np.random.default_rng(args.seed + 1)  # separate stream: the frames do not depend on options
    detector, detector_note = _load_detector() if args.detected else (None, "not requested (--detected)")
    head_rng = np.random.default_rng(args.seed + 2)

    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "depth_true2d_all",
            "depth_true2d_unoccluded",
            "depth_true2d_raw_all",
            "depth_true2d_raw_unoccluded",
            "world_true2d_all",
            "depth_detected",
            "world_detected",
            "world_detected_root_relative",
        )
    }
    missing = 0
    behind_surface: list[np.ndarray] = []
    lift_ms: list[float] = []
    detected_frames = 0
    for _ in range(args.frames):
        frame = synthetic.random_frame(poser, rng, intrinsics, noise=not args.no_noise, poses=args.poses)
        gt = frame.keypoints_3d[:NUM_JOINTS].astype(np.float64)
        in_image = np.all(np.isfinite(frame.keypoints_uv), axis=1)
        in_image &= (frame.keypoints_uv[:, 0] >= 0) & (frame.keypoints_uv[:, 0] <= args.width - 1)
        in_image &= (frame.keypoints_uv[:, 1] >= 0) & (frame.keypoints_uv[:, 1] <= args.height - 1)
        conf = np.where(in_image & np.all(np.isfinite(frame.keypoints_3d), axis=1), 1.0, 0.0).astype(np.float32)

        t = time.perf_counter()
        raw, raw_conf = lift_with_depth(
            frame.keypoints_uv, conf, frame.depth_m, intrinsics.K, image_size_wh=(args.width, args.height)
        )
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

        if args.surface_offsets:
            bare, _ = lift_with_depth(frame.keypoints_uv, conf, frame.depth_m, intrinsics.K, add_surface_offset=False)
            behind = np.linalg.norm(gt, axis=1) - np.linalg.norm(bare[:NUM_JOINTS], axis=1)
            behind_surface.append(np.where(vis, behind, np.nan))

        world = np.full_like(frame.keypoints_3d, np.nan, dtype=np.float64)
        world[:NUM_JOINTS] = gt - kp.pelvis(gt) + noise_rng.normal(scale=args.world_noise_m, size=gt.shape)
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
                    # Pelvis-aligned: the shape error without the monocular scale / distance ambiguity.
                    rel = (wd[:NUM_JOINTS] - kp.pelvis(wd)) - (gt - kp.pelvis(gt))
                    rows["world_detected_root_relative"] += np.linalg.norm(rel, axis=1)[use].tolist()

    labels = {
        "depth_true2d_all": "depth + true 2D, bone clean-up, all in-image joints",
        "depth_true2d_unoccluded": "depth + true 2D, bone clean-up, unoccluded joints",
        "depth_true2d_raw_all": "depth + true 2D, no clean-up, all in-image joints",
        "depth_true2d_raw_unoccluded": "depth + true 2D, no clean-up, unoccluded joints",
        "world_true2d_all": f"no depth: true joints + {args.world_noise_m * 100:.0f} cm noise as world landmarks",
        "depth_detected": "depth + MediaPipe 2D on the shaded render (conf >= 0.5)",
        "world_detected": "no depth: MediaPipe world landmarks on the render (conf >= 0.5)",
        "world_detected_root_relative": "  the same, pelvis-aligned (shape only, no scale/distance error)",
    }
    results = {name: _stats(values) for name, values in rows.items()}
    print(
        f"{args.frames} SYNTHETIC frames {args.width}x{args.height}, seed {args.seed}, {args.poses} poses, "
        f"{'exact depth' if args.no_noise else 'sensor noise model'}; body model load {t_load:.1f} s"
    )
    print(f"{'case':<72} {'n':>5} {'median cm':>10} {'mean cm':>8} {'p90 cm':>7}")
    for name, stats in results.items():
        if stats["n"] == 0:
            continue
        print(
            f"{labels[name]:<72} {stats['n']:>5} {stats['median_cm']:>10.2f} {stats['mean_cm']:>8.2f} "
            f"{stats['p90_cm']:>7.2f}"
        )
    print(f"joints left unknown by the depth lifting: {missing}")
    if behind_surface:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.stack(behind_surface), axis=0)
        names = kp.COCO_WHOLEBODY_133.keypoint_names[:NUM_JOINTS]
        print(
            "median joint depth behind the visible surface (cm, unoccluded): "
            + ", ".join(f"{n} {m * 100:.1f}" for n, m in zip(names, med))
        )
    print(f"lifting time per person (depth + clean-up): median {np.median(lift_ms):.1f} ms")
    print(f"detected keypoints: {detector_note or f'MediaPipe found the person in {detected_frames}/{args.frames}'}")
    head = _head_eval(poser, detector, head_rng, intrinsics, args.frames) if detector is not None else None
    if head is not None:
        print(
            f"head orientation, PnP on detected face landmarks, {head['frames']} SYNTHETIC close-ups (1.0-1.6 m, "
            f"body yaw +-45, neck yaw +-30 deg): pose found in {head['found']}/{head['frames']}; forward-axis "
            f"error median {head['forward_median_deg']} deg, mean {head['forward_mean_deg']} deg; full rotation "
            f"error median {head['rotation_median_deg']} deg"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "synthetic": True,
                    "machine": machine_description(),
                    "frames": args.frames,
                    "seed": args.seed,
                    "poses": args.poses,
                    "noise": not args.no_noise,
                    "results": results,
                    "labels": labels,
                    "missing": missing,
                    "lift_ms_median": float(np.median(lift_ms)),
                    "detected_frames": detected_frames,
                    "detector_note": detector_note,
                    "head": head,
                },
                f,
                indent=2,
            )
    return 0


def head_frame_from_keypoints(keypoints_3d: np.ndarray) -> np.ndarray | None:
    """Reference head rotation (3, 3) from the true nose, ears (COCO 0, 3, 4): x from the mid-ears to the nose,
    y to the left ear, z up (REP-155)."""
    from pose_perception.core.frames import rotation_from_axes

    nose, left_ear, right_ear = (np.asarray(keypoints_3d[i], dtype=np.float64) for i in (0, 3, 4))
    forward = nose - 0.5 * (left_ear + right_ear)
    left = left_ear - right_ear
    if not (np.all(np.isfinite(forward)) and np.all(np.isfinite(left))):
        return None
    return rotation_from_axes(forward, np.cross(forward, left))


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    cos = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _head_eval(poser, detector, rng: np.random.Generator, intrinsics, frames: int) -> dict:
    """Head-orientation error on SYNTHETIC close-ups: PnP on the detector's 68 face landmarks vs the head frame
    of the true nose and ears. The reference frame's forward axis (ears -> nose) differs from the template's
    face normal by a constant pitch of a few degrees, so the forward-axis error is also reported."""
    from pose_perception.evaluation.human import synthetic
    from pose_perception.human.head import head_pose_from_face

    n = min(frames, 20)
    forward_err: list[float] = []
    rot_err: list[float] = []
    for _ in range(n):
        pose = poser.sample_pose_deg(rng)
        # Upright trunk, the head turned by the neck only.
        pose["neck01"] = {"x": float(rng.uniform(-10, 10)), "z": float(rng.uniform(-30, 30))}
        pose["spine03"] = {"x": float(rng.uniform(-8, 4))}
        body = poser.pose(pose, {"age": float(rng.uniform(0.5, 0.9)), "gender": float(rng.uniform(0.2, 0.8))})
        head_z = float(body.keypoints_133[0, 2])
        T = synthetic.camera_facing_body(
            distance_m=float(rng.uniform(1.0, 1.6)), yaw_deg=float(rng.uniform(-45, 45)), height_m=head_z - 0.15
        )
        frame = synthetic.render_frame(body, T, intrinsics, rng=rng)
        est = detector.estimate(frame.rgb, None)
        if est is None:
            continue
        T_cam_head = head_pose_from_face(est.keypoints_uv[kp.FACE], est.confidence[kp.FACE], intrinsics.K)
        R_ref = head_frame_from_keypoints(frame.keypoints_3d)
        if T_cam_head is None or R_ref is None:
            continue
        forward_err.append(float(np.degrees(np.arccos(np.clip(T_cam_head[:3, 0] @ R_ref[:, 0], -1.0, 1.0)))))
        rot_err.append(_angle_deg(T_cam_head[:3, :3], R_ref))
    return {
        "frames": n,
        "found": len(forward_err),
        "forward_median_deg": round(float(np.median(forward_err)), 1) if forward_err else None,
        "forward_mean_deg": round(float(np.mean(forward_err)), 1) if forward_err else None,
        "rotation_median_deg": round(float(np.median(rot_err)), 1) if rot_err else None,
    }
