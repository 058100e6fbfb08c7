"""`pose-perception demo`: the three nodes as separate processes on real DDS, fed sample streams (real photos,
SYNTHETIC RGB-D, SYNTHETIC radar), every output recorded to an MCAP rosbag2, a summary table and PNGs.

Point the same nodes at a robot with `pose-perception up` and remaps (see the README).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pose_perception.core.machine import machine_description


@dataclass
class DemoPart:
    """One node of the demo: which parameter file starts it, where its inputs come from, what it answers on."""

    key: str
    node: str
    config: str
    remaps: dict[str, str]  # node topic -> demo topic
    result_topic: str
    result_type: str
    rate_hz: float
    published: dict[float, float] = field(default_factory=dict)  # input stamp -> publish wall time
    results: list[tuple[float, Any]] = field(default_factory=list)  # (receive wall time, msg)


PARTS = {
    "human": DemoPart(
        "human",
        "human_pose_node",
        "human_pose.yaml",
        {"image": "/demo/people/image", "camera_info": "/demo/people/camera_info"},
        "/humans",
        "pose_perception_msgs/msg/HumanArray",
        rate_hz=5.0,
    ),
    "objects": DemoPart(
        "objects",
        "object_pose_node",
        "object_pose.yaml",
        {"image": "/demo/table/image", "depth/image": "/demo/table/depth", "camera_info": "/demo/table/camera_info"},
        "/objects",
        "pose_perception_msgs/msg/ObjectPoseArray",
        rate_hz=5.0,
    ),
    "radar": DemoPart(
        "radar",
        "radar_pose_node",
        "radar_pose.yaml",
        {"radar/points": "/demo/radar/points"},
        "/radar/humans",
        "pose_perception_msgs/msg/HumanArray",
        rate_hz=20.0,
    ),
}
DEMO_OBJECT = "006_mustard_bottle"  # moves on the table; config/object_pose.yaml loads it as "mustard"
RUNTIME_OBJECT = ("bowl", "ycb:024_bowl")  # onboarded through the add_object service while running


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (bag, PNGs, logs)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the sample streams play")
    parser.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=sorted(PARTS))
    parser.add_argument("--node-timeout", type=float, default=90.0, help="seconds to wait for nodes to come up")
    parser.set_defaults(func=run)


def _stamp(t: float):
    from pose_perception.ros.conversions import s_to_stamp

    return s_to_stamp(t)


def _prepare_streams(parts: list[str]) -> dict[str, Any]:
    from pose_perception.evaluation.samples import streams

    out = {}
    t0 = time.monotonic()
    if "human" in parts:
        out["human"] = streams.human_stream()
    if "objects" in parts:
        out["objects"] = streams.object_stream(DEMO_OBJECT)
    if "radar" in parts:
        out["radar"] = streams.radar_stream()
    print(f"[demo] sample streams ready in {time.monotonic() - t0:.1f} s", flush=True)
    for s in out.values():
        print(f"[demo]   {s.name}: {s.source}", flush=True)
    return out


def _camera_publishers(node, part: DemoPart, depth: bool):
    from sensor_msgs.msg import CameraInfo, Image

    pubs = {
        "image": node.create_publisher(Image, part.remaps["image"], 10),
        "camera_info": node.create_publisher(CameraInfo, part.remaps["camera_info"], 10),
    }
    if depth:
        pubs["depth"] = node.create_publisher(Image, part.remaps["depth/image"], 10)
    return pubs


def _feed(node, parts: dict[str, DemoPart], streams: dict[str, Any], seconds: float, stop: threading.Event) -> None:
    """Publish every stream at its part's rate for `seconds`: camera clips back and forth, radar looped."""
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Header

    from pose_perception.ros.conversions import radar_points_to_pointcloud2, intrinsics_to_camera_info, numpy_to_image

    feeders: list[tuple[DemoPart, Callable[[int, float], None]]] = []
    for key, part in parts.items():
        stream = streams[key]
        if key in ("human", "objects"):
            pubs = _camera_publishers(node, part, depth=key == "objects")
            frame_id = "demo_people_camera" if key == "human" else "demo_table_camera"
            images = [numpy_to_image(f.rgb, "rgb8") for f in stream.frames]
            depths = (
                [numpy_to_image(f.depth_m.astype(np.float32), "32FC1") for f in stream.frames]
                if key == "objects"
                else None
            )
            info = intrinsics_to_camera_info(stream.intrinsics)

            def feed_camera(k, t, pubs=pubs, images=images, depths=depths, info=info, frame_id=frame_id, stream=stream):
                header = Header(stamp=_stamp(t), frame_id=frame_id)
                i = stream.index_of_publication(k)
                images[i].header = header
                info.header = header
                pubs["image"].publish(images[i])
                pubs["camera_info"].publish(info)
                if depths is not None:
                    depths[i].header = header
                    pubs["depth"].publish(depths[i])

            feeders.append((part, feed_camera))
        else:
            pub = node.create_publisher(PointCloud2, part.remaps["radar/points"], 10)
            clouds = [radar_points_to_pointcloud2(pts) for pts in stream.points]

            def feed_radar(k, t, pub=pub, clouds=clouds):
                msg = clouds[k % len(clouds)]
                msg.header = Header(stamp=_stamp(t), frame_id="demo_radar")
                pub.publish(msg)

            feeders.append((part, feed_radar))

    t_start = time.monotonic()
    next_tick = {part.key: t_start for part, _ in feeders}
    count = {part.key: 0 for part, _ in feeders}
    while not stop.is_set() and time.monotonic() - t_start < seconds:
        now = time.monotonic()
        for part, feed in feeders:
            if now >= next_tick[part.key]:
                t_wall = time.time()
                feed(count[part.key], t_wall)
                part.published[round(t_wall, 6)] = t_wall
                count[part.key] += 1
                next_tick[part.key] += 1.0 / part.rate_hz
        time.sleep(max(0.0, min(next_tick.values()) - time.monotonic()))


