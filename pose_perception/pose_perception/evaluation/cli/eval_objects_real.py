"""`pose-perception eval objects --real [DIR] [--boxes]`: the whole 21-object YCB-Video catalogue on REAL RGB-D frames.

Per frame: objects found / missed / reported but not there (silhouette IoU against the reference label masks, or
box IoU against hand-labelled boxes), time of estimate(), and an overlay PNG. See docs/objects-real.md.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from pose_perception.core.machine import machine_description


def add_real_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--real",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="evaluate on the REAL frames in DIR (default ../shared/realdata/objects relative to the "
        "repository root) with the whole YCB-Video catalogue, instead of synthetic scenes",
    )
    parser.add_argument(
        "--boxes",
        action="store_true",
        help="with --real: give the estimator the reference 2D box and class of each present object "
        "(as a 2D detector would) instead of letting it segment the frame itself",
    )
    parser.add_argument(
        "--catalogue",
        nargs="+",
        default=None,
        metavar="NAME",
        help="with --real: the objects loaded (default: all 21 YCB-Video objects)",
    )
    parser.add_argument(
        "--frames",
        nargs="+",
        default=None,
        metavar="DATASET/FRAME",
        help="with --real: only these frames, e.g. ycb_realsense/000000",
    )
    parser.add_argument("--out-dir", default="out/objects_real", help="with --real: where overlay PNGs go")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="S",
        help="with --real: per-frame search budget in seconds (EstimatorConfig.time_budget_s)",
    )
    parser.add_argument(
        "--no-prefilter",
        action="store_true",
        help="with --real: search every segment for every model (no size prefilter)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with --real: profile estimate() (cProfile) and print the time of its stages",
    )
    parser.add_argument(
        "--min-iou",
        type=float,
        default=0.5,
        help="with --real: IoU with the reference from which a report counts as found (default 0.5)",
    )


def run_real(args: argparse.Namespace, log=print) -> int:
    from pose_perception.objects.detections import Detection2D
    from pose_perception.objects.estimator import EstimatorConfig, ObjectPoseEstimator
    from pose_perception.objects.model import MeshUnitsWarning, ObjectModelError, load_object_model
    from pose_perception.evaluation.objects.realdata import (
        REAL_LABEL,
        YCBV_OBJECTS,
        RealDataMissing,
        default_real_dir,
        draw_frame_result,
        load_real_frames,
        score_frame,
    )

    root = Path(args.real) if args.real else default_real_dir()
    try:
        frames = load_real_frames(root)
    except RealDataMissing as exc:
        log(f"error: {exc}")
        return 2
    if args.frames:
        frames = [f for f in frames if f.key in args.frames]
        if not frames:
            log(f"error: none of the frames {args.frames} is in {root}")
            return 2
    names = list(args.catalogue or YCBV_OBJECTS)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MeshUnitsWarning)
            models = {n: load_object_model(n, f"ycb:{n}", units="m", symmetry="auto") for n in names}
    except ObjectModelError as exc:
        log(f"error: {exc}")
        return 2
    load_s = time.perf_counter() - t0
    from dataclasses import replace

    config = EstimatorConfig(time_budget_s=args.time_budget)
    if args.score_threshold is not None:
        config = replace(config, score_threshold=args.score_threshold)
    if args.no_prefilter:
        config = replace(config, prefilter=None)
    estimator = ObjectPoseEstimator(list(models.values()), config, device=args.device)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "reference 2D boxes + classes" if args.boxes else "own segmentation"
    log(f"eval objects on {REAL_LABEL}, data {root}")
    log(f"machine: {machine_description()}")
    log(
        f"catalogue: {len(models)} meshes (ycb:<name>), loaded in {load_s:.1f} s; input: {mode}; "
        f"found = same name and IoU >= {args.min_iou}; prefilter {'off' if args.no_prefilter else 'on'}; "
        f"time budget {'none' if args.time_budget is None else f'{args.time_budget:g} s'}"
    )
    log(
        "time s: wall time of estimate(); cpu s: CPU time of this process meanwhile (all its threads), which other "
        "jobs on a shared machine do not inflate"
    )
    log(
        f"{'frame':22s} {'present':>7s} {'found':>5s} {'missed':>6s} {'false':>5s} {'time s':>7s} {'cpu s':>6s}"
        "  details"
    )
    import cv2

    rows = []
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: other jobs on a shared machine do not inflate it
    for frame in frames:
        masks = None
        if args.boxes:
            masks = [Detection2D(ref.box_xyxy, ref.name) for ref in frame.present]
        start, cpu_start = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        poses = estimator.estimate(frame.rgb, frame.depth_m, frame.intrinsics, masks=masks)
        if profiler is not None:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        res = score_frame(frame, poses, models, elapsed, args.min_iou)
        png = out_dir / f"{frame.dataset}_{frame.frame}{'_boxes' if args.boxes else ''}.png"
        cv2.imwrite(str(png), cv2.cvtColor(draw_frame_result(res), cv2.COLOR_RGB2BGR))
        false = [f"{m.pose.name} {m.pose.score:.2f} (iou {m.iou:.2f})" for m in res.matches if not m.found]
        st = estimator.last_stats
        detail = (
            f"missed: {', '.join(res.missed) or '-'}; false: {', '.join(false) or '-'}; "
            f"{st.get('segments', 0)} segments, {st.get('searches', 0)} model searches"
            + (f", {st['skipped']} skipped (budget)" if st.get("skipped") else "")
            + (f", {st['retried']} segments searched again" if st.get("retried") else "")
        )
        log(
            f"{frame.key:22s} {len(frame.present):7d} {res.n_found:5d} {len(res.missed):6d} {res.n_false:5d} "
            f"{elapsed:7.2f} {cpu:6.2f}  {detail}"
        )
        rows.append(
            {
                "frame": frame.key,
                "present": [r.name for r in frame.present],
                "reference": sorted({r.source for r in frame.present}),
                "found": [m.pose.name for m in res.matches if m.found],
                "missed": res.missed,
                "false": [
                    {"name": m.pose.name, "score": m.pose.score, "iou": m.iou} for m in res.matches if not m.found
                ],
                "reports": [
                    {
                        "name": m.pose.name,
                        "score": m.pose.score,
                        "iou": m.iou,
                        "found": m.found,
                        "T_cam_obj": m.pose.T_cam_obj.tolist(),
                    }
                    for m in res.matches
                ],
                "time_s": elapsed,
                "cpu_s": cpu,
                "overlay": str(png),
                "search_stats": dict(estimator.last_stats),
            }
        )
    n_present = sum(len(r["present"]) for r in rows)
    n_found = sum(len(r["found"]) for r in rows)
    n_false = sum(len(r["false"]) for r in rows)
    times = np.array([r["time_s"] for r in rows])
    cpus = np.array([r["cpu_s"] for r in rows])
    recall = n_found / n_present if n_present else float("nan")
    log(
        f"overall (REAL, {mode}): recall {n_found}/{n_present} = {recall:.2f}, false reports {n_false} in "
        f"{len(rows)} frames, time/frame mean {times.mean():.2f} s, max {times.max():.2f} s, "
        f"CPU time/frame mean {cpus.mean():.2f} s "
        f"({len(models)} meshes); overlays in {out_dir}/"
    )
    if profiler is not None:
        _print_stages(profiler, len(rows), log)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "label": REAL_LABEL,
                    "machine": machine_description(),
                    "data": str(root),
                    "mode": mode,
                    "catalogue": names,
                    "min_iou": args.min_iou,
                    "frames": rows,
                    "overall": {
                        "present": n_present,
                        "found": n_found,
                        "recall": recall,
                        "false_reports": n_false,
                        "time_s_mean": float(times.mean()),
                        "time_s_max": float(times.max()),
                        "cpu_s_mean": float(cpus.mean()),
                    },
                },
                indent=2,
            )
        )
        log(f"wrote {args.json}")
    return 0


# The stages of estimate(), by the function that does each (module, function name), in pipeline order.
STAGES = (
    ("flying-pixel removal", "segmentation.py", "remove_flying_pixels"),
    ("support planes + segmentation", "segmentation.py", "segment_depth"),
    ("colour edges", "edges.py", "image_edges"),
    ("coarse: segment features (normals, FPFH)", "registration.py", "prepare_patch"),
    ("coarse: compatibility hypotheses", "registration.py", "compatibility_hypotheses"),
    ("coarse: one-way ICP", "registration.py", "refine_icp"),
    ("coarse: free-space ranking", "registration.py", "free_space_consistency_batch"),
    ("refine: two-way ICP", "registration.py", "refine_icp_visible"),
    ("refine: verification", "verification.py", "verify_hypotheses"),
)


def _print_stages(profiler, n_frames: int, log) -> None:
    """Cumulative CPU time of each stage over all frames, from the profile (profiling itself adds some overhead)."""
    import pstats

    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    log(f"stages of estimate() (cProfile, CPU time, {n_frames} frames; s per frame, share of estimate(), calls):")
    for label, module, func in STAGES:
        hits = [(v[1], v[3]) for (f, _, name), v in stats.items() if name == func and f.endswith(module)]
        calls, cum = sum(h[0] for h in hits), sum(h[1] for h in hits)
        log(f"  {label:42s} {cum / max(n_frames, 1):6.2f} s  {100 * cum / max(total, 1e-9):5.1f} %  {calls:6d}")
