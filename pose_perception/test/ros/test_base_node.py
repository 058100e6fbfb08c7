"""A real node built on PerceptionNode, in its own process, over real DDS with the shipped profile:
synchronised inputs, results, TF, diagnostics, frame dropping, and bad input that never stops it."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.ros.conversions import numpy_to_image
from ros_helpers import RgbdCamera, diagnostics_values, start_node, wait_for

NODE = "test/ros/centre_depth_node.py"
INTR = CameraIntrinsics(K=np.array([[100.0, 0, 16], [0, 100, 12], [0, 0, 1]]), width=32, height=24)


def centre_camera(client) -> RgbdCamera:
    """The centre-depth node's camera: a black 32x24 image over a flat 1.5 m depth."""
    return RgbdCamera(client, INTR, np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 1.5))


def test_node_processes_synchronised_frames_publishes_tf_and_survives_bad_input(client):
    points = client.collect(PointStamped, "centre_point")
    tf = client.collect(TFMessage, "/tf", 100)
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(NODE)
    try:
        feeder = centre_camera(client)
        client.wait_for_subscribers(feeder.image, timeout_s=30)
        wait_for(lambda: (feeder.send(), points)[1], 30, "first centre point")
        p = points[-1].point
        assert p.z == pytest.approx(1.5) and abs(p.x) < 0.02 and abs(p.y) < 0.02
        wait_for(lambda: tf, 5, "/tf")
        assert tf[-1].transforms[0].child_frame_id == "centre_point"
        assert tf[-1].transforms[0].header.frame_id == "camera"

        # Every kind of bad input, then a good frame: the node must answer the good one.
        bad_step = numpy_to_image(np.zeros((24, 32, 3), np.uint8), "rgb8")
        bad_step.step = 10
        truncated = numpy_to_image(np.zeros((24, 32, 3), np.uint8), "rgb8")
        truncated.data = bytes(truncated.data[:100])
        unknown = numpy_to_image(np.zeros((24, 32, 3), np.uint8), "rgb8")
        unknown.encoding = "bayer_weird8"
        for kwargs in (
            dict(image_msg=bad_step),
            dict(image_msg=truncated),
            dict(image_msg=unknown),
            dict(depth_mm=np.full((12, 16), 1000, np.uint16)),  # depth of the wrong size
            dict(info_msg=CameraInfo(width=32, height=24)),
        ):  # uncalibrated camera_info
            feeder.send(**kwargs)
            time.sleep(0.15)
        n_before = len(points)
        wait_for(
            lambda: (feeder.send(depth_mm=np.full((24, 32), 2000, np.uint16)), len(points) > n_before)[1],
            15,
            "a result after bad input",
        )
        assert points[-1].point.z == pytest.approx(2.0)
        assert node.alive()

        values = wait_for(
            lambda: (lambda v: v if int(v.get("errors", 0)) >= 5 and int(v["frames_processed"]) >= 2 else None)(
                diagnostics_values(diags, "centre_depth_node")
            ),
            10,
            "errors and results counted in /diagnostics",
        )
        assert float(values["latency_mean_ms"]) > 0
        log = node.output()
        assert "step" in log and "register depth to colour" in log and "uncalibrated" in log
    finally:
        assert node.stop() == 0, node.output()


def test_slow_pipeline_drops_old_frames_instead_of_queueing(client):
    points = client.collect(PointStamped, "centre_point")
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(NODE, params={"work_ms": 300.0})
    try:
        feeder = centre_camera(client)
        client.wait_for_subscribers(feeder.image, timeout_s=30)
        wait_for(lambda: (feeder.send(), points)[1], 30, "first centre point")
        for _ in range(30):  # 20 Hz for 1.5 s into a 3 Hz pipeline
            feeder.send()
            time.sleep(0.05)
        values = wait_for(
            lambda: (lambda v: v if int(v.get("frames_dropped", 0)) >= 10 else None)(
                diagnostics_values(diags, "centre_depth_node")
            ),
            10,
            "dropped frames in /diagnostics",
        )
        assert int(values["frames_processed"]) < int(values["frames_in"])
    finally:
        node.stop()


def test_out_of_range_parameter_is_refused_with_a_message():
    node = start_node(NODE, params={"diagnostics_period_s": -1.0})
    wait_for(lambda: not node.alive(), 20, "node to refuse its parameters")
    assert node.proc.returncode == 2
    assert "diagnostics_period_s" in node.output() and "minimum" in node.output()


def test_lifecycle_manager_drives_configure_activate_deactivate(client):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    points = client.collect(PointStamped, "centre_point")
    node = start_node(NODE, params={"autostart": False})
    try:
        state = client.call(GetState, "/centre_depth_node/get_state", GetState.Request(), timeout_s=30, resend_s=3)
        assert state.current_state.label == "unconfigured"
        feeder = centre_camera(client)
        for _ in range(5):  # nobody is subscribed yet: an unconfigured node does not consume input
            feeder.send()
            time.sleep(0.05)
        assert feeder.image.get_subscription_count() == 0 and not points
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            req = ChangeState.Request()
            req.transition.id = transition
            assert client.call(ChangeState, "/centre_depth_node/change_state", req).success
        client.wait_for_subscribers(feeder.image, timeout_s=20)
        wait_for(lambda: (feeder.send(), points)[1], 20, "result once active")
        req = ChangeState.Request()
        req.transition.id = Transition.TRANSITION_DEACTIVATE
        assert client.call(ChangeState, "/centre_depth_node/change_state", req).success
        wait_for(lambda: feeder.image.get_subscription_count() == 0, 10, "inputs released on deactivate")
    finally:
        assert node.stop() == 0, node.output()
