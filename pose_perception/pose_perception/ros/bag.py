"""rosbag2 recording and playback without ros2cli/rosbag2 (absent from PyPI): rclpy raw (serialised)
subscriptions and publishers, files written and read by `rosbags` (MCAP or sqlite3, rosbag2 format)."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from rclpy.node import Node
from rclpy.qos import QoSProfile

from pose_perception.ros.qos import input_qos, static_qos

# What `pose-perception record` and the demo record by default: every output of the three nodes.
OUTPUT_TOPICS: dict[str, str] = {
    "/humans": "pose_perception_msgs/msg/HumanArray",
    "/human_markers": "visualization_msgs/msg/MarkerArray",
    "/objects": "pose_perception_msgs/msg/ObjectPoseArray",
    "/object_markers": "visualization_msgs/msg/MarkerArray",
    "/radar/humans": "pose_perception_msgs/msg/HumanArray",
    "/radar/markers": "visualization_msgs/msg/MarkerArray",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


class BagError(ValueError):
    pass


def message_class(type_name: str):
    """'pkg/msg/Type' -> the rclpy message class (the package must be importable)."""
    try:
        pkg, kind, name = type_name.split("/")
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise BagError(f"message type '{type_name}' is not available here: {exc}") from exc


def typestore():
    """rosbags Jazzy typestore plus this package's own interfaces (read from their .msg files)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = _interface_dir()
    types = {}
    for f in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"pose_perception_msgs/msg/{f.stem}"))
    store.register(types)
    return store


def _interface_dir() -> Path:
    source = Path(__file__).resolve().parents[3] / "pose_perception_msgs" / "msg"  # the sibling package folder
    if source.is_dir():
        return source
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("pose_perception_msgs")) / "msg"


def _qos_for(topic: str) -> QoSProfile:
    # Best effort matches reliable and best-effort publishers alike; /tf_static needs transient local.
    return static_qos() if topic == "/tf_static" else input_qos("sensor_data", depth=50)


class BagRecorder:
    """Records the given topics from a node into a rosbag2 directory (MCAP by default)."""

    def __init__(self, node: Node, path: str | Path, topics: Optional[dict[str, str]] = None, storage: str = "mcap"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag '{self.path}' already exists: choose another output path")
        self._store = typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._closed = False
        for topic, type_name in (topics or OUTPUT_TOPICS).items():
            conn = self._writer.add_connection(topic, type_name, typestore=self._store)
            node.create_subscription(
                message_class(type_name), topic, self._make_cb(topic, conn), _qos_for(topic), raw=True
            )
            self.counts[topic] = 0

    def _make_cb(self, topic, conn):
        def cb(data: bytes):
            with self._lock:
                if not self._closed:
                    self._writer.write(conn, time.time_ns(), data)
                    self.counts[topic] += 1

        return cb

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()


def read_bag(path: str | Path, topics: Optional[Iterable[str]] = None):
    """Yield (topic, type_name, timestamp_ns, raw CDR bytes) in time order from a .mcap/.db3 rosbag2."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    bag_dir = (
        path.parent
        if path.is_file() and path.suffix in (".mcap", ".db3") and (path.parent / "metadata.yaml").exists()
        else path
    )
    if not bag_dir.exists():
        raise BagError(f"bag '{path}' does not exist")
    try:
        reader = AnyReader([bag_dir], default_typestore=typestore())
        reader.open()
    except Exception as exc:
        raise BagError(f"cannot read bag '{path}': {exc}") from exc
    try:
        wanted = set(topics) if topics else None
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, t_ns, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, t_ns, raw
    finally:
        reader.close()


class BagPlayer:
    """Publishes a bag's messages with their recorded timing (scaled by rate), topics remapped as asked."""

    def __init__(
        self,
        node: Node,
        path: str | Path,
        remaps: Optional[dict[str, str]] = None,
        rate: float = 1.0,
        topics: Optional[Iterable[str]] = None,
    ):
        if rate <= 0:
            raise BagError("playback rate must be positive")
        self.node, self.path, self.rate = node, path, rate
        self.remaps = remaps or {}
        self.topics = list(topics) if topics else None
        self._pubs: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def _publisher(self, topic: str, type_name: str):
        if topic not in self._pubs:
            out = self.remaps.get(topic, topic)
            qos = static_qos() if out == "/tf_static" else QoSProfile(depth=50)
            self._pubs[topic] = self.node.create_publisher(message_class(type_name), out, qos)
            self.counts[out] = 0
        return self._pubs[topic]

    def play(self, wait_for_subscribers_s: float = 2.0) -> dict[str, int]:
        t0_bag = t0_wall = None
        for topic, type_name, t_ns, raw in read_bag(self.path, self.topics):
            pub = self._publisher(topic, type_name)
            if t0_bag is None:
                time.sleep(wait_for_subscribers_s)  # discovery
                t0_bag, t0_wall = t_ns, time.monotonic()
            delay = t0_wall + (t_ns - t0_bag) * 1e-9 / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pub.publish(raw)
            self.counts[self.remaps.get(topic, topic)] += 1
        return self.counts


def parse_remaps(items: Iterable[str]) -> dict[str, str]:
    remaps = {}
    for item in items:
        if ":=" not in item:
            raise BagError(f"remap '{item}' must look like FROM:=TO")
        src, dst = item.split(":=", 1)
        remaps[src] = dst
    return remaps


def replay_bag(
    bag: str | Path, remaps: dict[str, str], rate: float = 1.0, topics: Optional[Iterable[str]] = None
) -> dict[str, int]:
    """`pose-perception replay`: play `bag` into the live topics from a node of its own (ROS started and shut
    down here) -> messages published per topic. Raises BagError for a bag it cannot play."""
    import rclpy

    from pose_perception.ros.process import init_ros

    init_ros()
    node = rclpy.create_node("pose_perception_replay")
    try:
        return BagPlayer(node, bag, remaps, rate, topics).play()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def record_bag(
    out: str | Path,
    topics: dict[str, str],
    storage: str,
    stop: threading.Event,
    duration_s: float = 0.0,
    on_recording=None,
) -> dict[str, int]:
    """`pose-perception record`: record `topics` (name -> pkg/msg/Type) to `out` until `stop` is set, Ctrl-C, or
    duration_s (0: no limit) -> messages recorded per topic. on_recording() is called once the recorder listens.
    Raises BagError for a bag it cannot write."""
    import rclpy

    from pose_perception.ros.executor import BackgroundSpinner
    from pose_perception.ros.process import init_ros

    init_ros()
    node = rclpy.create_node("pose_perception_record")
    try:
        recorder = BagRecorder(node, out, topics, storage)
    except BagError:
        node.destroy_node()
        rclpy.try_shutdown()
        raise
    spinner = BackgroundSpinner(node)
    if on_recording is not None:
        on_recording()
    try:
        stop.wait(duration_s if duration_s > 0 else None)
    except KeyboardInterrupt:
        pass
    finally:
        spinner.stop()
        recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return dict(recorder.counts)
