"""Depth that parses but lies (all 0, all NaN / inf, saturated 65535 mm): the human node publishes the person in
2D only with the same track id, never at a guessed or 65 m distance, logs why and leaves OK on /diagnostics."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from ros_helpers import start_node, wait_for
from test_human_pose_node import NODE, H, W, photo_camera

from pose_perception.ros.conversions import numpy_to_image

pytestmark = pytest.mark.timeout(240)


def test_invalid_depth_gives_no_3d_same_id_and_a_warning(client):
    from pose_perception_msgs.msg import HumanArray

    humans = client.collect(HumanArray, "humans")
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(
        NODE, params={"use_depth": True, "search_period": 1000, "error_throttle_s": 0.0, "health_window_s": 3.0}
    )
    try:
        cam = photo_camera(client)
        client.wait_for_subscribers(cam.image, timeout_s=60)

        def newest(pred):
            return next((m.humans[0] for m in reversed(humans[-5:]) if m.humans and pred(m.humans[0])), None)

        has_3d = lambda h: len(h.keypoints_3d) == 133 and h.has_root_pose  # noqa: E731
        person = wait_for(lambda: (cam.send(), time.sleep(0.2), newest(has_3d))[2], 90, "a person in 3D at 2 m")
        assert np.nanmedian([p.z for p in person.keypoints_3d[:7]]) == pytest.approx(2.0, abs=0.15)
        for label, kwargs in (
            ("all zero", dict(depth_mm=np.zeros((H, W), np.uint16))),
            ("saturated 65535 mm", dict(depth_mm=np.full((H, W), 65535, np.uint16))),
            ("all NaN", dict(depth_msg=numpy_to_image(np.full((H, W), np.nan, np.float32), "32FC1"))),
            ("all inf", dict(depth_msg=numpy_to_image(np.full((H, W), np.inf, np.float32), "32FC1"))),
        ):
            n = len(humans)
            flat = wait_for(
                lambda: (cam.send(**kwargs), time.sleep(0.2), len(humans) > n + 2 and newest(lambda h: not has_3d(h)))[
                    2
                ],
                30,
                f"a 2D-only person for {label} depth",
            )
            assert flat.id == person.id, label
            assert len(flat.keypoints_3d) == 0 and not flat.has_root_pose and flat.source == 0, label
            assert all(len(h.keypoints_3d) == 0 for m in humans[n + 2 :] for h in m.humans), label
            assert "depth frame unusable" in node.output(), label
        status = wait_for(
            lambda: next((s for m in reversed(diags) for s in m.status if s.name.startswith("human_pose_node:")), None),
            10,
            "diagnostics",
        )
        assert (
            status.level in (DiagnosticStatus.WARN, DiagnosticStatus.ERROR) and "depth frame unusable" in status.message
        )
        again = wait_for(lambda: (cam.send(), time.sleep(0.2), newest(has_3d))[2], 30, "3D again with good depth")
        assert again.id == person.id
        assert np.nanmedian([p.z for p in again.keypoints_3d[:7]]) == pytest.approx(2.0, abs=0.15)
    finally:
        rc = node.stop()
    assert rc == 0, node.output()[-3000:]
