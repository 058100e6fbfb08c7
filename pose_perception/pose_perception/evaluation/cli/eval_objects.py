"""Unseen-object 6D pose accuracy on SYNTHETIC RGB-D scenes (ADD(-S), MSSD/MSPD, false positives, vs Open3D) or REAL frames.

`pose-perception eval objects [--objects ...] [--scenes N] [--occlusion lo,hi] [--seed S]`; see docs/objects-eval.md.
`pose-perception eval objects --real [DIR] [--boxes]`: REAL frames, whole YCB-Video catalogue; see docs/objects-real.md.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.core.camera import depth_to_points
from pose_perception.core.machine import machine_description
from pose_perception.evaluation.objects import metrics
from pose_perception.evaluation.objects.baseline import BaselineConfig, BaselineInputError, register_tutorial
from pose_perception.evaluation.objects.synthetic import (
    DEV_OBJECTS,
    SYNTHETIC_LABEL,
    CATALOGUE,
    DepthNoiseConfig,
    EvalObject,
    SceneConfig,
    SyntheticScene,
    cache_dir,
    load_eval_object,
    make_scene,
    mesh_file_in_metres,
)


class EvalConfigError(ValueError):
    """Command-line values that cannot describe an evaluation (unknown object, bad occlusion range)."""


# --------------------------------------------------------------------------------------------------------------
# The estimator under test (area objects) is optional: without it only the baseline is measured.


@dataclass(frozen=True)
class EstimatorApi:
    load_object_model: object
    ObjectPoseEstimator: object
    EstimatorConfig: object


def estimator_api() -> Optional[EstimatorApi]:
    """objects/model.py + objects/estimator.py when this build has them, else None."""
    try:
        from pose_perception.objects.estimator import EstimatorConfig, ObjectPoseEstimator
        from pose_perception.objects.model import load_object_model
    except ModuleNotFoundError as exc:
        if exc.name in ("pose_perception.objects.estimator", "pose_perception.objects.model"):
            return None
        raise
    return EstimatorApi(load_object_model, ObjectPoseEstimator, EstimatorConfig)


def make_estimator(api: EstimatorApi, obj: EvalObject, device: str = "cpu", score_threshold: float | None = None):
    """A single-object estimator for catalogue object `obj`, loaded through the public onboarding path."""
    model = api.load_object_model(
        obj.name, str(mesh_file_in_metres(obj.name, cache_dir())), units="m", symmetry=obj.symmetry
    )
    _check_same_frame(model, obj)
    config = api.EstimatorConfig() if score_threshold is None else api.EstimatorConfig(score_threshold=score_threshold)
    return api.ObjectPoseEstimator([model], config, device=device)


def _check_same_frame(model, obj: EvalObject) -> None:
    """Ground truth is in the mesh file's frame; refuse to score a model that was re-centred or re-scaled."""
    points = getattr(model, "dense_points", None)
    if points is None:
        points = getattr(model, "points", None)
    if points is None:
        return
    points = np.asarray(points, dtype=np.float64)
    lo, hi = obj.vertices_m.min(axis=0), obj.vertices_m.max(axis=0)
    if np.any(points.min(axis=0) < lo - 0.005) or np.any(points.max(axis=0) > hi + 0.005):
        raise EvalConfigError(
            f"the onboarded model of '{obj.name}' is not in its mesh file's frame (bounds differ by > 5 mm); "
            "ground truth would not be comparable"
        )


# --------------------------------------------------------------------------------------------------------------
# Bookkeeping.


