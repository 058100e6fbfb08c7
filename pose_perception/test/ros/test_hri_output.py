"""ROS4HRI output of human_pose_node: the 2D skeleton / ROI mapping and REP-155 frames (human/hri.py), the hri_msgs
types built here, and over real DDS an hri_msgs client sees every tracked person: /humans/bodies/tracked, per-body
skeleton2d and roi, face_<id> / gaze_<id> and joint frames parented to body_<id>."""

import time

import numpy as np
import pytest
from tf2_msgs.msg import TFMessage

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.frames import make_T
from pose_perception.core.keypoints import COCO_WHOLEBODY_133 as LAYOUT
from pose_perception.core.types import HumanPose
from pose_perception.human.hri import R_FACE_GAZE, rep155_frames, roi_normalized, skeleton18_normalized
from pose_perception.ros.conversions import pose_to_T
from pose_perception.evaluation.samples.photos import one_person_frame
from ros_helpers import RgbdCamera, start_node, wait_for

W, H = 640, 480


def person():
    uv = np.full((133, 2), np.nan, np.float32)
    conf = np.zeros(133, np.float32)
    pts = np.full((133, 3), np.nan, np.float32)
    for i, name in enumerate(("nose", "left_shoulder", "right_shoulder", "left_wrist", "left_hip", "right_hip")):
        k = LAYOUT.index(name)
        uv[k] = (100 + 10 * i, 200 + 5 * i)
        conf[k] = 0.9
        pts[k] = (0.1 * i, 0.0, 2.0)
    T_body = make_T(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]).T, np.array([0.0, 0.3, 2.0]))
    T_head = make_T(np.eye(3), np.array([0.0, -0.5, 2.0]))
    return HumanPose(
        track_id=7,
        score=0.8,
        keypoints_uv=uv,
        confidence=conf,
        keypoints_3d=pts,
        bbox_xyxy=np.array([-20.0, 100.0, 300.0, 500.0]),
        T_sensor_body=T_body,
        T_sensor_head=T_head,
    )


def test_skeleton18_roi_and_rep155_frames():
    h = person()
    sk = skeleton18_normalized(h, LAYOUT, W, H)
    assert sk.shape == (18, 3)
    assert np.allclose(sk[0], (100 / W, 200 / H, 0.9))  # NOSE
    assert np.allclose(sk[1, :2], ((110 + 120) / 2 / W, (205 + 210) / 2 / H))  # NECK: mid-shoulders
    assert np.allclose(sk[7, :2], (130 / W, 215 / H))  # LEFT_WRIST
    assert np.all(sk[3] == 0)  # RIGHT_ELBOW unknown
    assert roi_normalized(h.bbox_xyxy, W, H) == pytest.approx((0.0, 100 / H, 300 / W, 1.0))
    assert roi_normalized(np.array([np.nan] * 4), W, H) is None
    frames = {child: (parent, T) for parent, child, T in rep155_frames(h, LAYOUT, "cam", "7")}
    assert frames["face_7"][0] == "cam" and np.allclose(frames["face_7"][1], h.T_sensor_head)
    parent, T_face_gaze = frames["gaze_7"]
    assert parent == "face_7" and np.allclose(T_face_gaze[:3, :3], R_FACE_GAZE)
    # gaze z = face x (no gaze estimate), x right = -face y, y down = -face z, right-handed
    assert np.allclose(R_FACE_GAZE[:, 2], [1, 0, 0]) and np.allclose(R_FACE_GAZE[:, 0], [0, -1, 0])
    assert np.linalg.det(R_FACE_GAZE) == pytest.approx(1.0)
    parent, T_body_wrist = frames["l_wrist_7"]
    assert parent == "body_7"
    wrist_sensor = h.T_sensor_body @ T_body_wrist
    assert np.allclose(wrist_sensor[:3, 3], h.keypoints_3d[LAYOUT.index("left_wrist")], atol=1e-6)
    assert "torso_7" in frames and "r_wrist_7" not in frames  # unknown joints are not published


