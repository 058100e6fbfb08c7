"""Drive one node process over real DDS for benchmarks (`bench onboarding`, `bench soak`): start it, feed it a
sample stream at a fixed rate, record when each output arrives and how old it is, and sample the node's RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pose_perception.core.memory import rss_bytes

NODE_OUTPUTS = {"human_pose_node": "humans", "object_pose_node": "objects", "radar_pose_node": "radar/humans"}


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(f'"{v}"' for v in value) + "]"
    return str(value)


class NodeProcess:
    """A node started like `pose-perception up` starts it (same module, DDS profile and environment)."""

    def __init__(
        self, node_name: str, params: dict[str, Any], log_path: Path, env: dict, params_file: Optional[Path] = None
    ):
        from pose_perception.ros.launch_support import NODE_MODULES

        argv = [sys.executable, "-m", NODE_MODULES[node_name], "--ros-args", "-r", f"__node:={node_name}"]
        if params_file is not None:
            argv += ["--params-file", str(params_file)]
        for k, v in params.items():
            argv += ["-p", f"{k}:={_param_text(v)}"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        try:
            return rss_bytes(self.proc.pid) / 1e6
        except ProcessLookupError:
            return float("nan")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def harness_env() -> dict:
    """The environment of node and harness: up's (shipped DDS profile) on a domain of this run's own."""
    from pose_perception.ros.launch_support import node_env

    env = node_env()
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Harness:
    """An rclpy node in this process that feeds one stream and records one node's outputs.

    outputs: (receive wall time s, latency s = receive time - header stamp, items in the message)."""

    def __init__(self, node_name: str, env: dict):
        import rclpy

        from pose_perception.ros.dds import PROFILE_ENV_VARS
        from pose_perception.ros.executor import BackgroundSpinner
        from pose_perception.ros.process import init_ros

        os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", *PROFILE_ENV_VARS) if k in env})
        self._rclpy = rclpy
        self.context = rclpy.Context()
        init_ros(context=self.context)
        self.node = rclpy.create_node("bench_harness", context=self.context)
        self.outputs: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()
        msg_type = self._output_type(node_name)
        self.node.create_subscription(msg_type, NODE_OUTPUTS[node_name], self._on_output, 10)
        from diagnostic_msgs.msg import DiagnosticArray

        self.diagnostics: dict[str, str] = {}  # the node's newest pipeline status: level, message and values
        self._node_name = node_name
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._spinner = BackgroundSpinner(self.node, self.context)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @staticmethod
    def _output_type(node_name: str):
        if node_name == "object_pose_node":
            from pose_perception_msgs.msg import ObjectPoseArray

            return ObjectPoseArray
        from pose_perception_msgs.msg import HumanArray

        return HumanArray

    def _on_output(self, msg) -> None:
        from pose_perception.ros.conversions import stamp_to_s

        now = time.time()
        items = len(msg.objects) if hasattr(msg, "objects") else len(msg.humans)
        with self._lock:
            self.outputs.append((now, now - stamp_to_s(msg.header.stamp), items))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == f"{self._node_name}: pipeline":
                values = {kv.key: kv.value for kv in status.values}
                values.update(
                    level=str(status.level[0] if isinstance(status.level, bytes) else status.level),
                    message=status.message,
                )
                with self._lock:
                    self.diagnostics = values

    def outputs_between(self, t0: float, t1: float) -> list[tuple[float, float, int]]:
        with self._lock:
            return [o for o in self.outputs if t0 <= o[0] < t1]

    def feed(self, node_name: str, rate_hz: float) -> None:
        """Publish the node's sample stream (samples.streams) at rate_hz on a thread until stop()."""
        publish = self._camera_feeder(node_name) if node_name != "radar_pose_node" else self._radar_feeder()

        def loop():
            k, t_next = 0, time.monotonic()
            while not self._stop.is_set():
                publish(k, time.time())
                k += 1
                t_next += 1.0 / rate_hz
                time.sleep(max(0.0, t_next - time.monotonic()))

        self._thread = threading.Thread(target=loop, name="feeder", daemon=True)
        self._thread.start()

    def _camera_feeder(self, node_name: str):
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header

        from pose_perception.ros.conversions import intrinsics_to_camera_info, numpy_to_image, s_to_stamp
        from pose_perception.evaluation.samples import streams

        depth = node_name == "object_pose_node"
        stream = streams.object_stream(n_frames=30, fps=30.0) if depth else streams.human_stream()
        images = [numpy_to_image(f.rgb, "rgb8") for f in stream.frames]
        depths = []
        for f in stream.frames if depth else []:
            if f.depth_m is None:
                raise ValueError("the object sample stream gave a frame without depth")
            depths.append(numpy_to_image(f.depth_m.astype(np.float32), "32FC1"))
        info = intrinsics_to_camera_info(stream.intrinsics)
        pub_image = self.node.create_publisher(Image, "image", 10)
        pub_info = self.node.create_publisher(CameraInfo, "camera_info", 10)
        pub_depth = self.node.create_publisher(Image, "depth/image", 10) if depth else None

        def publish(k: int, t: float) -> None:
            header = Header(stamp=s_to_stamp(t), frame_id="bench_camera")
            i = stream.index_of_publication(k)
            images[i].header = info.header = header
            pub_info.publish(info)
            pub_image.publish(images[i])
            if pub_depth is not None:
                depths[i].header = header
                pub_depth.publish(depths[i])

        return publish

    def _radar_feeder(self):
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import Header

        from pose_perception.ros.conversions import radar_points_to_pointcloud2, s_to_stamp
        from pose_perception.evaluation.samples import streams

        stream = streams.radar_stream()
        clouds = [radar_points_to_pointcloud2(pts) for pts in stream.points]
        pub = self.node.create_publisher(PointCloud2, "radar/points", 10)

        def publish(k: int, t: float) -> None:
            # back and forth through the clip: looping would make every person jump back to the start
            n = len(clouds)
            i = k % (2 * n - 2)
            msg = clouds[i if i < n else 2 * n - 2 - i]
            msg.header = Header(stamp=s_to_stamp(t), frame_id="bench_radar")
            pub.publish(msg)

        return publish

    def call(self, srv_type, name: str, request, timeout_s: float):
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=30):
            raise TimeoutError(f"service {name} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not future.done():
            raise TimeoutError(f"no reply from {name} in {timeout_s:.0f} s")
        return future.result()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._spinner.stop()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