@dataclass
class MethodResults:
    """Per-scene errors and times of one method on one object."""

    errors: list = field(default_factory=list)  # metrics.PoseErrors per positive scene
    times_s: list = field(default_factory=list)
    negatives: int = 0
    false_positives: int = 0
    failures: int = 0  # calls that raised; counted as misses (positives) or as no report (negatives)
    first_failure: str = ""

    def call(self, fn, *args, **kwargs) -> list:
        """fn(*args, **kwargs) -> list of poses; an exception is counted and recorded instead of ending the run."""
        try:
            return list(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - a harness reports failures of the code under test
            self.failures += 1
            self.first_failure = self.first_failure or f"{type(exc).__name__}: {exc}"
            return []

    def summary(self, objs: list[EvalObject], widths: list[int]) -> dict:
        """objs / widths: the object and image width of each error entry."""
        if not self.errors:
            return {"n": 0}
        add_like = [_add_s_hit(e, o) for e, o in zip(self.errors, objs)]
        adds = [e.adds_m < metrics.ADD_THRESHOLD_FRACTION * o.diameter_m for e, o in zip(self.errors, objs)]
        mssd = [
            np.mean([e.mssd_m < th for th in metrics.mssd_thresholds_m(o.diameter_m)])
            for e, o in zip(self.errors, objs)
        ]
        mspd = [np.mean([e.mspd_px < th for th in metrics.mspd_thresholds_px(w)]) for e, w in zip(self.errors, widths)]
        times = np.asarray(self.times_s) * 1000.0
        return {
            "n": len(self.errors),
            "add_s_recall": float(np.mean(add_like)),
            "adds_recall": float(np.mean(adds)),
            "ar_mssd": float(np.mean(mssd)),
            "ar_mspd": float(np.mean(mspd)),
            "time_ms_mean": float(times.mean()) if times.size else float("nan"),
            "time_ms_p95": float(np.percentile(times, 95)) if times.size else float("nan"),
            "negatives": self.negatives,
            "false_positives": self.false_positives,
            "failures": self.failures,
            "first_failure": self.first_failure,
        }


def _add_s_hit(errors: metrics.PoseErrors, obj: EvalObject) -> bool:
    """ADD(-S) below 0.1 d: ADD-S for objects with a declared symmetry, ADD otherwise."""
    error = errors.adds_m if obj.symmetry != "none" else errors.add_m
    return bool(error < metrics.ADD_THRESHOLD_FRACTION * obj.diameter_m)


def _best_for(poses, name: str):
    candidates = [p for p in poses if p.name == name]
    return max(candidates, key=lambda p: p.score) if candidates else None


def _run_baseline(obj: EvalObject, dense_points: np.ndarray, scene: SyntheticScene, mask, config: BaselineConfig):
    depth = scene.depth_m if mask is None else np.where(mask, scene.depth_m, np.nan)
    points, _ = depth_to_points(depth, scene.intrinsics.K)
    start = time.perf_counter()
    try:
        result = register_tutorial(dense_points, points, obj.diameter_m, config)
    except BaselineInputError:
        return None, time.perf_counter() - start
    return result.T_cam_obj, result.time_s


def _dense_points(obj: EvalObject, n: int = 20000) -> np.ndarray:
    import trimesh

    points, _ = trimesh.sample.sample_surface(trimesh.Trimesh(obj.vertices_m, obj.faces, process=False), n, seed=1)
    return np.asarray(points, dtype=np.float64)


OCCLUSION_BUCKETS = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 1.01))


def _recall_by_occlusion(errors: list, objs: list[EvalObject], visible: list[float]) -> dict:
    """ADD(-S)@0.1d recall per bucket of hidden fraction (1 - visible): {"0.30-0.50": {"n": k, "recall": r}}."""
    out = {}
    for lo, hi in OCCLUSION_BUCKETS:
        hits = [_add_s_hit(e, o) for e, o, v in zip(errors, objs, visible) if lo <= 1.0 - v < hi]
        if hits:
            out[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = {"n": len(hits), "recall": float(np.mean(hits))}
    return out


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'lo,hi' (two fractions, e.g. 0.3,0.5), got '{text}'") from None
    if not 0.0 <= lo <= hi < 1.0:
        raise argparse.ArgumentTypeError(f"occlusion range must satisfy 0 <= lo <= hi < 1, got {lo},{hi}")
    return lo, hi


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objects",
        nargs="+",
        default=list(DEV_OBJECTS),
        metavar="NAME",
        help=f"catalogue objects (default: the 10 YCB dev objects); known: {', '.join(CATALOGUE)}",
    )
    parser.add_argument("--scenes", type=int, default=3, help="scenes with the object, per object (default 3)")
    parser.add_argument(
        "--negatives",
        type=int,
        default=1,
        help="scenes WITHOUT the object, per object, to count false positives (default 1)",
    )
    parser.add_argument(
        "--occlusion",
        type=parse_range,
        default=(0.0, 0.5),
        metavar="LO,HI",
        help="fraction of the object hidden by an occluder, drawn uniformly (default 0,0.5)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--masks",
        choices=("gt", "none"),
        default="gt",
        help="gt: both methods get the object's visible mask (a perfect detector; on negative "
        "scenes a distractor's mask, i.e. a wrong detection); none: the estimator segments "
        "by itself and the baseline gets the whole scene (slow)",
    )
    parser.add_argument(
        "--noise",
        choices=("sensor", "none"),
        default="sensor",
        help="sensor: RGB-D sensor depth noise model (default); none: exact depth (ablation)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the Open3D tutorial baseline")
    parser.add_argument("--no-estimator", action="store_true", help="measure only the baseline")
    parser.add_argument("--device", default="cpu", help="estimator device: cpu | cuda | auto")
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="estimator verification threshold (default: the estimator's own)",
    )
    from pose_perception.evaluation.cli.eval_objects_real import add_real_arguments

    add_real_arguments(parser)
    add_common_output(parser)


