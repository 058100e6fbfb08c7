"""human_pose_node alone (real ROS 2 installs), e.g. a RealSense with aligned depth under namespace robot1:

    ros2 launch pose_perception human_pose.launch.py namespace:=robot1 use_depth:=true

or a ZED camera: `camera:=zed`; any topics: `image_topic:=... camera_info_topic:=... depth_topic:=...`.
`--show-args` lists every argument; they are defined and checked in pose_perception/ros/launch_support.py."""

from pose_perception.ros.launch_support import launch_description


def generate_launch_description():
    return launch_description(("human_pose_node",), __file__)
