"""A small real node used by the base-class integration tests: synchronised RGB-D in, the 3D point at the
image centre out (PointStamped, TF frame `centre_point`, a marker). Exercises every piece of ros/."""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from pose_perception.core.camera import backproject
from pose_perception.core.frames import make_T
from pose_perception.ros.base_node import PerceptionNode, run_node
from pose_perception.ros.conversions import camera_info_to_intrinsics, depth_to_m, image_to_rgb
from pose_perception.ros.markers import marker_array, text_marker
from pose_perception.ros.params import ParamSpec


class DepthSizeMismatch(ValueError):
    pass


class CentreDepthNode(PerceptionNode):
    def __init__(self):
        super().__init__(
            "centre_depth_node",
            [
                ParamSpec(
                    "work_ms", 0.0, "Extra processing time per frame (to test frame dropping).", min=0.0, max=5000.0
                ),
                ParamSpec("slop_s", 0.02, "Synchroniser slop.", min=0.0, max=1.0),
            ],
        )

    def create_inputs(self) -> None:
        self.point_pub = self.result_publisher(PointStamped, "centre_point")
        self.marker_pub = self.result_publisher(MarkerArray, "markers")
        self.synchronise(
            [(Image, "image"), (Image, "depth/image"), (CameraInfo, "camera_info")],
            lambda *msgs: self.submit(msgs),
            slop_s=self.params["slop_s"],
        )

    def process(self, frame) -> None:
        image_msg, depth_msg, info_msg = frame
        rgb = image_to_rgb(image_msg)
        depth_m = depth_to_m(depth_msg)
        intr = camera_info_to_intrinsics(info_msg)
        if depth_m.shape != rgb.shape[:2]:
            raise DepthSizeMismatch(
                f"depth {depth_m.shape[1]}x{depth_m.shape[0]} does not match image "
                f"{rgb.shape[1]}x{rgb.shape[0]}: register depth to colour"
            )
        time.sleep(self.params["work_ms"] / 1000.0)
        v, u = rgb.shape[0] // 2, rgb.shape[1] // 2
        p = backproject(np.array([[u, v]]), np.array([depth_m[v, u]]), intr.K)[0]
        msg = PointStamped(header=image_msg.header)
        msg.point.x, msg.point.y, msg.point.z = (float(x) for x in p)
        self.point_pub.publish(msg)
        self.tf.publish(image_msg.header.stamp, [(image_msg.header.frame_id, "centre_point", make_T(np.eye(3), p))])
        self.marker_pub.publish(marker_array(image_msg.header, [text_marker(image_msg.header, "centre", p, 0)]))


def main(args=None) -> int:
    return run_node(CentreDepthNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
