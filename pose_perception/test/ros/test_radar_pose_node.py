"""radar_pose_node in its own process over real DDS: SYNTHETIC radar clouds of a simulated person in, HumanArray
(source radar, body 17 of COCO-WholeBody filled), markers, TF body_<id> and /diagnostics out; every kind of bad
cloud is refused with a counted error and the node keeps serving."""

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from pose_perception.core.keypoints import pelvis
from pose_perception.evaluation.radar import simulator as sim
from pose_perception.evaluation.radar.training import random_sequence
from pose_perception.ros.conversions import array_to_pointcloud2, s_to_stamp
from pose_perception.ros.qos import input_qos
from ros_helpers import REPO, diagnostics_values, start_node, wait_for

POINT_DTYPE = np.dtype(
    [("x", np.float32), ("y", np.float32), ("z", np.float32), ("velocity", np.float32), ("intensity", np.float32)]
)


def to_cloud(points: np.ndarray, stamp_s: float, dtype=POINT_DTYPE) -> PointCloud2:
    arr = np.zeros(len(points), dtype)
    for i, name in enumerate(dtype.names):
        arr[name] = points[:, i]
    return array_to_pointcloud2(arr, Header(stamp=s_to_stamp(stamp_s), frame_id="radar"))


def test_radar_node_tracks_a_simulated_person_and_survives_bad_clouds(client):
    from pose_perception_msgs.msg import Human, HumanArray

    humans = client.collect(HumanArray, "radar/humans")
    markers = client.collect(MarkerArray, "radar/markers")
    tf = client.collect(TFMessage, "/tf", 100)
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(
        "pose_perception.ros.radar_pose_node",
        params_file=REPO / "config" / "radar_pose.yaml",
        params={"device": "cpu", "error_throttle_s": 0.0, "input_qos": "reliable", "frame_prefix": "radar_"},
    )
    try:
        # Reliable: a 2 MB best-effort cloud can be dropped by DDS before the node sees it, and this test wants
        # the node to receive (and refuse) it.
        pub = client.publisher(PointCloud2, "radar/points", input_qos("reliable"))
        client.wait_for_subscribers(pub, timeout_s=60)
        rng = np.random.default_rng(7)
        frames = random_sequence(
            rng, sim.load_skeleton(), [sim.load_clip("humanoid3d_spinkick")], 60, allow_mirror=False
        )
        t0 = time.time()

        def send(k: int, points=None, stamp=None, dtype=POINT_DTYPE, pause_s=0.05):
            pts = frames[k % len(frames)][0] if points is None else points
            pub.publish(to_cloud(pts, t0 + k * 0.05 if stamp is None else stamp, dtype))
            time.sleep(pause_s)

        def with_people():
            return [m for m in humans if m.humans]

        k = 0
        while not with_people() and k < 60:
            send(k)
            k += 1
        wait_for(with_people, 10, "a HumanArray with a person")
        msg = with_people()[-1]
        assert msg.layout == "coco_wholebody_133" and len(msg.keypoint_names) == 133
        assert msg.header.frame_id == "radar"
        h = msg.humans[0]
        assert h.source == Human.SOURCE_RADAR and len(h.keypoints_3d) == 133 and len(h.confidence) == 133
        body = np.array([[p.x, p.y, p.z] for p in h.keypoints_3d[:17]])
        assert np.all(np.isfinite(body)) and all(np.isnan(p.x) for p in h.keypoints_3d[17:])
        truth = frames[(k - 1) % len(frames)][2][0]
        assert np.linalg.norm(pelvis(body)[:2] - pelvis(truth)[:2]) < 0.5

        def body_tf_seen():
            return any(t.child_frame_id.startswith("radar_body_") for m in tf for t in m.transforms)

        # A track's TF may first come with a later frame than its first HumanArray: keep the stream going.
        deadline = time.monotonic() + 20.0
        while not body_tf_seen() and time.monotonic() < deadline:
            send(k)
            k += 1
        wait_for(body_tf_seen, 5, "TF radar_body_<id> (frame_prefix radar_)")
        assert markers and markers[-1].markers[0].action == 3  # DELETEALL first

        # Bad clouds: empty, all NaN/inf, missing z, 100k points, a stamp from the past.
        good_id = h.id
        n_err = int(diagnostics_values(diags, "radar_pose_node").get("errors", "0"))
        no_z = np.dtype([("x", np.float32), ("y", np.float32), ("velocity", np.float32), ("snr", np.float32)])
        bad = [
            dict(points=np.zeros((0, 5), np.float32)),
            dict(points=np.full((50, 5), np.nan, np.float32)),
            dict(points=np.column_stack([np.full((50, 1), np.inf), np.ones((50, 4))]).astype(np.float32)),
            dict(points=np.ones((30, 4), np.float32), dtype=no_z),
            dict(points=np.random.default_rng(0).normal(size=(100_000, 5)).astype(np.float32)),
            dict(stamp=t0 + (k - 5) * 0.05),
        ]
        for kw in bad:
            # Paused so the latest-frame worker takes every bad cloud instead of dropping it for a newer one.
            send(k, pause_s=0.5, **kw)
            k += 1 if "stamp" not in kw else 0
        assert node.alive()
        wait_for(
            lambda: int(diagnostics_values(diags, "radar_pose_node").get("errors", "0")) >= n_err + 3,
            10,
            "errors counted in /diagnostics",
        )
        n_before = len(with_people())
        for _ in range(20):
            send(k)
            k += 1
        wait_for(lambda: len(with_people()) > n_before, 10, "people again after bad clouds")
        assert node.alive()
        log = node.output()
        assert "max_points" in log and "no field 'z'" in log and "behind what its arrival implies" in log
        assert any(p.id == good_id for p in with_people()[-1].humans)  # the track survived the bad clouds
    finally:
        node.stop()
        print(node.output()[-4000:])  # shown by pytest when the test fails
