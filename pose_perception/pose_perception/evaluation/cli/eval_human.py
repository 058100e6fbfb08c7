"""People found in REAL annotated photos: recall, precision, body PCK@0.2, OKS, tracks, time, overlays.

`pose-perception eval human [--real DIR] [--out-dir DIR] [--max-people N] [--json OUT.json]` reads
`DIR/mmpose_testdata` (PoseTrack18, MPII, MHP, ExLPose, JHMDB: annotated), `DIR/mmpose_testdata/posetrack18/videos`
(consecutive frames: track ids) and `DIR/coco_photos` (no annotations: overlays and counts only). DIR defaults to
../shared/realdata/humans beside the repository. Recall and PCK count annotated people at least 40 px tall;
a find is false only on photos whose every person is annotated, outside PoseTrack18's ignore regions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.core.machine import machine_description
from pose_perception.core.realdata import realdata_dir

DEFAULT_REAL = realdata_dir("humans")
TARGETS = {"recall": 0.9, "precision": 0.9, "pck_box": 0.85}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--real",
        metavar="DIR",
        default=str(DEFAULT_REAL),
        help="the realdata/humans folder (default: ../shared/realdata/humans beside the repository)",
    )
    parser.add_argument("--out-dir", default="out/eval_human", help="overlay PNGs go here (default out/eval_human)")
    parser.add_argument("--max-people", type=int, default=20, help="most people reported per photo (default 20)")
    parser.add_argument("--proposer", default=None, help="pipeline proposer (default: the pipeline's default)")
    parser.add_argument("--palms", action="store_true", help="the finder also runs the palm detector")
    parser.add_argument(
        "--no-person-boxes", action="store_true", help="the finder without its SSDLite whole-body person detector"
    )
    parser.add_argument("--no-coco", action="store_true", help="skip the 20 unannotated COCO photos")
    parser.add_argument(
        "--mesh",
        action="store_true",
        help="also fit body meshes (RGB only, default camera) on every photo and report how many "
        "people get one and whether it projects inside their box",
    )
    parser.add_argument("--mesh-only", action="store_true", help="only the mesh part of --mesh (implies --mesh)")
    parser.add_argument(
        "--mesh-fit",
        choices=("image", "keypoints3d"),
        default="image",
        help="mesh fit: 'image' (the body model reprojected onto the 2D keypoints, default) or "
        "'keypoints3d' (fitted to the lifted 3D keypoints, the earlier method)",
    )
    parser.add_argument("--no-video", action="store_true", help="skip the PoseTrack18 video frames (tracks)")
    parser.add_argument(
        "--sets",
        default=None,
        metavar="A,B",
        help="only these annotated sets (posetrack18, mpii, mhp, exlpose, jhmdb; default all)",
    )
    add_common_output(parser)


def _pipeline(args, tracking: bool, **overrides):
    from dataclasses import replace

    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    config = HumanPipelineConfig(max_people=args.max_people, tracking=tracking, lift_3d=False, head_pose=False)
    if args.proposer:
        config = replace(config, proposer=args.proposer)
    if getattr(args, "palms", False):
        config = replace(config, finder_palms=True)
    if getattr(args, "no_person_boxes", False):
        config = replace(config, finder_person_boxes=False)
    return HumanPosePipeline(replace(config, **overrides))


def _overlay(path: Path, rgb: np.ndarray, humans, image=None, score=None, max_side: int = 1280) -> None:
    """Annotated people in white (box green when found, magenta when missed, grey when under 40 px), estimates in
    their track colours on top; downscaled to max_side."""
    import cv2

    from pose_perception.core.keypoints import COCO_BODY_17_EDGES, COCO_WHOLEBODY_133
    from pose_perception.core.overlay import draw_humans
    from pose_perception.evaluation.human.real_eval import MIN_PERSON_HEIGHT_PX

    from pose_perception.human.lowlight import normalise_low_light

    # Near-black photos are drawn as the person models saw them (brightened), else nothing could be seen.
    img = np.ascontiguousarray(normalise_low_light(rgb)).copy()
    t = max(1, round(max(img.shape[:2]) / 640))
    if image is not None:
        for poly in image.ignore_polygons:
            cv2.polylines(img, [np.round(poly).astype(np.int32)], True, (90, 90, 90), t)
        for gi, g in enumerate(image.people):
            for a, b in COCO_BODY_17_EDGES:
                if g.visible[a] and g.visible[b]:
                    cv2.line(
                        img,
                        tuple(np.round(g.keypoints_uv[a]).astype(int)),
                        tuple(np.round(g.keypoints_uv[b]).astype(int)),
                        (255, 255, 255),
                        t,
                        cv2.LINE_AA,
                    )
            color = (
                (128, 128, 128)
                if g.height_px < MIN_PERSON_HEIGHT_PX
                else (0, 220, 0)
                if gi in score.matched
                else (255, 0, 255)
            )
            x0, y0, x1, y1 = np.round(g.bbox_xyxy).astype(int)
            cv2.rectangle(img, (x0, y0), (x1, y1), color, t)
    img = draw_humans(img, humans, COCO_WHOLEBODY_133)
    s = min(1.0, max_side / max(img.shape[:2]))
    if s < 1.0:
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def _body(humans) -> tuple[list[np.ndarray], list[np.ndarray]]:
    uvs, boxes = [], []
    for h in humans:
        uv = np.asarray(h.keypoints_uv[:17], np.float64).copy()
        uv[np.asarray(h.confidence[:17]) <= 0] = np.nan
        uvs.append(uv)
        boxes.append(np.asarray(h.bbox_xyxy, np.float64))
    return uvs, boxes


def _rate(hits: list) -> float:
    return float(np.mean(hits)) if hits else float("nan")


def evaluate(args, log=print) -> dict:
    from pose_perception.core.io import read_image_rgb
    from pose_perception.evaluation.human.real_eval import (
        load_annotated_sets,
        score_image,
        unannotated_photos,
        video_frames,
    )

    real = Path(args.real)
    images = load_annotated_sets(real)
    if getattr(args, "sets", None):
        wanted = {w.strip() for w in args.sets.split(",") if w.strip()}
        unknown = wanted - {im.dataset for im in images}
        if unknown:
            raise SystemExit(
                f"eval human --sets: no annotated set named {', '.join(sorted(unknown))} in {real} "
                f"(there are: {', '.join(sorted({im.dataset for im in images}))})"
            )
        images = [im for im in images if im.dataset in wanted]
    out_dir = Path(args.out_dir)
    if getattr(args, "mesh_only", False):
        return {"mesh": _meshes(args, [im.path for im in images] + unannotated_photos(real), out_dir, log)}
    pipeline = _pipeline(args, tracking=False)
    per_set: dict[str, dict] = {}
    rows = []
    times = []
    try:
        for image in images:
            rgb = read_image_rgb(image.path)
            pipeline.reset()  # each photo on its own: nobody followed from the last one
            t0 = time.perf_counter()
            humans, _ = pipeline.process(rgb, None, None, stamp_s=0.0)
            dt = (time.perf_counter() - t0) * 1e3
            times.append(dt)
            uvs, boxes = _body(humans)
            s = score_image(image, uvs, boxes)
            name = f"{image.dataset}_{image.path.parent.name}_{image.path.stem}"
            _overlay(out_dir / f"{name}.png", rgb, humans, image, s)
            rows.append((name, s, dt, rgb.shape[1], rgb.shape[0]))
            agg = per_set.setdefault(image.dataset, {"scores": [], "ms": []})
            agg["scores"].append(s)
            agg["ms"].append(dt)
            log(
                f"  {name:60s} {rgb.shape[1]}x{rgb.shape[0]} found {s.found}/{s.required}, estimates {s.estimates}, "
                f"false {s.false}, PCK@0.2 {_rate(s.pck_box):.2f}, {dt:.0f} ms"
            )
    finally:
        pipeline.close()

    def summarise(scores: list, ms: list) -> dict:
        req = sum(s.required for s in scores)
        found = sum(s.found for s in scores)
        judged = sum(s.judged for s in scores)
        false = sum(s.false for s in scores)
        return {
            "images": len(scores),
            "people": req,
            "found": found,
            "estimates": sum(s.estimates for s in scores),
            "false": false,
            "recall": found / req if req else float("nan"),
            "precision": (judged - false) / judged if judged else float("nan"),
            "pck_torso": _rate(sum((s.pck_torso for s in scores), [])),
            "pck_box": _rate(sum((s.pck_box for s in scores), [])),
            "pck_box_found": _rate(sum((s.pck_box_found for s in scores), [])),
            "oks_body": _rate(sum((s.oks for s in scores), [])),
            "ms_mean": float(np.mean(ms)),
            "ms_max": float(np.max(ms)),
        }

    result = {
        "sets": {k: summarise(v["scores"], v["ms"]) for k, v in per_set.items()},
        "all": summarise([r[1] for r in rows], times),
    }

    if not args.no_video:
        result["tracks"] = _tracks(args, video_frames(real), out_dir, log)
        result["discovery"] = _discovery(args, [im for im in images if im.dataset == "posetrack18"], log)
    if not args.no_coco:
        result["coco"] = _coco(args, unannotated_photos(real), out_dir, log)
    if getattr(args, "mesh", False):
        result["mesh"] = _meshes(args, [im.path for im in images] + unannotated_photos(real), out_dir, log)
    return result


def mesh_inside_fraction(
    vertices_m: np.ndarray, K: np.ndarray, box_xyxy: np.ndarray, width: int, height: int, pad: float = 0.15
) -> float:
    """Fraction of a mesh's vertices (V, 3, camera frame) that project inside the person's box grown by `pad` of its
    size on each side, counted over the vertices that project inside the image (a body cut by the frame edge
    has vertices beyond it, which no box can hold); NaN if none does."""
    z = vertices_m[:, 2]
    uv = vertices_m[:, :2] / np.where(z > 1e-6, z, np.nan)[:, None] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    in_image = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    if not in_image.any():
        return float("nan")
    w, h = box_xyxy[2] - box_xyxy[0], box_xyxy[3] - box_xyxy[1]
    b = box_xyxy + np.array([-pad * w, -pad * h, pad * w, pad * h])
    u, v = uv[in_image, 0], uv[in_image, 1]
    return float(np.mean((u >= b[0]) & (u <= b[2]) & (v >= b[1]) & (v <= b[3])))


def _meshes(args, photos: list[Path], out_dir: Path, log) -> dict:
    """Body meshes from RGB alone (default camera fx = fy = image width), on every photo: people found with both
    shoulders seen (confidence > 0.5), how many got a mesh, the fraction of each mesh's in-image vertices that
    fall inside the person's box (+15 %), and the fit time per person. --mesh-fit picks the fit."""
    from dataclasses import replace

    import cv2

    from pose_perception.core.camera import CameraIntrinsics
    from pose_perception.core.io import read_image_rgb
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    fit = getattr(args, "mesh_fit", "image")
    config = replace(
        HumanPipelineConfig(max_people=args.max_people, tracking=False, head_pose=False), mesh=True, mesh_fit=fit
    )
    pipeline = HumanPosePipeline(config)
    eligible = meshed = 0
    inside: list[float] = []
    fit_ms: list[float] = []
    worst: list[tuple[float, str]] = []
    try:
        for p in photos:
            rgb = read_image_rgb(p)
            H, W = rgb.shape[:2]
            cam = CameraIntrinsics.default_for_size(W, H)
            pipeline.reset()
            humans, timing = pipeline.process(rgb, None, cam, stamp_s=0.0)
            if humans:
                fit_ms.append(timing["mesh"] / len(humans))
            img = rgb.copy()
            t = max(1, round(max(H, W) / 640))
            for i, h in enumerate(humans):
                x0, y0, x1, y1 = np.round(h.bbox_xyxy).astype(int)
                if not (h.confidence[5] > 0.5 and h.confidence[6] > 0.5):
                    cv2.rectangle(img, (x0, y0), (x1, y1), (128, 128, 128), t)  # not counted: shoulders unsure
                    continue
                eligible += 1
                if h.mesh is None:
                    cv2.rectangle(img, (x0, y0), (x1, y1), (255, 0, 255), 2 * t)  # counted, no mesh
                    worst.append((0.0, f"{p.stem}#{i} none"))
                    continue
                meshed += 1
                f = mesh_inside_fraction(np.asarray(h.mesh.vertices, np.float64), cam.K, np.asarray(h.bbox_xyxy), W, H)
                inside.append(f)
                worst.append((f, f"{p.stem}#{i} {f:.2f}"))
                z = h.mesh.vertices[:, 2]
                uv = h.mesh.vertices[z > 1e-6][::7]
                uv = uv[:, :2] / uv[:, 2:3] * [cam.K[0, 0], cam.K[1, 1]] + [cam.K[0, 2], cam.K[1, 2]]
                for q in uv[np.all(np.isfinite(uv), axis=1)]:
                    cv2.circle(img, (int(q[0]), int(q[1])), t, (255, 255, 0), -1)
                for q, c in zip(h.keypoints_uv[:23], h.confidence[:23]):
                    if c > 0.3 and np.all(np.isfinite(q)):
                        cv2.circle(img, (int(q[0]), int(q[1])), 2 * t, (255, 0, 0), -1)
                cv2.rectangle(img, (x0, y0), (x1, y1), (255, 0, 0), t)
            s = min(1.0, 1280 / max(H, W))
            out_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(out_dir / f"mesh_{p.parent.name}_{p.stem}.png"),
                cv2.cvtColor(cv2.resize(img, None, fx=s, fy=s) if s < 1 else img, cv2.COLOR_RGB2BGR),
            )
    finally:
        pipeline.close()
    a = np.asarray([x for x in inside if np.isfinite(x)])
    out = {
        "fit": fit,
        "people_with_shoulders": eligible,
        "meshes": meshed,
        "inside_median": float(np.median(a)) if a.size else float("nan"),
        "inside_min": float(a.min()) if a.size else float("nan"),
        "meshes_inside_0_9": int(np.sum(a >= 0.9)),
        "meshes_inside_0_8": int(np.sum(a >= 0.8)),
        "fit_ms_per_person_mean": float(np.mean(fit_ms)) if fit_ms else float("nan"),
        "worst": [w for _, w in sorted(worst)[:8]],
    }
    log(
        f"  meshes (RGB only, fit '{fit}'): {meshed} of {eligible} people with both shoulders seen; in-image vertices "
        f"inside their box +15 %: median {out['inside_median']:.2f}, min {out['inside_min']:.2f}, "
        f"{out['meshes_inside_0_9']} meshes >= 0.9, {out['meshes_inside_0_8']} >= 0.8; "
        f"{out['fit_ms_per_person_mean']:.0f} ms per person"
    )
    log(f"  lowest: {', '.join(out['worst'])}")
    return out


