"""Human pose speed at 640x480: raw MediaPipe Holistic inference, then the real human_pose_node over DDS with
1 and 3 people (end-to-end latency, output rate, per-stage times), and the node / raw ratio, in one run.

Frames are real photos (scikit-image astronaut; 3 people = astronaut, cameraman and the mirrored astronaut
composed side by side). Latency is receive time of `humans` minus the image header stamp (one machine clock).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pose_perception.core.machine import machine_description
from pose_perception.ros.dds import set_profile, shipped_profile

REPO = Path(__file__).resolve().parents[3]
TARGETS = {"one_person_rate_hz": 12.0, "node_over_raw": 1.3, "three_people_rate_hz": 5.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement time per scenario")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds per scenario before measuring")
    parser.add_argument("--rate", type=float, default=30.0, help="camera publish rate in Hz")
    parser.add_argument("--raw-iterations", type=int, default=30, help="raw Holistic calls timed")
    parser.add_argument(
        "--closed-loop-frames",
        type=int,
        default=15,
        help="frames sent one at a time after each result (e2e without queueing)",
    )
    parser.add_argument("--search-period", type=int, default=3, help="node parameter search_period")
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra human_pose_node parameter (repeatable), e.g. finder_person_boxes:=false",
    )
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")


def _stats(values_ms) -> dict:
    a = np.asarray(values_ms, dtype=np.float64)
    if a.size == 0:
        return {"mean_ms": float("nan"), "p95_ms": float("nan"), "n": 0}
    return {"mean_ms": float(a.mean()), "p95_ms": float(np.percentile(a, 95)), "n": int(a.size)}


def raw_inference_ms(frame: np.ndarray, iterations: int, people: int) -> dict[str, dict]:
    """MediaPipe Holistic alone (no mapping), once on each person's 1/n-wide slice of the frame (the least any
    top-down use needs), times summed over the people. 'video': each person in their own lane (video mode, how
    the node follows people from frame to frame); 'still': still-image mode (the pose detector on every call,
    how a new person is first found)."""
    from pose_perception.human.backends import MediaPipeHolisticBackend

    edges = np.linspace(0, frame.shape[1], people + 1).round().astype(int)
    crops = [np.ascontiguousarray(frame[:, a:b]) for a, b in zip(edges[:-1], edges[1:])]
    backend = MediaPipeHolisticBackend()
    out = {}
    try:
        for mode, lanes in (("video", range(people)), ("still", [None] * people)):
            for c, lane in zip(crops, lanes):
                backend.raw_process(c, lane)  # graph start-up (and the lane's first detection)
            times = []
            for _ in range(iterations):
                t0 = time.perf_counter()
                for c, lane in zip(crops, lanes):
                    backend.raw_process(c, lane)
                times.append((time.perf_counter() - t0) * 1e3)
            out[mode] = _stats(times)
    finally:
        backend.close()
    return out


def _start_node(env: dict, search_period: int, params: tuple[str, ...] = ()) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "pose_perception.ros.human_pose_node",
        "--ros-args",
        "-p",
        f"search_period:={search_period}",
        "-p",
        "stage_window:=30",
        "-p",
        "joint_frames:=''",
        "-p",
        "input_qos:=reliable",
    ]
    for p in params:
        argv += ["-p", p]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def run(args) -> int:
    from pose_perception.core.camera import CameraIntrinsics
    from pose_perception.evaluation.samples.photos import three_person_frame
    from pose_perception.evaluation.samples.photos import one_person_frame

    W, H = 640, 480
    frames = {"1 person": one_person_frame(W, H), "3 people": three_person_frame(W, H)}
    print(
        f"bench human: 640x480, camera at {args.rate:g} Hz, {args.seconds:g} s per scenario "
        f"(real photos; 3 people = composite of real photos)"
    )
    print(f"machine: {machine_description()}")
    if args.node_param:
        print("node parameters: " + ", ".join(args.node_param))
    print("  raw Holistic ...", file=sys.stderr, flush=True)
    raw = {name: raw_inference_ms(f, args.raw_iterations, people=int(name[0])) for name, f in frames.items()}

    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    set_profile(os.environ, shipped_profile(), overwrite=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image

    from pose_perception.ros.conversions import intrinsics_to_camera_info, numpy_to_image
    from pose_perception.ros.process import init_ros
    from pose_perception.ros.qos import input_qos
    from pose_perception_msgs.msg import HumanArray

    init_ros()
    node = rclpy.create_node("bench_human_camera")
    # Reliable: the closed-loop part waits for the result of every frame, a lost frame would stall it.
    pub_img = node.create_publisher(Image, "image", input_qos("reliable"))
    pub_info = node.create_publisher(CameraInfo, "camera_info", input_qos("reliable"))
    received: list[tuple[float, float, int, float]] = []  # (receive time, latency s, people, stamp s)
    stages: dict[str, str] = {}

    def on_humans(msg):
        now = time.time()
        stamp_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        received.append((now, now - stamp_s, len(msg.humans), stamp_s))

    def on_diag(msg):
        for s in msg.status:
            if s.name == "human_pose_node/stages":
                stages.clear()
                stages.update({kv.key: kv.value for kv in s.values})

    node.create_subscription(HumanArray, "humans", on_humans, 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    info = intrinsics_to_camera_info(CameraIntrinsics.default_for_size(W, H))
    child = _start_node(env, args.search_period, tuple(args.node_param))
    results = {}
    import signal

    # A bench killed by SIGTERM (timeout) must not leave the node running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        deadline = time.monotonic() + 90
        while pub_img.get_subscription_count() < 1:
            if child.poll() is not None or time.monotonic() > deadline:
                print("error: human_pose_node did not start (run it alone to see why)", file=sys.stderr)
                return 1
            rclpy.spin_once(node, timeout_sec=0.05)
        for name, frame in frames.items():
            print(f"  {name}: camera at {args.rate:g} Hz ...", file=sys.stderr, flush=True)
            msg = numpy_to_image(frame, "rgb8")
            msg.header.frame_id = info.header.frame_id = "camera_color_optical_frame"
            period = 1.0 / args.rate
            t_start = time.monotonic()
            t_next = t_start
            measure_from = None
            while time.monotonic() < t_start + args.warmup + args.seconds:
                now = time.monotonic()
                if now >= t_next:
                    stamp = node.get_clock().now().to_msg()
                    msg.header.stamp = info.header.stamp = stamp
                    pub_info.publish(info)
                    pub_img.publish(msg)
                    t_next += period
                if measure_from is None and now >= t_start + args.warmup:
                    measure_from = time.time()
                rclpy.spin_once(node, timeout_sec=max(0.0, min(0.005, t_next - time.monotonic())))
            window = [(t, lat, n) for t, lat, n, _ in received if t >= measure_from]
            lat = _stats([lat * 1e3 for _, lat, _ in window])
            # Let the node publish its stage window for this scenario before reading it.
            t_diag = time.monotonic()
            while time.monotonic() - t_diag < 1.5:
                rclpy.spin_once(node, timeout_sec=0.05)
            stage_means = {k[:-8]: float(v) for k, v in stages.items() if k.endswith("_mean_ms")}
            # Closed loop: the next frame only after the last result, so e2e has no queueing behind a
            # frame in progress: node + transport overhead over raw inference.
            print(f"  {name}: closed loop ...", file=sys.stderr, flush=True)
            closed = []
            for _ in range(args.closed_loop_frames):
                stamp = node.get_clock().now().to_msg()
                msg.header.stamp = info.header.stamp = stamp
                stamp_s = stamp.sec + stamp.nanosec * 1e-9
                pub_info.publish(info)
                pub_img.publish(msg)
                t_wait = time.monotonic()
                mine = []
                while not mine and time.monotonic() - t_wait < 5.0:
                    rclpy.spin_once(node, timeout_sec=0.01)
                    mine = [r for r in received[-3:] if abs(r[3] - stamp_s) < 1e-6]
                if mine:
                    closed.append(mine[0][1] * 1e3)
            closed_stats = _stats(closed)
            results[name] = {
                "output_rate_hz": len(window) / args.seconds,
                "people_mean": float(np.mean([n for _, _, n in window])) if window else 0.0,
                "end_to_end": lat,
                "end_to_end_closed_loop": closed_stats,
                "stages_mean_ms": stage_means,
                "raw_inference": raw[name],
                "node_over_raw": lat["mean_ms"] / raw[name]["video"]["mean_ms"],
                "node_over_raw_closed_loop": closed_stats["mean_ms"] / raw[name]["video"]["mean_ms"],
            }
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
        node.destroy_node()
        rclpy.try_shutdown()

    print(
        "open loop = camera at --rate (a frame waits for the one in progress); closed loop = next frame "
        "after each result; raw = Holistic alone per person, summed: video mode (as the node follows people; "
        "the ratios use it) and still mode (pose detector every call)"
    )
    print(
        f"{'scenario':9} {'rate Hz':>8} {'people':>7} {'e2e mean':>9} {'e2e p95':>8} {'closed mean':>12} "
        f"{'raw video':>10} {'raw still':>10} {'e2e/raw':>8} {'closed/raw':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:9} {r['output_rate_hz']:8.1f} {r['people_mean']:7.2f} {r['end_to_end']['mean_ms']:9.1f} "
            f"{r['end_to_end']['p95_ms']:8.1f} {r['end_to_end_closed_loop']['mean_ms']:12.1f} "
            f"{r['raw_inference']['video']['mean_ms']:10.1f} {r['raw_inference']['still']['mean_ms']:10.1f} "
            f"{r['node_over_raw']:8.2f} {r['node_over_raw_closed_loop']:11.2f}"
        )
    for name, r in results.items():
        print(f"{name}: closed-loop frames answered {r['end_to_end_closed_loop']['n']}/{args.closed_loop_frames}")
    for name, r in results.items():
        print(f"{name} stages (node, mean ms): " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages_mean_ms"].items()))
    one, three = results.get("1 person"), results.get("3 people")
    if one and three:
        print(
            f"targets: 1 person >= {TARGETS['one_person_rate_hz']:g} Hz: {one['output_rate_hz']:.1f}; "
            f"node e2e / raw <= {TARGETS['node_over_raw']:g}: {one['node_over_raw']:.2f} "
            f"(closed loop {one['node_over_raw_closed_loop']:.2f}); "
            f"3 people >= {TARGETS['three_people_rate_hz']:g} Hz: {three['output_rate_hz']:.1f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine_description(), "rate_hz": args.rate, "results": results}, indent=2)
        )
    return 0 if all(r["output_rate_hz"] > 0 for r in results.values()) else 1
