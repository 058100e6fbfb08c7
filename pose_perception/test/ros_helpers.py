"""Helpers for integration tests: start real nodes as subprocesses and talk to them over real DDS.

Every test run uses its own ROS_DOMAIN_ID and the shipped loopback-only Fast DDS profile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pose_perception.ros.dds import PROFILE_ENV_VARS, set_profile  # noqa: E402

DDS_PROFILE = REPO / "config" / "fastdds_local.xml"


def ros_env(extra: Optional[dict] = None) -> dict:
    """Environment for node subprocesses: same domain as the test process, source tree first on the path."""
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 200))
    set_profile(env, DDS_PROFILE)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["AMENT_PREFIX_PATH"] = env.get("AMENT_PREFIX_PATH") or sys.prefix
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class NodeProcess:
    """A node running in its own process; its output goes to a log file the test can read."""

    def __init__(self, argv: list[str], env: dict):
        self.log = tempfile.NamedTemporaryFile(prefix="node-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_node(
    module: str,
    params_file: Optional[str | Path] = None,
    params: Optional[dict] = None,
    extra_args: tuple[str, ...] = (),
) -> NodeProcess:
    """python -m <module> (or python <script.py>) --ros-args [--params-file F] [-p k:=v ...]"""
    target = [str(REPO / module)] if module.endswith(".py") else ["-m", module]
    argv = [sys.executable, *target, *extra_args, "--ros-args"]
    if params_file:
        argv += ["--params-file", str(params_file)]
    for k, v in (params or {}).items():
        v = str(v).lower() if isinstance(v, bool) else v
        argv += ["-p", f"{k}:={v}"]
    return NodeProcess(argv, ros_env())


class RosClient:
    """An rclpy node in the test process, spinning on a background thread."""

    def __init__(self, name: str = "test_client"):
        import rclpy

        from pose_perception.ros.executor import BackgroundSpinner
        from pose_perception.ros.process import init_ros

        os.environ.update({k: v for k, v in ros_env().items() if k in ("ROS_DOMAIN_ID", *PROFILE_ENV_VARS)})
        self._rclpy = rclpy
        self.context = rclpy.Context()
        init_ros(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._spinner = BackgroundSpinner(self.node, self.context)

    def collect(self, msg_type, topic: str, qos=10) -> list:
        """Subscribe and return the list that received messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def publisher(self, msg_type, topic: str, qos=10):
        return self.node.create_publisher(msg_type, topic, qos)

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0, resend_s: Optional[float] = None):
        """Call a service and return its reply. resend_s: send the request again every resend_s seconds until
        a reply comes, for idempotent requests that are the first to a freshly started node (its reply can be
        lost while discovery is still matching the reply channel, although wait_for_service said ready)."""
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {name} not available")
        deadline = time.monotonic() + timeout_s
        while True:
            future = client.call_async(request)
            attempt_s = min(resend_s or timeout_s, deadline - time.monotonic())
            try:
                wait_for(future.done, attempt_s, f"reply from {name}")
                return future.result()
            except TimeoutError:
                client.remove_pending_request(future)
                if time.monotonic() >= deadline - 1e-3:
                    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for reply from {name}") from None

    def wait_for_subscribers(self, publisher, count: int = 1, timeout_s: float = 20.0) -> None:
        wait_for(lambda: publisher.get_subscription_count() >= count, timeout_s, "subscriber to connect")

    def close(self) -> None:
        self._spinner.stop()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str = "condition", period_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def diagnostics_values(diag_msgs: list, node_name: str) -> dict[str, str]:
    """Key/values of the newest /diagnostics status of node_name."""
    for msg in reversed(diag_msgs):
        for status in msg.status:
            if status.name.startswith(f"{node_name}:"):
                return {kv.key: kv.value for kv in status.values}
    return {}


class RgbdCamera:
    """Publishes frames as an RGB-D camera driver does: `camera_info`, then `image` (rgb8) and `depth/image`
    (16UC1, mm) under one stamp, each frame `period_s` after the last. Every argument of `send` replaces one part
    of the default frame, so a test can send exactly one kind of bad input."""

    def __init__(self, client: RosClient, intrinsics, rgb, depth_m, ns: str = "", frame_id: str = "camera"):
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        prefix = f"{ns}/" if ns else ""
        self.image = client.publisher(Image, f"{prefix}image", qos_profile_sensor_data)
        self.depth = client.publisher(Image, f"{prefix}depth/image", qos_profile_sensor_data)
        self.info = client.publisher(CameraInfo, f"{prefix}camera_info", qos_profile_sensor_data)
        self.intrinsics, self.rgb, self.depth_m, self.frame_id = intrinsics, rgb, depth_m, frame_id
        self.period_s = 0.1
        self.t = time.time()

    def send(
        self,
        rgb=None,
        depth_m=None,
        depth_mm=None,
        image_msg=None,
        depth_msg=None,
        info: bool = True,
        info_msg=None,
        stamp_s: Optional[float] = None,
    ):
        """Publish one frame and return its Header (for topics the test synchronises with it: masks, boxes).
        stamp_s: the frame's stamp; by default period_s after the last one."""
        import numpy as np
        from std_msgs.msg import Header

        from pose_perception.ros.conversions import intrinsics_to_camera_info, numpy_to_image, s_to_stamp

        self.t = self.t + self.period_s if stamp_s is None else stamp_s
        header = Header(stamp=s_to_stamp(self.t), frame_id=self.frame_id)
        if info:
            ci = info_msg or intrinsics_to_camera_info(self.intrinsics)
            ci.header = header
            self.info.publish(ci)
            time.sleep(0.02)  # camera_info is not synchronised with the images: let it arrive first
        if depth_mm is None:
            depth_m = self.depth_m if depth_m is None else depth_m
            depth_mm = np.nan_to_num(np.asarray(depth_m) * 1000.0, nan=0.0, posinf=0.0).astype(np.uint16)
        im = image_msg or numpy_to_image(self.rgb if rgb is None else rgb, "rgb8")
        dm = depth_msg or numpy_to_image(depth_mm, "16UC1")
        im.header = dm.header = header
        self.image.publish(im)
        self.depth.publish(dm)
        return header
