"""radar_pose_node over real DDS: one frame stamped 1000 s ahead, 5 s behind or 0.5 s ahead is refused on its own,
the next frame is answered and the person keeps its id; a cloud with the wrong is_bigendian flag is refused with
the fix, one whose point_step is shorter than its fields with the byte ranges; each fault leaves OK on /diagnostics
and the person keeps its id."""

import re
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import PointCloud2

from pose_perception.evaluation.radar import simulator as sim
from pose_perception.evaluation.radar.training import random_sequence
from pose_perception.ros.qos import input_qos
from ros_helpers import start_node, wait_for
from test_radar_pose_node import to_cloud

pytestmark = pytest.mark.timeout(180)


def test_stamp_jumps_and_byte_order_keep_ids(client):
    from pose_perception_msgs.msg import HumanArray

    humans = client.collect(HumanArray, "radar/humans")
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(
        "pose_perception.ros.radar_pose_node",
        params={"device": "cpu", "error_throttle_s": 0.0, "input_qos": "reliable", "health_window_s": 30.0},
    )
    try:
        pub = client.publisher(PointCloud2, "radar/points", input_qos("reliable"))
        client.wait_for_subscribers(pub, timeout_s=60)
        frames = random_sequence(
            np.random.default_rng(7), sim.load_skeleton(), [sim.load_clip("humanoid3d_walk")], 400, allow_mirror=False
        )
        state = {"k": 0}

        def send(offset_s=0.0, swap=False, short_step=False):
            k = state["k"]
            msg = to_cloud(frames[k % len(frames)][0], time.time() + offset_s)
            if swap:
                msg.data = np.frombuffer(bytes(msg.data), np.float32).byteswap().tobytes()
            if short_step:  # a driver that declares 4 bytes less per point than its fields take
                msg.point_step -= 4
                msg.row_step = msg.point_step * msg.width
                msg.data = bytes(msg.data)[: msg.row_step]
            pub.publish(msg)
            state["k"] += 1
            time.sleep(0.05)

        def ids():
            return [h.id for m in humans[-3:] for h in m.humans]

        wait_for(lambda: (send(), len(humans) > 20 and ids())[1], 60, "a tracked person")
        for _ in range(10):
            send()
        person = max(set(ids()), key=ids().count)
        for offset, expected in (
            (1000.0, "ahead of what its arrival implies"),
            (-5.0, "behind what its arrival"),
            (0.5, "ahead of what its arrival implies"),
        ):
            send(offset)
            n = len(humans)
            for _ in range(5):
                send()
            wait_for(lambda: len(humans) >= n + 3, 10, "answers right after the jump")
            assert person in ids(), (offset, ids())
            assert expected in node.output()
        send(swap=True)
        wait_for(lambda: "publisher wrote big-endian" in node.output(), 10, "the byte-order refusal")
        status = wait_for(
            lambda: next((s for m in reversed(diags) for s in m.status if s.name.startswith("radar_pose_node:")), None),
            10,
            "diagnostics",
        )
        assert status.level != DiagnosticStatus.OK
        for _ in range(5):
            send()
        wait_for(lambda: person in ids(), 10, "the same person after the bad cloud")
        send(short_step=True)
        wait_for(lambda: "beyond point_step" in node.output(), 10, "the point_step refusal")
        for _ in range(5):
            send()
        wait_for(lambda: person in ids(), 10, "the same person after the short point_step")
        status = wait_for(
            lambda: next(
                (
                    s
                    for m in reversed(diags[-3:])
                    for s in m.status
                    if s.name.startswith("radar_pose_node:") and "point_step" in s.message
                ),
                None,
            ),
            10,
            "the point_step refusal on /diagnostics",
        )
        # Every refusal above is an error; how many still lie in the 10 s window depends on the machine's speed.
        errors = re.search(r"(\d+) errors in the last", status.message)
        assert status.level != DiagnosticStatus.OK and errors and int(errors.group(1)) >= 1, status.message
    finally:
        node.stop()
        print(node.output()[-3000:])


def test_overlapping_fields_and_fields_past_point_step_are_refused():
    from sensor_msgs.msg import PointField

    from pose_perception.ros.conversions import PointCloudConversionError, pointcloud2_to_array

    msg = to_cloud(np.zeros((4, 5), np.float32), 1.0)
    msg.fields[1].offset = 2  # y overlaps x
    with pytest.raises(PointCloudConversionError, match="'x' .* and 'y' .* overlap"):
        pointcloud2_to_array(msg)
    msg = to_cloud(np.zeros((4, 5), np.float32), 1.0)
    msg.fields.append(PointField(name="extra", offset=20, datatype=PointField.FLOAT32, count=1))
    with pytest.raises(PointCloudConversionError, match="'extra' ends at byte 24, beyond point_step 20"):
        pointcloud2_to_array(msg)