def _fmt(summary: dict) -> str:
    if not summary.get("n"):
        return "      -      -      -      -        -"
    return (
        f"{summary['add_s_recall']:6.2f} {summary['adds_recall']:6.2f} {summary['ar_mssd']:6.2f} "
        f"{summary['ar_mspd']:6.2f} {summary['time_ms_mean']:8.0f}"
    )


def evaluate(args: argparse.Namespace, log=print) -> dict:
    """Run the evaluation described by args; returns the JSON-ready results."""
    unknown = [n for n in args.objects if n not in CATALOGUE]
    if unknown:
        raise EvalConfigError(f"unknown objects {unknown}; known: {', '.join(CATALOGUE)}")
    if args.scenes < 1 or args.negatives < 0:
        raise EvalConfigError("--scenes must be >= 1 and --negatives >= 0")
    api = None if args.no_estimator else estimator_api()
    if api is None and not args.no_estimator:
        log("NOTE: objects/estimator.py is not in this build: measuring the Open3D baseline only")
    run_baseline = not args.no_baseline
    if api is None and not run_baseline:
        raise EvalConfigError("nothing to measure: no estimator in this build and --no-baseline given")
    noise = DepthNoiseConfig() if args.noise == "sensor" else DepthNoiseConfig.noiseless()
    config = SceneConfig(occlusion_range=tuple(args.occlusion), noise=noise)
    baseline_config = BaselineConfig(seed=args.seed)
    use_masks = args.masks == "gt"
    methods = (["estimator"] if api else []) + (["baseline"] if run_baseline else [])
    per_object: dict[str, dict] = {}
    all_results = {m: MethodResults() for m in methods}
    all_objs: list[EvalObject] = []
    all_widths: list[int] = []
    visible_all: list[float] = []
    from pose_perception.core.progress import progress

    bar = progress(len(args.objects) * (args.scenes + args.negatives), "eval objects", unit="scene")
    for oi, name in enumerate(args.objects):
        obj = load_eval_object(name)
        estimator = make_estimator(api, obj, args.device, args.score_threshold) if api else None
        dense = _dense_points(obj) if run_baseline else None
        results = {m: MethodResults() for m in methods}
        visible = []
        for i in range(args.scenes):
            scene = make_scene(name, [args.seed, oi, i], config)
            gt = scene.object(name)
            visible.append(gt.visible_fraction)
            mask = scene.mask(name) if use_masks else None
            if estimator is not None:
                start = time.perf_counter()
                poses = results["estimator"].call(
                    estimator.estimate,
                    scene.rgb,
                    scene.depth_m,
                    scene.intrinsics,
                    masks=[mask] if mask is not None else None,
                )
                results["estimator"].times_s.append(time.perf_counter() - start)
                best = _best_for(poses, name)
                results["estimator"].errors.append(
                    metrics.pose_errors(
                        None if best is None else best.T_cam_obj,
                        gt.T_cam_obj,
                        obj.points_m,
                        obj.symmetries,
                        scene.intrinsics.K,
                    )
                )
            if run_baseline:
                T, elapsed = _run_baseline(obj, dense, scene, mask, baseline_config)
                results["baseline"].times_s.append(elapsed)
                results["baseline"].errors.append(
                    metrics.pose_errors(T, gt.T_cam_obj, obj.points_m, obj.symmetries, scene.intrinsics.K)
                )
            bar.update()
        for j in range(args.negatives):
            scene = make_scene(None, [args.seed, oi, 1000 + j], config, exclude=(name,))
            distractors = [o.name for o in scene.objects if o.role == "distractor"]
            masks = [scene.mask(distractors[0])] if (use_masks and distractors) else None
            if estimator is not None:
                poses = results["estimator"].call(
                    estimator.estimate, scene.rgb, scene.depth_m, scene.intrinsics, masks=masks
                )
                results["estimator"].negatives += 1
                results["estimator"].false_positives += int(any(p.name == name for p in poses))
            if run_baseline:
                # the tutorial recipe has no rejection step: it reports a pose whenever registration runs
                results["baseline"].negatives += 1
                results["baseline"].false_positives += int(
                    _run_baseline(obj, dense, scene, masks[0] if masks else None, baseline_config)[0] is not None
                )
            bar.update()
        per_object[name] = {
            m: results[m].summary([obj] * len(results[m].errors), [config.width] * len(results[m].errors))
            for m in methods
        }
        per_object[name]["visible_fraction_mean"] = float(np.mean(visible))
        per_object[name]["symmetry"] = obj.symmetry
        for m in methods:
            all_results[m].errors += results[m].errors
            all_results[m].times_s += results[m].times_s
            all_results[m].negatives += results[m].negatives
            all_results[m].false_positives += results[m].false_positives
            all_results[m].failures += results[m].failures
            all_results[m].first_failure = all_results[m].first_failure or results[m].first_failure
        all_objs += [obj] * args.scenes
        all_widths += [config.width] * args.scenes
        visible_all += visible
        log(
            f"  {name:22s} "
            + "  |  ".join(f"{m}: {_fmt(per_object[name][m])}" for m in methods)
            + f"  vis {np.mean(visible):.2f}"
        )
    bar.close()
    overall = {m: all_results[m].summary(all_objs, all_widths) for m in methods}
    by_occlusion = {m: _recall_by_occlusion(all_results[m].errors, all_objs, visible_all) for m in methods}
    out = {
        "label": SYNTHETIC_LABEL,
        "machine": machine_description(),
        "command": "pose-perception eval objects "
        + " ".join(
            [
                f"--objects {' '.join(args.objects)}",
                f"--scenes {args.scenes}",
                f"--negatives {args.negatives}",
                f"--occlusion {args.occlusion[0]},{args.occlusion[1]}",
                f"--seed {args.seed}",
                f"--masks {args.masks}",
                f"--noise {args.noise}",
            ]
        ),
        "per_object": per_object,
        "overall": overall,
        "visible_fraction_mean": float(np.mean(visible_all)),
        "add_s_recall_by_occlusion": by_occlusion,
    }
    if "estimator" in overall and "baseline" in overall and overall["estimator"].get("n"):
        est, base = overall["estimator"], overall["baseline"]
        out["baseline_comparison"] = {
            "add_s_recall_estimator_minus_baseline": est["add_s_recall"] - base["add_s_recall"],
            "time_ratio_baseline_over_estimator": base["time_ms_mean"] / max(est["time_ms_mean"], 1e-9),
        }
    return out


