"""radar_pose_node alone (real ROS 2 installs), e.g. with the TI mmWave driver:

    ros2 launch pose_perception radar_pose.launch.py cloud_topic:=/ti_mmwave/radar_scan_pcl axes:=ti

`--show-args` lists every argument; they are defined and checked in pose_perception/ros/launch_support.py.
Without the launch package: `python -m pose_perception.ros.radar_pose_node --ros-args --params-file
config/radar_pose.yaml`."""

from pose_perception.ros.launch_support import launch_description


def generate_launch_description():
    return launch_description(("radar_pose_node",), __file__)