def _summarise(parts: dict[str, DemoPart], seconds: float) -> list[dict]:
    rows = []
    for part in parts.values():
        latencies = []
        for t_recv, msg in part.results:
            stamp = round(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 6)
            if stamp in part.published:
                latencies.append(t_recv - part.published[stamp])
        lat = np.array(latencies) * 1e3
        rows.append(
            {
                "node": part.node,
                "frames_in": len(part.published),
                "results_out": len(part.results),
                "rate_hz": len(part.results) / seconds,
                "latency_mean_ms": float(lat.mean()) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "found": _found(part),
            }
        )
    return rows


def _found(part: DemoPart) -> str:
    msgs = [m for _, m in part.results]
    if not msgs:
        return "nothing"
    if part.key == "objects":
        names = {}
        for m in msgs:
            for o in m.objects:
                names.setdefault(f"{o.name}#{o.instance}", []).append(o.score)
        found_in = sum(1 for m in msgs if m.objects)
        return (
            ", ".join(f"{k} in {len(v)}/{len(msgs)} frames (score {np.mean(v):.2f})" for k, v in names.items())
            or f"no object above threshold ({found_in} frames)"
        )
    counts = [len(m.humans) for m in msgs]
    ids = sorted({h.id for m in msgs for h in m.humans})
    return f"up to {max(counts)} people per frame, {len(ids)} track ids"


def _print_table(rows: list[dict]) -> None:
    print()
    print(f"{'node':18} {'frames in':>9} {'results':>8} {'rate Hz':>8} {'mean ms':>8} {'p95 ms':>8}  found")
    for r in rows:
        print(
            f"{r['node']:18} {r['frames_in']:9d} {r['results_out']:8d} {r['rate_hz']:8.1f} "
            f"{r['latency_mean_ms']:8.1f} {r['latency_p95_ms']:8.1f}  {r['found']}"
        )
    print()