def _tracks(args, frames: list[Path], out_dir: Path, log) -> dict:
    """The consecutive PoseTrack18 frames, forwards then backwards (the tracker confirms a person after 3
    frames): ids per frame, how many ids were ever given, and the fraction of people keeping their id from one
    frame to the next (matched by box overlap)."""
    from pose_perception.core.io import read_image_rgb
    from pose_perception.human.tracking import box_iou

    if not frames:
        return {"frames": 0}
    seq = frames + frames[-2::-1]
    pipeline = _pipeline(args, tracking=True)
    per_frame, ms = [], []
    try:
        for i, f in enumerate(seq):
            rgb = read_image_rgb(f)
            t0 = time.perf_counter()
            humans, _ = pipeline.process(rgb, None, None, stamp_s=i / 30.0)
            ms.append((time.perf_counter() - t0) * 1e3)
            per_frame.append([(h.track_id, np.asarray(h.bbox_xyxy, np.float64)) for h in humans])
            _overlay(out_dir / f"track_{i:02d}_{f.parent.name}_{f.stem}.png", rgb, humans)
    finally:
        pipeline.close()
    kept = total = 0
    for prev, cur in zip(per_frame, per_frame[1:]):
        for tid, box in cur:
            best = max(prev, key=lambda p: box_iou(p[1], box), default=None)
            if best is not None and box_iou(best[1], box) > 0.5:
                total += 1
                kept += int(best[0] == tid)
    ids = sorted({tid for fr in per_frame for tid, _ in fr})
    out = {
        "frames": len(seq),
        "people_per_frame": [len(fr) for fr in per_frame],
        "ids": ids,
        "id_kept": kept / total if total else float("nan"),
        "ms_mean": float(np.mean(ms)),
    }
    log(
        f"  tracks: {len(seq)} frames, people per frame {out['people_per_frame']}, ids {ids}, "
        f"id kept frame to frame {out['id_kept']:.2f}"
    )
    return out


