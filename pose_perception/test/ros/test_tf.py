"""TF over real DDS: /tf carries the genuine tf2_msgs/msg/TFMessage type; /tf_static reaches late joiners."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from tf2_msgs.msg import TFMessage

from pose_perception.core.frames import make_T
from pose_perception.ros.qos import static_qos
from pose_perception.ros.tf import TfPublisher, transform_msg
from ros_helpers import RosClient, wait_for


@pytest.fixture
def two_clients():
    a, b = RosClient("tf_publisher_side"), RosClient("tf_listener_side")
    yield a, b
    a.close()
    b.close()


def test_transform_message_carries_translation_and_ros_quaternion():
    Rz90 = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    msg = transform_msg(Time(sec=3), "camera", "body_1", make_T(Rz90, [1.0, 2.0, 3.0]))
    t, q = msg.transform.translation, msg.transform.rotation
    assert (t.x, t.y, t.z) == (1.0, 2.0, 3.0)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    assert (msg.header.frame_id, msg.child_frame_id) == ("camera", "body_1")


def test_tf_round_trip_and_static_frames_for_late_joiners(two_clients):
    pub_side, sub_side = two_clients
    tf = TfPublisher(pub_side.node)
    dynamic = sub_side.collect(TFMessage, "/tf", 100)
    wait_for(lambda: tf._pub.get_subscription_count() > 0, 20, "/tf subscriber")
    stamp = pub_side.node.get_clock().now().to_msg()
    tf.publish_static(stamp, [("base_link", "camera", make_T(np.eye(3), [0.1, 0, 1.2]))])
    tf.publish_static(stamp, [("base_link", "radar", make_T(np.eye(3), [0.2, 0, 0.9]))])
    wait_for(
        lambda: (tf.publish(stamp, [("camera", "body_3", make_T(np.eye(3), [0, 0, 2.0]))]), dynamic)[1],
        10,
        "/tf message",
    )
    assert dynamic[-1].transforms[0].child_frame_id == "body_3"
    # A transform with NaN is never sent.
    tf.publish(stamp, [("camera", "body_4", np.full((4, 4), np.nan))])
    types = dict(sub_side.node.get_topic_names_and_types())
    assert types["/tf"] == ["tf2_msgs/msg/TFMessage"]
    # A subscriber that joins after the static frames were sent still receives both of them.
    late = sub_side.collect(TFMessage, "/tf_static", static_qos())
    wait_for(lambda: late, 10, "latched /tf_static")
    assert sorted(t.child_frame_id for t in late[-1].transforms) == ["camera", "radar"]
    assert all(t.child_frame_id != "body_4" for m in dynamic for t in m.transforms)
