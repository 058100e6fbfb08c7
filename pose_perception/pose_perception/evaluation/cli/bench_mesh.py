"""Body-mesh update speed per person: BodyMeshFitter warm-started along a mocap clip (SYNTHETIC keypoints).

Prints model load, cold and warm fit times (wall mean, p95, Hz; CPU time, which a busy machine inflates less)
and, as the peer, one forward pass of the full anny model.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.core.machine import machine_description


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip", default="walk", help="DeepMimic clip driving the synthetic person")
    parser.add_argument("--frames", type=int, default=60, help="warm fits to time")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="rate the clip is resampled to (frame spacing)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-faces", type=int, default=None, help="also time a decimated mesh of this many faces")
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="skip timing the ROS conversions (shape_msgs/Mesh, TRIANGLE_LIST marker) of the mesh",
    )
    add_common_output(parser)


def _stats(times_s: list[float]) -> dict:
    t = np.asarray(times_s) * 1000.0
    return {
        "n": int(t.size),
        "mean_ms": float(t.mean()),
        "p50_ms": float(np.percentile(t, 50)),
        "p95_ms": float(np.percentile(t, 95)),
        "rate_hz": float(1000.0 / t.mean()),
    }


def _publish_ms(mesh) -> dict | None:
    """Median ms of ros/conversions.mesh_to_msg and ros/markers.mesh_triangle_marker for one mesh (None: no ROS)."""
    try:
        from std_msgs.msg import Header

        from pose_perception.ros.conversions import mesh_to_msg
        from pose_perception.ros.markers import mesh_triangle_marker
    except ImportError:
        return None
    to_msg, marker = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        mesh_to_msg(mesh)
        t1 = time.perf_counter()
        mesh_triangle_marker(Header(frame_id="camera"), mesh.vertices, mesh.faces, 1)
        to_msg.append(t1 - t0)
        marker.append(time.perf_counter() - t1)
    return {"mesh_to_msg": 1000 * float(np.median(to_msg)), "triangle_marker": 1000 * float(np.median(marker))}


def run(args: argparse.Namespace) -> int:
    import torch

    from pose_perception.human.body_mesh import BodyMeshFitter
    from pose_perception.evaluation.human.mocap import clip_bodies, clip_length
    from pose_perception.evaluation.human.synthetic import AnnyPoser

    torch.set_num_threads(args.threads)
    print(f"bench mesh ({args.threads} torch thread(s)), machine: {machine_description()}")
    poser = AnnyPoser()
    phenotype = {"gender": 0.3, "height": 0.6}
    count = clip_length(args.clip, args.rate_hz)
    t0 = time.perf_counter()
    bodies = clip_bodies(poser, args.clip, args.rate_hz, count, phenotype)
    peer_ms = 1000 * (time.perf_counter() - t0) / (count + 1)  # +1: the rest pose
    # The clip repeats (DeepMimic clips loop); the fitter sees one continuous track.
    frames = [bodies[i % count][2].astype(np.float32) for i in range(args.frames + 1)]
    confidence = np.ones(23, np.float32)
    results = {
        "machine": machine_description(),
        "threads": args.threads,
        "clip": args.clip,
        "data": "SYNTHETIC keypoints of anny posed from DeepMimic mocap",
    }
    variants = [("full mesh", None)] + ([(f"max_faces={args.max_faces}", args.max_faces)] if args.max_faces else [])
    for label, max_faces in variants:
        t0 = time.perf_counter()
        fitter = BodyMeshFitter(device=args.device, max_faces=max_faces)
        load_s = time.perf_counter() - t0
        cold, warm, failures, faces = [], [], 0, len(fitter.faces)
        for rep in range(3):  # cold fits: three fresh tracks
            r = fitter.fit_details(100 + rep, frames[0], confidence, 0.0)
            cold.append(r.fit_time_s if r is not None else np.nan)
        cpu = []
        for i, keypoints in enumerate(frames[1:], start=1):
            t0, c0 = time.perf_counter(), time.process_time()
            r = fitter.fit_details(100, keypoints, confidence, i / args.rate_hz)
            warm.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            failures += r is None or r.cold
        publish = None if args.no_publish or r is None else _publish_ms(r.mesh)
        ws = _stats(warm)
        cpu_ms = 1000 * float(np.mean(cpu))
        results[label] = {
            "load_s": load_s,
            "faces": faces,
            "cold_mean_ms": 1000 * float(np.nanmean(cold)),
            "warm": ws,
            "warm_cpu_ms_mean": cpu_ms,
            "warm_failures_or_reinits": int(failures),
            "publish_ms": publish,
        }
        print(
            f"  {label:18s} faces {faces:6d}  load {load_s:.2f} s  cold fit {1000 * np.nanmean(cold):.0f} ms  "
            f"warm fit mean {ws['mean_ms']:.1f} ms  p50 {ws['p50_ms']:.1f}  p95 {ws['p95_ms']:.1f} ms  "
            f"=> {ws['rate_hz']:.1f} Hz per person  (CPU time {cpu_ms:.1f} ms a fit; re-inits {failures})"
        )
        if publish:
            print(
                f"  {'':18s} ROS conversion of one mesh: mesh_to_msg {publish['mesh_to_msg']:.0f} ms, "
                f"mesh_triangle_marker {publish['triangle_marker']:.0f} ms"
            )
    results["peer_anny_forward_ms"] = peer_ms
    print(
        f"  peer: one full anny forward pass (synthetic.AnnyPoser.pose, no fitting) {peer_ms:.1f} ms; "
        f"warm fit / anny forward = {results['full mesh']['warm']['mean_ms'] / peer_ms:.2f}x"
    )
    verdict = results["full mesh"]["warm"]["rate_hz"] >= 5.0
    print(f"target >= 5 Hz per person with warm start: {'PASS' if verdict else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if verdict else 1


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    raise SystemExit(run(p.parse_args()))