@pytest.mark.timeout(180)
def test_hri_client_sees_every_tracked_person_over_dds(client):
    from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D, Skeleton2D
    from pose_perception_msgs.msg import HumanArray

    ns = "/hri_test"
    tracked = client.collect(IdsList, f"{ns}/humans/bodies/tracked")
    faces = client.collect(IdsList, f"{ns}/humans/faces/tracked")
    humans = client.collect(HumanArray, f"{ns}/humans")
    tf = client.collect(TFMessage, "/tf", 100)
    cam = RgbdCamera(
        client,
        CameraIntrinsics.default_for_size(W, H),
        one_person_frame(W, H),
        np.full((H, W), 2.0),
        ns=ns,
        frame_id="camera_color_optical_frame",
    )

    def send():
        cam.send()
        time.sleep(0.2)

    node = start_node(
        "pose_perception.ros.human_pose_node",
        params={"use_depth": True, "hri_output": True, "search_period": 1000},
        extra_args=("--ros-args", "-r", f"__ns:={ns}"),
    )
    try:
        client.wait_for_subscribers(cam.image, timeout_s=60)
        wait_for(
            lambda: (
                send(),
                any(m.ids for m in tracked) and any(m.humans and m.humans[0].has_root_pose for m in humans),
            )[1],
            60,
            "a tracked body",
        )
        for _ in range(3):
            send()
        bid = next(m for m in tracked if m.ids).ids[0]
        # the ids an hri client lists are those of the people on `humans`, frame by frame
        by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in humans}
        for m in tracked:
            h = by_stamp.get((m.header.stamp.sec, m.header.stamp.nanosec))
            if h is not None:
                assert sorted(m.ids) == sorted(f"h{p.id}" for p in h.humans)
        skel = client.collect(Skeleton2D, f"{ns}/humans/bodies/{bid}/skeleton2d")
        roi = client.collect(NormalizedRegionOfInterest2D, f"{ns}/humans/bodies/{bid}/roi")
        wait_for(lambda: (send(), skel and roi)[1], 30, "skeleton2d and roi of the tracked body")
        s = skel[-1]
        assert len(s.skeleton) == 18 and s.skeleton[Skeleton2D.NOSE].c > 0.3
        assert all(0.0 <= p.x <= 1.0 and 0.0 <= p.y <= 1.0 for p in s.skeleton)
        r = roi[-1]
        assert 0.0 <= r.xmin < r.xmax <= 1.0 and 0.0 <= r.ymin < r.ymax <= 1.0
        nose = s.skeleton[Skeleton2D.NOSE]
        assert r.xmin <= nose.x <= r.xmax and r.ymin <= nose.y <= r.ymax
        children = {tr.child_frame_id: tr.header.frame_id for m in tf for tr in m.transforms}
        assert children.get(f"body_{bid}") == "camera_color_optical_frame"
        assert children.get(f"l_shoulder_{bid}") == f"body_{bid}" and children.get(f"torso_{bid}") == f"body_{bid}"
        assert children.get(f"face_{bid}") == "camera_color_optical_frame"
        assert children.get(f"gaze_{bid}") == f"face_{bid}"
        assert any(bid in m.ids for m in faces)
        # quiet start-up: MediaPipe's TFLite / absl chatter is filtered out of the node's output (core/quiet.py)
        out = node.output()
        assert "XNNPACK" not in out and "inference_feedback_manager" not in out and "absl::InitializeLog" not in out
        gaze = next(tr for m in tf for tr in m.transforms if tr.child_frame_id == f"gaze_{bid}")
        assert np.allclose(pose_to_T_tf(gaze)[:3, :3], R_FACE_GAZE, atol=1e-6)
    finally:
        node.stop()


def pose_to_T_tf(tr):
    from geometry_msgs.msg import Pose

    p = Pose()
    p.position.x, p.position.y, p.position.z = (
        tr.transform.translation.x,
        tr.transform.translation.y,
        tr.transform.translation.z,
    )
    p.orientation = tr.transform.rotation
    return pose_to_T(p)
