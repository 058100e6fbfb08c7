"""Live Foxglove view: every ROS topic of the graph re-served on a Foxglove WebSocket (ros2msg + CDR), so
images, markers and TF show in Foxglove without foxglove_bridge or rosbridge (absent from PyPI).

Clients reach the SDK server only through `core/origin_gate.py`, which refuses web pages whose Origin is not allowed
(the SDK itself accepts any Origin, so any page open in a browser on the robot could read every topic)."""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional

from pose_perception.core.origin_gate import DEFAULT_ALLOWED_ORIGINS, OriginGate, OriginGateError, self_signed_tls
from pose_perception.ros.bag import message_class, typestore


class FoxgloveBridge:
    """Discovers topics every `discovery_period_s` and forwards their raw CDR bytes unchanged.

    allowed_origins: web origins allowed besides native clients (no Origin header); default the Foxglove web app."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        topics: Optional[Iterable[str]] = None,
        discovery_period_s: float = 1.0,
        allowed_origins: Iterable[str] = DEFAULT_ALLOWED_ORIGINS,
    ):
        self.host, self.port = host, port
        self.allowed_origins = tuple(allowed_origins)
        self.only = set(topics) if topics else None
        self.discovery_period_s = discovery_period_s
        self.forwarded: dict[str, int] = {}
        self._channels: dict[str, Any] = {}
        self._spinner: Any = None  # ros.executor.BackgroundSpinner once started

    def start(self) -> None:
        import foxglove
        import rclpy

        from pose_perception.ros.executor import BackgroundSpinner
        from pose_perception.ros.process import init_ros

        self._store = typestore()
        self._context = rclpy.Context()
        init_ros(context=self._context)
        self._node = rclpy.create_node("foxglove_bridge", context=self._context)
        # The SDK server on an ephemeral loopback port, TLS-only so that a page scanning ports cannot use it; the gate
        # owns the public host:port.
        try:
            cert: Optional[bytes]
            key: Optional[bytes]
            cert, key = self_signed_tls()
        except OriginGateError as exc:
            print(
                f"[foxglove] WARNING: {exc}; the SDK's own loopback port accepts plain ws:// from any page", flush=True
            )
            cert = key = None
        self._server = foxglove.start_server(
            name="pose_perception", host="127.0.0.1", port=0, tls_cert=cert, tls_key=key
        )
        self.upstream_port = self._server.port
        self.gate = OriginGate(
            "127.0.0.1", self.upstream_port, self.host, self.port, self.allowed_origins, upstream_tls_cert=cert
        )
        try:
            self.port = self.gate.start()
        except Exception:
            self._server.stop()
            raise
        self._node.create_timer(self.discovery_period_s, self._discover)
        self._discover()
        self._spinner = BackgroundSpinner(self._node, self._context)
        print(
            f"[foxglove] serving on ws://{self.host}:{self.port} (web origins allowed: "
            f"{', '.join(self.allowed_origins) or 'none'})",
            flush=True,
        )

    def _discover(self) -> None:
        import foxglove

        from pose_perception.ros.bag import _qos_for

        for topic, types in self._node.get_topic_names_and_types():
            if topic in self._channels or (self.only is not None and topic not in self.only) or not types:
                continue
            type_name = types[0]
            try:
                msgdef, _ = self._store.generate_msgdef(type_name, ros_version=2)
                msg_cls = message_class(type_name)
            except Exception:  # noqa: BLE001 - a type we cannot describe is skipped, others keep flowing
                self._channels[topic] = None
                continue
            schema = foxglove.Schema(name=type_name, encoding="ros2msg", data=msgdef.encode())
            channel = foxglove.Channel(topic, schema=schema, message_encoding="cdr")
            self._channels[topic] = channel
            self.forwarded[topic] = 0
            self._node.create_subscription(msg_cls, topic, self._make_cb(topic, channel), _qos_for(topic), raw=True)

    def _make_cb(self, topic, channel):
        def cb(data: bytes):
            channel.log(bytes(data), log_time=time.time_ns())
            self.forwarded[topic] += 1

        return cb

    def stop(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
        self.gate.stop()
        self._server.stop()
        self._node.destroy_node()
        import rclpy

        rclpy.try_shutdown(context=self._context)
