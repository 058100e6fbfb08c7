"""Recording to MCAP and replaying into live topics, with our own interfaces in the bag."""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose
from pose_perception.ros.bag import BagError, BagPlayer, BagRecorder, message_class, parse_remaps, read_bag
from pose_perception.ros.conversions import humans_to_msg, numpy_to_image
from ros_helpers import wait_for


def _humans_msg():
    h = HumanPose(
        track_id=3, score=0.5, keypoints_uv=np.ones((133, 2), np.float32), confidence=np.ones(133, np.float32)
    )
    return humans_to_msg(Header(frame_id="camera"), [h], COCO_WHOLEBODY_133)


def test_record_then_replay_with_remap(client, tmp_path):
    HumanArray = message_class("pose_perception_msgs/msg/HumanArray")
    bag = tmp_path / "bag"
    recorder = BagRecorder(
        client.node, bag, {"/humans": "pose_perception_msgs/msg/HumanArray", "/cam/image": "sensor_msgs/msg/Image"}
    )
    pub_h = client.publisher(HumanArray, "/humans")
    pub_i = client.publisher(Image, "/cam/image")
    wait_for(lambda: pub_h.get_subscription_count() and pub_i.get_subscription_count(), 20, "recorder to subscribe")
    for _ in range(5):
        pub_h.publish(_humans_msg())
        pub_i.publish(numpy_to_image(np.full((4, 4, 3), 7, np.uint8), "rgb8"))
    wait_for(lambda: recorder.counts["/humans"] == 5 and recorder.counts["/cam/image"] == 5, 10, "recording")
    recorder.close()
    assert list(bag.glob("*.mcap")) and (bag / "metadata.yaml").exists()

    records = list(read_bag(bag))
    assert len(records) == 10
    topic, type_name, _, raw = next(r for r in records if r[0] == "/humans")
    assert deserialize_message(raw, HumanArray).humans[0].id == 3

    received = client.collect(Image, "/replayed/image")
    player = BagPlayer(client.node, bag, parse_remaps(["/cam/image:=/replayed/image"]), rate=5.0, topics=["/cam/image"])
    counts = player.play(wait_for_subscribers_s=1.0)
    assert counts == {"/replayed/image": 5}
    wait_for(lambda: len(received) == 5, 10, "replayed images")
    assert bytes(received[0].data)[:3] == b"\x07\x07\x07"


def test_bad_bag_paths_and_remaps(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        list(read_bag(tmp_path / "nope"))
    (tmp_path / "junk").mkdir()
    with pytest.raises(BagError, match="cannot read"):
        list(read_bag(tmp_path / "junk"))
    with pytest.raises(BagError, match="FROM:=TO"):
        parse_remaps(["/a/b"])
    with pytest.raises(BagError, match="not available"):
        message_class("nope_msgs/msg/Thing")
