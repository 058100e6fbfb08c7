"""A Foxglove WebSocket client connects to the bridge, sees our topics advertised with ros2msg schemas,
subscribes, and receives the CDR bytes of a HumanArray published on the ROS graph."""

import asyncio
import json
import struct

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from std_msgs.msg import Header

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose
from pose_perception.ros.bag import message_class
from pose_perception.ros.conversions import humans_to_msg
from pose_perception.ros.foxglove_bridge import FoxgloveBridge
from ros_helpers import RosClient, wait_for

websockets = pytest.importorskip("websockets")


def test_foxglove_client_receives_ros_messages():
    HumanArray = message_class("pose_perception_msgs/msg/HumanArray")
    client = RosClient("foxglove_test_publisher")
    pub = client.publisher(HumanArray, "/humans")
    bridge = FoxgloveBridge(port=0, topics=["/humans"], discovery_period_s=0.2)
    bridge.start()
    try:
        wait_for(lambda: pub.get_subscription_count() > 0, 20, "bridge to subscribe")
        human = HumanPose(
            track_id=9, score=0.7, keypoints_uv=np.zeros((133, 2), np.float32), confidence=np.ones(133, np.float32)
        )
        msg = humans_to_msg(Header(frame_id="camera"), [human], COCO_WHOLEBODY_133)

        async def session():
            async with websockets.connect(f"ws://127.0.0.1:{bridge.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
                channel = None
                while channel is None:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame.get("op") == "advertise":
                        channel = next((c for c in frame["channels"] if c["topic"] == "/humans"), None)
                assert channel["schemaName"] == "pose_perception_msgs/msg/HumanArray"
                assert channel["schemaEncoding"] == "ros2msg" and channel["encoding"] == "cdr"
                assert "Human[] humans" in channel["schema"]
                await ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 1, "channelId": channel["id"]}]}))
                for _ in range(100):
                    pub.publish(msg)
                    try:
                        data = await asyncio.wait_for(ws.recv(), 0.2)
                    except asyncio.TimeoutError:
                        continue
                    if isinstance(data, bytes) and data[0] == 1:  # MessageData: op, sub id, log time, payload
                        sub_id, _ = struct.unpack_from("<IQ", data, 1)
                        return sub_id, data[13:]
                raise AssertionError("no message data received")

        sub_id, payload = asyncio.run(session())
        assert sub_id == 1
        assert deserialize_message(payload, HumanArray).humans[0].id == 9
    finally:
        bridge.stop()
        client.close()


def test_foxglove_bridge_refuses_foreign_web_origins():
    """A page on another site gets 403 from the bridge; a native client, the Foxglove web app and an added origin get
    the SDK's serverInfo."""
    from websockets.exceptions import InvalidStatus

    bridge = FoxgloveBridge(
        port=0,
        topics=["/nothing"],
        discovery_period_s=5.0,
        allowed_origins=["https://app.foxglove.dev", "http://localhost:8080"],
    )
    bridge.start()
    try:
        url = f"ws://127.0.0.1:{bridge.port}"

        async def server_op(origin):
            async with websockets.connect(url, origin=origin, subprotocols=["foxglove.sdk.v1"], open_timeout=10) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))["op"]

        for origin in (None, "https://app.foxglove.dev", "http://localhost:8080"):
            assert asyncio.run(server_op(origin)) == "serverInfo", origin
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(server_op("https://evil.example"))
        assert refused.value.response.status_code == 403
        assert bridge.gate.refused == 1
        # The SDK's own port, found by a port scan, speaks TLS with a certificate no browser trusts.
        with pytest.raises(Exception):  # noqa: B017 - whichever the TLS handshake raises: no connection
            asyncio.run(
                asyncio.wait_for(
                    websockets.connect(
                        f"ws://127.0.0.1:{bridge.upstream_port}", origin="https://evil.example", open_timeout=5
                    ),
                    10,
                )
            )
    finally:
        bridge.stop()
