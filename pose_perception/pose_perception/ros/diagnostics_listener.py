"""/diagnostics heard from another process (`pose-perception up`'s hang watchdog): calls on_status(node, message)
for every pipeline status a node publishes."""

from __future__ import annotations

import os
from typing import Callable


class DiagnosticsListener:
    def __init__(self, on_status: Callable[[str, str], None], env: dict):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        from pose_perception.ros.dds import PROFILE_ENV_VARS
        from pose_perception.ros.executor import BackgroundSpinner
        from pose_perception.ros.process import init_ros
        from pose_perception.ros.qos import result_qos

        # the nodes' domain and transport profile, so the supervisor hears them
        os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", *PROFILE_ENV_VARS) if k in env})
        self._rclpy = rclpy
        self.context = rclpy.Context()
        init_ros(context=self.context)
        self.node = rclpy.create_node("pose_perception_up", context=self.context)
        self._on_status = on_status
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, result_qos(50))
        self._spinner = BackgroundSpinner(self.node, self.context)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            node, sep, what = status.name.partition(": ")
            if sep and what == "pipeline":
                self._on_status(node, status.message)

    def close(self) -> None:
        self._spinner.stop()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
