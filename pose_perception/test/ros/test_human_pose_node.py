"""human_pose_node in its own process over real DDS: a real photo in, tracked people out as HumanArray,
markers, TF (body_<id>, head_<id>, joint frames), debug image and per-stage diagnostics
missing camera_info
gives 2D only
every kind of bad input is reported and the node keeps serving."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.ros.conversions import intrinsics_to_camera_info, numpy_to_image
from pose_perception.evaluation.samples.photos import one_person_frame
from ros_helpers import RgbdCamera, diagnostics_values, start_node, wait_for

NODE = "pose_perception.ros.human_pose_node"
W, H = 640, 480
INTR = CameraIntrinsics.default_for_size(W, H)


def photo_camera(client, rgb=None) -> RgbdCamera:
    """A photo (the astronaut by default) as an RGB-D camera would publish it (depth: a SYNTHETIC flat 2 m plane)."""
    rgb = one_person_frame(W, H) if rgb is None else rgb
    return RgbdCamera(client, INTR, rgb, np.full((H, W), 2.0), frame_id="camera_color_optical_frame")


def test_node_publishes_people_frames_and_survives_bad_input(client):
    from pose_perception_msgs.msg import HumanArray

    humans = client.collect(HumanArray, "humans")
    markers = client.collect(MarkerArray, "human_markers")
    debug = client.collect(Image, "debug/image")
    tf = client.collect(TFMessage, "/tf", 100)
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(
        NODE,
        params={
            "use_depth": True,
            "debug_image": True,
            "joint_frames": "nose,left_shoulder",
            "search_period": 1000,
            "error_throttle_s": 0.0,
        },
    )
    try:
        cam = photo_camera(client)
        client.wait_for_subscribers(cam.image, timeout_s=60)

        # No camera_info yet: people come out in 2D only (after the tracker's 3 confirming frames).
        def people():
            return [m for m in humans if m.humans]

        wait_for(lambda: (cam.send(info=False), time.sleep(0.25), people())[2], 60, "a person without camera_info")
        m = people()[-1]
        assert m.layout == "coco_wholebody_133" and len(m.keypoint_names) == 133
        assert len(m.humans) == 1 and len(m.humans[0].keypoints_3d) == 0 and len(m.humans[0].keypoints_uv) == 266
        assert "no camera_info" in node.output()

        # With camera_info and depth: 3D at the depth of the (synthetic) 2 m plane, frames on /tf.
        def with_3d():
            return [
                m for m in humans if m.humans and len(m.humans[0].keypoints_3d) == 133 and m.humans[0].has_root_pose
            ]

        wait_for(lambda: (cam.send(), time.sleep(0.25), with_3d())[2], 40, "a person in 3D")
        h = with_3d()[-1].humans[0]
        z = np.array([p.z for p in h.keypoints_3d[:7]])
        assert np.nanmedian(z) == pytest.approx(2.0, abs=0.15)
        assert h.source == 1 and h.id >= 1
        assert with_3d()[-1].header.frame_id == "camera_color_optical_frame"
        children = wait_for(
            lambda: (
                {t.child_frame_id for m in tf for t in m.transforms} >= {f"body_{h.id}", f"nose_{h.id}"}
                and {t.child_frame_id for m in tf for t in m.transforms}
            ),
            10,
            "body and joint frames",
        )
        assert f"head_{h.id}" in children
        # markers and debug/image follow humans from the same frame; they may arrive a little later.
        wait_for(lambda: any(mk.type == mk.LINE_LIST for ma in markers for mk in ma.markers), 10, "skeleton markers")
        wait_for(lambda: debug, 10, "debug image")
        assert debug[-1].width == W and debug[-1].encoding == "rgb8"
        stages = wait_for(
            lambda: (
                diagnostics_values(diags, "human_pose_node")
                and any(s.name.endswith("/stages") for d in diags for s in d.status)
            ),
            10,
            "stage timings",
        )
        assert stages
        stage_keys = {kv.key for d in diags for s in d.status if s.name.endswith("/stages") for kv in s.values}
        assert {"proposals_mean_ms", "keypoints_mean_ms", "lifting_mean_ms", "total_p95_ms"} <= stage_keys

        # Bad input of every kind; the node logs each and keeps serving.
        bad_step = numpy_to_image(cam.rgb, "rgb8")
        bad_step.step = 10
        weird = numpy_to_image(cam.rgb, "rgb8")
        weird.encoding = "bayer_weird8"
        tiny = numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
        nan_depth = numpy_to_image(np.full((H, W), np.nan, np.float32), "32FC1")
        bad_depth_enc = numpy_to_image(np.zeros((H, W, 3), np.uint8), "rgb8")
        # Each bad input is resent until the node has reported it (the latest-frame worker may drop some).
        for kwargs, expected in (
            (dict(image_msg=bad_step), "image step 10"),
            (dict(image_msg=weird), "bayer_weird8"),
            (dict(depth_mm=np.full((240, 320), 2000, np.uint16)), "register depth to colour"),
            (dict(depth_msg=bad_depth_enc), "depth encoding must be"),
            (dict(info_msg=CameraInfo(width=W, height=H)), "uncalibrated"),
            (
                dict(info_msg=intrinsics_to_camera_info(CameraIntrinsics.default_for_size(320, 240))),
                "camera_info is for 320x240",
            ),
            (dict(image_msg=tiny), None),
            (dict(depth_msg=nan_depth), None),
        ):
            if expected is None:
                cam.send(**kwargs)
                time.sleep(0.5)
            else:
                wait_for(
                    lambda: (cam.send(**kwargs), time.sleep(0.3), expected in node.output())[2],
                    30,
                    f"'{expected}' to be reported",
                )
            assert node.alive(), node.output()[-3000:]
        n = len(with_3d())
        try:
            wait_for(lambda: (cam.send(), time.sleep(0.25), len(with_3d()) > n)[2], 30, "3D people after bad input")
        except TimeoutError:
            last = humans[-1]
            raise AssertionError(
                f"{[(len(h.keypoints_3d), h.has_root_pose) for h in last.humans]} {node.output()[-2500:]}"
            ) from None
        errors = int(diagnostics_values(diags, "human_pose_node").get("errors", "0"))
        assert errors >= 5
    finally:
        rc = node.stop()
    assert rc == 0, node.output()[-3000:]


def test_bad_parameters_are_refused_at_start():
    node = start_node(NODE, params={"max_people": 0})
    try:
        wait_for(lambda: not node.alive(), 30, "node to exit")
    finally:
        node.stop()
    assert "max_people" in node.output() and "minimum" in node.output()


def test_unknown_joint_frame_and_missing_onnx_model_fail_configure_clearly(client):
    node = start_node(NODE, params={"backend": "onnx", "model_path": "/nonexistent/rtmw-l.onnx"})
    try:
        wait_for(lambda: "configure failed" in node.output(), 40, "configure to fail")
        assert "does not exist" in node.output() and node.alive()
    finally:
        node.stop()


def has_mesh_fitter():
    import importlib.util

    return importlib.util.find_spec("pose_perception.human.body_mesh") is not None


@pytest.mark.skipif(not has_mesh_fitter(), reason="body mesh fitter (area mesh) not merged")
def test_meshes_arrive_without_holding_up_skeletons(client):
    from pose_perception_msgs.msg import HumanArray

    humans = client.collect(HumanArray, "humans")
    markers = client.collect(MarkerArray, "human_markers")
    node = start_node(NODE, params={"mesh": True, "mesh_rate_hz": 1.0, "search_period": 1000})
    try:
        import cv2
        from skimage import data

        # The cameraman stands with his hips in view (the astronaut's are out of frame: no body to fit).
        cam = photo_camera(
            client,
            np.pad(
                cv2.resize(np.repeat(data.camera()[:, :, None], 3, axis=2), (H, H)),
                ((0, 0), (80, 80), (0, 0)),
                constant_values=114,
            ),
        )
        client.wait_for_subscribers(cam.image, timeout_s=60)
        wait_for(
            lambda: (cam.send(), time.sleep(0.25), any(h.has_mesh for m in humans for h in m.humans))[2],
            120,
            "a person with a mesh",
        )
        with_mesh = [h for m in humans for h in m.humans if h.has_mesh]
        assert len(with_mesh[-1].mesh.vertices) > 100 and len(with_mesh[-1].mesh.triangles) > 100
        wait_for(lambda: any(mk.type == mk.TRIANGLE_LIST for ma in markers for mk in ma.markers), 10, "mesh marker")
        # Skeleton messages outnumber mesh fits: meshes come at mesh_rate_hz on their own thread.
        assert sum(1 for m in humans if m.humans) > 0
    finally:
        rc = node.stop()
    assert rc == 0, node.output()[-3000:]


def test_shipped_parameter_file_configures_and_activates_the_node():
    from ros_helpers import REPO

    node = start_node(NODE, params_file=REPO / "config" / "human_pose.yaml")
    try:
        wait_for(lambda: "]: active" in node.output() or not node.alive(), 60, "node to activate")
        assert node.alive() and "]: active" in node.output(), node.output()[-2000:]
    finally:
        assert node.stop() == 0, node.output()[-3000:]