# The node's video settings (config/human_pose.yaml): proposal rounds every 3rd frame once someone is followed,
# 25 ms of detector time per round, one keypoint-model run per search, fruitless searches backing off up to 8x.
NODE_VIDEO = {"finder_budget_ms": 25.0, "search_period": 3, "search_calls_per_frame": 1, "max_search_backoff": 8}
DISCOVERY_FRAMES = 90


def _discovery(args, images: list, log, frames: int = DISCOVERY_FRAMES) -> dict:
    """How promptly the node's video settings find each annotated person: every annotated PoseTrack18 frame held
    still for `frames` frames (a camera at 30 Hz watching a scene that appears at frame 0); per annotated person
    at least MIN_PERSON_HEIGHT_PX tall, the first frame whose estimates match them (body OKS, as the stills are
    scored), or None when never within the clip. A person the stills find but the video finds late waits for the
    finder's budgeted rounds to reach the window that sees them."""
    from pose_perception.core.io import read_image_rgb
    from pose_perception.evaluation.human.real_eval import MIN_PERSON_HEIGHT_PX, match_people

    pipeline = _pipeline(args, tracking=True, **NODE_VIDEO)
    first: list = []
    ms: list = []
    try:
        for image in images:
            rgb = read_image_rgb(image.path)
            pipeline.reset()
            required = [gi for gi, g in enumerate(image.people) if g.height_px >= MIN_PERSON_HEIGHT_PX]
            seen: dict = {}
            for i in range(frames):
                t0 = time.perf_counter()
                humans, _ = pipeline.process(rgb, None, None, stamp_s=i / 30.0)
                ms.append((time.perf_counter() - t0) * 1e3)
                for gi in match_people(_body(humans)[0], image.people):
                    seen.setdefault(gi, i)
            row = [seen.get(gi) for gi in required]
            first += row
            log(f"  discovery {image.path.parent.name}: first found at frame {row} of {frames}")
    finally:
        pipeline.close()
    found = [f for f in first if f is not None]
    out = {
        "frames": frames,
        "people": len(first),
        "first_found_frame": first,
        "found": len(found),
        "median_frame": float(np.median(found)) if found else float("nan"),
        "max_frame": int(max(found)) if found else -1,
        "ms_mean": float(np.mean(ms)) if ms else float("nan"),
    }
    log(
        f"  discovery: {out['found']}/{out['people']} found within {frames} frames, first found at frame median "
        f"{out['median_frame']:.0f}, max {out['max_frame']}, {out['ms_mean']:.0f} ms per frame"
    )
    return out


