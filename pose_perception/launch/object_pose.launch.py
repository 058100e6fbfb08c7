"""object_pose_node alone (real ROS 2 installs), e.g. a RealSense with aligned depth:

    ros2 launch pose_perception object_pose.launch.py namespace:=robot1 params_file:=my_objects.yaml

or a ZED camera: `camera:=zed`; any topics: `image_topic:=... camera_info_topic:=... depth_topic:=...`.
`--show-args` lists every argument; they are defined and checked in pose_perception/ros/launch_support.py."""

from pose_perception.ros.launch_support import launch_description


def generate_launch_description():
    return launch_description(("object_pose_node",), __file__)
