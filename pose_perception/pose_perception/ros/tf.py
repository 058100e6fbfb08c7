"""TF publishing on /tf and /tf_static with tf2_msgs/msg/TFMessage, without tf2_ros (absent from PyPI).

Static frames accumulate: each /tf_static message repeats every static frame sent so far, as tf2 expects
of a transient-local topic whose last message is all a late joiner gets.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from pose_perception.core.frames import T_to_xyz_quat
from pose_perception.ros.qos import result_qos, static_qos

FrameTransform = tuple[str, str, np.ndarray]  # (parent_frame, child_frame, T_parent_child (4, 4))


def transform_msg(stamp: Time, parent: str, child: str, T: np.ndarray) -> TransformStamped:
    xyz, q = T_to_xyz_quat(T)
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in xyz)
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


class TfPublisher:
    """Publishes dynamic transforms on /tf and static ones on /tf_static (transient local)."""

    def __init__(self, node: Node):
        self._pub = node.create_publisher(TFMessage, "/tf", result_qos(100))
        self._static_pub = node.create_publisher(TFMessage, "/tf_static", static_qos())
        self._static: dict[str, TransformStamped] = {}

    def publish(self, stamp: Time, transforms: Iterable[FrameTransform]) -> None:
        msgs = [transform_msg(stamp, p, c, T) for p, c, T in transforms if np.all(np.isfinite(T))]
        if msgs:
            self._pub.publish(TFMessage(transforms=msgs))

    def publish_static(self, stamp: Time, transforms: Sequence[FrameTransform]) -> None:
        for p, c, T in transforms:
            self._static[c] = transform_msg(stamp, p, c, T)
        self._static_pub.publish(TFMessage(transforms=list(self._static.values())))