def _coco(args, photos: list[Path], out_dir: Path, log) -> dict:
    from pose_perception.core.io import read_image_rgb

    pipeline = _pipeline(args, tracking=False)
    counts, ms = {}, []
    try:
        for p in photos:
            rgb = read_image_rgb(p)
            pipeline.reset()  # each photo on its own (else the last photo's people are followed into this one)
            t0 = time.perf_counter()
            humans, _ = pipeline.process(rgb, None, None, stamp_s=0.0)
            ms.append((time.perf_counter() - t0) * 1e3)
            counts[p.name] = len(humans)
            _overlay(out_dir / f"coco_{p.stem}.png", rgb, humans)
    finally:
        pipeline.close()
    out = {
        "photos": len(photos),
        "people_found": counts,
        "total": int(sum(counts.values())),
        "ms_mean": float(np.mean(ms)) if ms else float("nan"),
    }
    log(
        f"  COCO photos (no annotations): {out['total']} people found in {len(photos)} photos, "
        f"{out['ms_mean']:.0f} ms per photo"
    )
    return out


def run(args) -> int:
    from pose_perception.evaluation.human.real_eval import RealDataMissingError

    print("pose-perception eval human: REAL photos (mmpose test data: PoseTrack18, MPII, MHP, ExLPose, JHMDB; COCO)")
    print(f"machine: {machine_description()}")
    try:
        result = evaluate(args)
    except RealDataMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "sets" not in result:  # --mesh-only
        print(f"overlays: {args.out_dir}/mesh_*.png")
        return 0
    print(
        "recall: annotated people >= 40 px tall that were found (OKS match >= 0.1); precision over finds on photos "
        "where everyone is annotated; PCK@0.2 over all annotated body points of those people, misses wrong "
        "(PCK: 0.2 x longer box side, mmpose's convention; torso: 0.2 x longer shoulder-hip diagonal, stricter; "
        "found: box PCK over found people only); OKS: COCO body sigmas, 0 for a miss"
    )
    print(
        f"{'set':12} {'imgs':>4} {'people':>6} {'found':>5} {'recall':>6} {'finds':>5} {'false':>5} {'prec':>5} "
        f"{'PCK@0.2':>7} {'torso':>6} {'found':>6} {'OKS':>5} {'ms mean':>8} {'ms max':>7}"
    )
    for name, r in list(result["sets"].items()) + [("ALL", result["all"])]:
        print(
            f"{name:12} {r['images']:4d} {r['people']:6d} {r['found']:5d} {r['recall']:6.3f} {r['estimates']:5d} "
            f"{r['false']:5d} {r['precision']:5.3f} {r['pck_box']:7.3f} {r['pck_torso']:6.3f} "
            f"{r['pck_box_found']:6.3f} {r['oks_body']:5.3f} {r['ms_mean']:8.0f} {r['ms_max']:7.0f}"
        )
    a = result["all"]
    print(
        f"targets: recall >= {TARGETS['recall']}: {a['recall']:.3f}; precision >= {TARGETS['precision']}: "
        f"{a['precision']:.3f}; body PCK@0.2 >= {TARGETS['pck_box']}: {a['pck_box']:.3f}"
    )
    print(f"overlays: {args.out_dir}/")
    if args.json:

        def clean(o):
            if isinstance(o, float) and not np.isfinite(o):
                return None
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o

        Path(args.json).write_text(json.dumps(clean({"machine": machine_description(), **result}), indent=2))
    return 0
