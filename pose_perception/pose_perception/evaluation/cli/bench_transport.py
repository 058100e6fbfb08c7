"""Image + depth transport between two processes over DDS: rate, mean and p95 latency at 640x480 / 30 Hz.

The publisher runs in a child process (`--role publisher`); latency is receive time minus header stamp,
both from the system clock of this one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pose_perception.core.machine import machine_description
from pose_perception.ros.dds import current_profile, set_profile, shipped_profile
from pose_perception.ros.process import ALLOCATOR_CHOICES, ALLOCATOR_ENV, allocator_choice, init_ros


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement duration")
    parser.add_argument("--rate", type=float, default=30.0, help="publish rate in Hz")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data")
    parser.add_argument(
        "--profile",
        default="shipped",
        help="'shipped' (config/fastdds_local.xml), 'default' (Fast DDS defaults) or an XML path",
    )
    parser.add_argument(
        "--executor",
        choices=("events", "single"),
        default=None,
        help="receiving executor (default: $POSE_PERCEPTION_EXECUTOR, else events: what the nodes use)",
    )
    parser.add_argument(
        "--allocator",
        choices=ALLOCATOR_CHOICES,
        default=None,
        help="both processes' message buffers: 'reuse' (what the nodes do) or glibc's 'default' "
        "(mmap per large message); default: $POSE_PERCEPTION_ALLOCATOR, else reuse",
    )
    parser.add_argument("--role", choices=("bench", "publisher"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")


def _publisher(args) -> int:
    import rclpy
    from sensor_msgs.msg import Image

    from pose_perception.ros.conversions import numpy_to_image
    from pose_perception.ros.qos import input_qos

    init_ros()
    node = rclpy.create_node("bench_transport_publisher")
    qos = input_qos(args.qos)
    pub_rgb = node.create_publisher(Image, "bench/image", qos)
    pub_depth = node.create_publisher(Image, "bench/depth", qos)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
    depth = rng.integers(300, 5000, (args.height, args.width), dtype=np.uint16)
    rgb_msg, depth_msg = numpy_to_image(rgb, "rgb8"), numpy_to_image(depth, "16UC1")
    rgb_msg.header.frame_id = depth_msg.header.frame_id = "camera_color_optical_frame"
    deadline = time.monotonic() + 30.0
    while pub_rgb.get_subscription_count() < 1 or pub_depth.get_subscription_count() < 1:
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.05)
    time.sleep(0.5)
    period = 1.0 / args.rate
    t_next = time.monotonic()
    t_end = t_next + args.seconds + 1.0
    while time.monotonic() < t_end:
        # Each message is stamped just before it is sent: the figure is transport latency per stream.
        rgb_msg.header.stamp = node.get_clock().now().to_msg()
        pub_rgb.publish(rgb_msg)
        depth_msg.header.stamp = node.get_clock().now().to_msg()
        pub_depth.publish(depth_msg)
        t_next += period
        time.sleep(max(0.0, t_next - time.monotonic()))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _summary(name: str, latencies_s: list[float], count: int, seconds: float) -> dict:
    lat = np.array(latencies_s) * 1e3
    return {
        "stream": name,
        "frames": count,
        "rate_hz": count / seconds if seconds > 0 else 0.0,
        "latency_mean_ms": float(lat.mean()) if lat.size else float("nan"),
        "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
    }


def run(args) -> int:
    if args.role == "publisher":
        return _publisher(args)
    env = dict(os.environ)
    if args.allocator:
        env[ALLOCATOR_ENV] = os.environ[ALLOCATOR_ENV] = args.allocator  # this process and the publisher
    set_profile(env, {"shipped": shipped_profile(), "default": None}.get(args.profile, Path(args.profile).resolve()))
    # This process must use the same transport profile as the publisher: re-exec if it differs.
    if current_profile(os.environ) != current_profile(env) and not os.environ.get("_PP_BENCH_REEXEC"):
        env["_PP_BENCH_REEXEC"] = "1"
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "pose_perception.cli.main",
                "bench",
                "transport",
                *sys.argv[sys.argv.index("transport") + 1 :],
            ],
            env=env,
        )

    import rclpy
    from sensor_msgs.msg import Image

    from pose_perception.ros.qos import input_qos

    init_ros()
    node = rclpy.create_node("bench_transport_subscriber")
    received: dict[str, list[tuple[float, float]]] = {"image": [], "depth": []}  # (receive time, latency)

    def make_cb(key):
        def cb(msg):
            now = time.time()
            received[key].append((now, now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)))

        return cb

    qos = input_qos(args.qos)
    node.create_subscription(Image, "bench/image", make_cb("image"), qos)
    node.create_subscription(Image, "bench/depth", make_cb("depth"), qos)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pose_perception.evaluation.cli.bench_transport_publisher",
            "--seconds",
            str(args.seconds),
            "--rate",
            str(args.rate),
            "--width",
            str(args.width),
            "--height",
            str(args.height),
            "--qos",
            args.qos,
        ],
        env=env,
    )
    from pose_perception.ros.executor import executor_choice, make_executor

    executor = make_executor(choice=args.executor)  # one for the whole run: rclpy.spin_once builds one per call
    executor.add_node(node)
    try:
        while child.poll() is None:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        child.wait(60)
        node.destroy_node()
        rclpy.try_shutdown()
    # Measure a window that starts 0.5 s after the first frame, skipping discovery and warm-up.
    first = min((r[0][0] for r in received.values() if r), default=0.0)
    t0, t1 = first + 0.5, first + 0.5 + args.seconds
    lat = {k: [latency for t, latency in v if t0 <= t < t1] for k, v in received.items()}
    counts = {k: len(v) for k, v in lat.items()}
    results = [_summary(k, lat[k], counts[k], args.seconds) for k in ("image", "depth")]
    # Minor page faults of both processes (the publisher is a waited child) per message received: what the
    # allocator choice changes.
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt + resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    faults_per_message = faults / max(1, sum(len(v) for v in received.values()))
    profile = current_profile(env) or "Fast DDS defaults"
    print(
        f"bench transport: {args.width}x{args.height} rgb8 + 16UC1 at {args.rate:g} Hz, {args.seconds:g} s, "
        f"QoS {args.qos}, profile {profile}, executor {executor_choice(args.executor)}, "
        f"allocator {allocator_choice()}"
    )
    print(f"machine: {machine_description()}")
    print(f"{'stream':8} {'frames':>7} {'rate Hz':>8} {'mean ms':>8} {'p95 ms':>8}")
    for r in results:
        print(
            f"{r['stream']:8} {r['frames']:7d} {r['rate_hz']:8.1f} {r['latency_mean_ms']:8.2f} {r['latency_p95_ms']:8.2f}"
        )
    print(f"minor page faults per message, both processes, start-up included: {faults_per_message:.0f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine_description(),
                    "profile": profile,
                    "executor": executor_choice(args.executor),
                    "allocator": allocator_choice(),
                    "page_faults_per_message": faults_per_message,
                    "results": results,
                },
                indent=2,
            )
        )
    return 0 if all(r["frames"] > 0 for r in results) else 1
