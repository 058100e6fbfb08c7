"""Unseen-object pose speed on a SYNTHETIC 640x480 sequence: single-object estimate and tracking time per frame.

`pose-perception bench objects [--object NAME] [--frames N]`: prints mean/p95 and the machine; compares with the
Open3D tutorial baseline in the same run. Frames are rendered first and are not part of any timing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.evaluation.cli.eval_objects import _dense_points, _run_baseline, estimator_api, make_estimator
from pose_perception.core.machine import machine_description
from pose_perception.evaluation.objects import metrics
from pose_perception.evaluation.objects.baseline import BaselineConfig
from pose_perception.evaluation.objects.synthetic import CATALOGUE, SYNTHETIC_LABEL, load_eval_object, make_sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--object",
        default="006_mustard_bottle",
        choices=sorted(CATALOGUE),
        help="catalogue object that slides and turns on the table (default 006_mustard_bottle)",
    )
    parser.add_argument("--frames", type=int, default=30, help="sequence length at 30 fps (default 30)")
    parser.add_argument(
        "--estimates",
        type=int,
        default=3,
        help="frames on which the full estimate (and the baseline) is timed (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="estimator device: cpu | cuda | auto")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Open3D tutorial baseline")
    add_common_output(parser)


def _stats(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1000.0
    if not ms.size:
        return {"n": 0}
    return {"n": int(ms.size), "mean_ms": float(ms.mean()), "p95_ms": float(np.percentile(ms, 95))}


def _line(label: str, s: dict) -> str:
    if not s.get("n"):
        return f"  {label:34s} -"
    return (
        f"  {label:34s} mean {s['mean_ms']:7.1f} ms   p95 {s['p95_ms']:7.1f} ms   "
        f"({1000 / s['mean_ms']:.1f} Hz, n={s['n']})"
    )


def run(args: argparse.Namespace) -> int:
    if args.frames < 2 or args.estimates < 1:
        print("error: --frames must be >= 2 and --estimates >= 1")
        return 2
    print(f"bench objects on {SYNTHETIC_LABEL}")
    print(f"machine: {machine_description()}")
    obj = load_eval_object(args.object)
    start = time.perf_counter()
    frames = list(make_sequence(args.object, args.frames, args.seed))
    print(
        f"{args.frames} frames of '{args.object}' sliding 0.10 m/s and turning 30 deg/s at 30 fps, 640x480 "
        f"(rendered in {time.perf_counter() - start:.1f} s, not timed below)"
    )
    out: dict = {
        "label": SYNTHETIC_LABEL,
        "machine": machine_description(),
        "object": args.object,
        "frames": args.frames,
    }
    n_est = min(args.estimates, args.frames)
    api = estimator_api()
    if api is None:
        print("NOTE: objects/estimator.py is not in this build: timing the Open3D baseline only")
    else:
        estimator = make_estimator(api, obj, args.device)
        est_times, est_errors = [], []
        first = None
        for frame in frames[:n_est]:
            t0 = time.perf_counter()
            poses = estimator.estimate(frame.rgb, frame.depth_m, frame.intrinsics)
            est_times.append(time.perf_counter() - t0)
            best = max((p for p in poses if p.name == args.object), key=lambda p: p.score, default=None)
            first = first if first is not None else best
            est_errors.append(
                np.inf
                if best is None
                else metrics.adds_error(best.T_cam_obj, frame.object(args.object).T_cam_obj, obj.points_m)
            )
        track_times, track_errors, lost = [], [], 0
        previous = [first] if first is not None else []
        for frame in frames[1:]:
            t0 = time.perf_counter()
            tracked = estimator.track(frame.rgb, frame.depth_m, frame.intrinsics, previous)
            track_times.append(time.perf_counter() - t0)
            mine = [p for p in tracked if p.name == args.object]
            if mine:
                previous = tracked
                track_errors.append(
                    metrics.adds_error(mine[0].T_cam_obj, frame.object(args.object).T_cam_obj, obj.points_m)
                )
            else:
                lost += 1
                track_errors.append(np.inf)
        th = metrics.ADD_THRESHOLD_FRACTION * obj.diameter_m
        out["estimate"] = _stats(est_times) | {"adds_recall": float(np.mean(np.asarray(est_errors) < th))}
        out["track"] = _stats(track_times) | {
            "adds_recall": float(np.mean(np.asarray(track_errors) < th)),
            "frames_lost": lost,
        }
        print(_line("estimate (full pipeline, no masks)", out["estimate"]))
        print(_line("track (from previous pose)", out["track"]))
        print(f"  tracking ADD-S@0.1d over the sequence: {out['track']['adds_recall']:.2f}, frames lost: {lost}")
    if not args.no_baseline:
        dense = _dense_points(obj)
        times = []
        for frame in frames[:n_est]:
            _, elapsed = _run_baseline(obj, dense, frame, frame.mask(args.object), BaselineConfig(seed=args.seed))
            times.append(elapsed)
        out["baseline"] = _stats(times)
        print(_line("Open3D tutorial on the true segment", out["baseline"]))
        if "estimate" in out and out["estimate"].get("n"):
            ratio = out["baseline"]["mean_ms"] / out["estimate"]["mean_ms"]
            out["time_ratio_baseline_over_estimate"] = ratio
            print(f"  baseline / estimate time: {ratio:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0