def run(args) -> int:
    import rclpy

    from pose_perception.cli.up import Supervisor, build_specs
    from pose_perception.ros.launch_support import node_env
    from pose_perception.ros.executor import BackgroundSpinner
    from pose_perception.ros.process import init_ros
    from pose_perception.ros.bag import OUTPUT_TOPICS, BagRecorder, message_class, read_bag
    from pose_perception.evaluation.samples import pictures

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    bag_dir = out / f"bag_{time.strftime('%Y%m%d_%H%M%S')}"
    parts = {k: PARTS[k] for k in args.parts}
    print(f"[demo] machine: {machine_description()}", flush=True)
    streams = _prepare_streams(list(parts))

    remaps = [f"{p.node}:{src}:={dst}" for p in parts.values() for src, dst in p.remaps.items()]
    # Camera and radar both track people: distinct TF names keep one tree (body_<id> and radar_body_<id>).
    specs = build_specs([p.config for p in parts.values()], remaps, ["radar_pose_node:frame_prefix:=radar_"])
    sup = Supervisor(specs, node_env(), max_restarts=0, log_dir=out / "logs")
    init_ros()
    node = rclpy.create_node("pose_perception_demo")
    recorder = BagRecorder(node, bag_dir, OUTPUT_TOPICS)
    for part in parts.values():
        node.create_subscription(
            message_class(part.result_type),
            part.result_topic,
            lambda msg, part=part: part.results.append((time.time(), msg)),
            50,
        )
    spinner = BackgroundSpinner(node)
    stop = threading.Event()
    code = 0
    try:
        sup.start()
        _wait_until_ready(node, parts, sup, args.node_timeout)
        if "objects" in parts:
            _add_demo_object(node)
        print(f"[demo] streaming for {args.seconds:.0f} s ...", flush=True)
        _feed(node, parts, streams, args.seconds, stop)
        time.sleep(3.0)  # let the last results arrive
    except KeyboardInterrupt:
        stop.set()
        code = 130
    except RuntimeError as exc:
        print(f"[demo] {exc}", flush=True)
        code = 1
    finally:
        recorder.close()
        spinner.stop()
        node.destroy_node()
        rclpy.try_shutdown()
        sup.stop()

    rows = _summarise(parts, args.seconds)
    _print_table(rows)
    pngs = pictures.write_demo_pictures(out, parts, streams)
    n_bag = sum(1 for _ in read_bag(bag_dir))
    print(f"[demo] bag: {bag_dir} ({n_bag} messages, MCAP rosbag2; replay with `pose-perception replay {bag_dir}`)")
    for p in pngs:
        print(f"[demo] picture: {p}")
    print(f"[demo] node logs: {out / 'logs'}")
    if code == 0 and any(r["results_out"] == 0 for r in rows):
        print("[demo] a node produced no results: see its log")
        code = 1
    return code


def _wait_until_ready(node, parts: dict[str, DemoPart], sup, timeout_s: float) -> None:
    """Nodes are ready when they subscribe to their (remapped) inputs, i.e. they are configured and active."""
    deadline = time.monotonic() + timeout_s
    pending = dict(parts)
    while pending:
        for key, part in list(pending.items()):
            topic = next(iter(part.remaps.values()))
            if node.count_subscribers(topic) > 0:
                print(f"[demo] {part.node} is up", flush=True)
                del pending[key]
        if not sup.poll():
            raise RuntimeError("a node exited during start-up: see its log in the output folder")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nodes not up after {timeout_s:.0f} s: {sorted(p.node for p in pending.values())}")
        time.sleep(0.2)


def _add_demo_object(node) -> None:
    """Onboard one more CAD mesh at run time through the node's add_object service."""
    from pose_perception.objects.model import resolve_mesh_path
    from pose_perception_msgs.srv import AddObject

    name, spec = RUNTIME_OBJECT
    client = node.create_client(AddObject, "/object_pose_node/add_object")
    if not client.wait_for_service(timeout_sec=30):
        raise RuntimeError("object_pose_node's add_object service is not available")
    req = AddObject.Request(name=name, mesh_path=str(resolve_mesh_path(spec)), units="m", symmetry="auto")
    future = client.call_async(req)
    deadline = time.monotonic() + 120
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not future.done() or not future.result().success:
        raise RuntimeError(f"add_object failed: {future.result().message if future.done() else 'no reply'}")
    print(f"[demo] object '{name}' onboarded at run time: {future.result().message}", flush=True)
