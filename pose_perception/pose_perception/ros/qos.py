"""QoS presets: sensor inputs best-effort (configurable), results reliable, static TF transient-local."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

INPUT_QOS_NAMES = ("sensor_data", "reliable")


def input_qos(name: str = "sensor_data", depth: int = 5) -> QoSProfile:
    """QoS for sensor subscriptions. 'sensor_data' (best effort) matches camera drivers; 'reliable' matches
    rosbag2 playback and publishers that insist on reliability."""
    if name == "sensor_data":
        profile = QoSProfile(
            **{k: getattr(qos_profile_sensor_data, k) for k in ("history", "reliability", "durability")}, depth=depth
        )
        return profile
    if name == "reliable":
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
    raise ValueError(f"unknown input QoS '{name}'; use one of {INPUT_QOS_NAMES}")


def result_qos(depth: int = 10) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def static_qos() -> QoSProfile:
    """/tf_static: late joiners get the last message (tf2's own static broadcaster uses the same)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