def run(args: argparse.Namespace) -> int:
    if args.real is not None:
        from pose_perception.evaluation.cli.eval_objects_real import run_real

        return run_real(args)
    print(f"eval objects on {SYNTHETIC_LABEL}")
    print(f"machine: {machine_description()}")
    print(
        f"{len(args.objects)} objects x {args.scenes} scenes (+{args.negatives} without the object), 640x480, "
        f"occlusion {args.occlusion[0]:.2f}-{args.occlusion[1]:.2f}, masks={args.masks}, depth noise={args.noise}, "
        f"seed {args.seed}"
    )
    print("  per object: ADD(-S)@0.1d  ADD-S@0.1d  AR_MSSD  AR_MSPD  time ms")
    try:
        out = evaluate(args)
    except EvalConfigError as exc:
        print(f"error: {exc}")
        return 2
    print("overall (SYNTHETIC):")
    for m, s in out["overall"].items():
        if not s.get("n"):
            continue
        print(
            f"  {m:9s} n={s['n']:3d}  ADD(-S)@0.1d {s['add_s_recall']:.3f}  ADD-S@0.1d {s['adds_recall']:.3f}  "
            f"AR_MSSD {s['ar_mssd']:.3f}  AR_MSPD {s['ar_mspd']:.3f}  time/image mean {s['time_ms_mean']:.0f} ms "
            f"p95 {s['time_ms_p95']:.0f} ms  false positives {s['false_positives']}/{s['negatives']}"
        )
        if s["failures"]:
            print(f"  {m} RAISED on {s['failures']} images (counted as misses); first: {s['first_failure']}")
    if "baseline_comparison" in out:
        c = out["baseline_comparison"]
        print(
            "  estimator vs Open3D tutorial baseline: ADD(-S) recall "
            f"{c['add_s_recall_estimator_minus_baseline']:+.3f}, "
            f"baseline takes {c['time_ratio_baseline_over_estimator']:.1f}x the estimator's time"
        )
    for m, buckets in out["add_s_recall_by_occlusion"].items():
        if buckets:
            print(
                f"  {m:9s} ADD(-S)@0.1d by hidden fraction: "
                + ", ".join(f"{k}: {b['recall']:.2f} (n={b['n']})" for k, b in buckets.items())
            )
    print(f"  mean visible fraction of the targets: {out['visible_fraction_mean']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0
