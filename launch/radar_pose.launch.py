"""radar_pose_node with config/radar_pose.yaml (real ROS 2 installs: `ros2 launch pose_perception
radar_pose.launch.py cloud_topic:=/ti_mmwave/radar_scan_pcl`). Without the launch package:
`python -m pose_perception.ros.radar_pose_node --ros-args --params-file config/radar_pose.yaml`."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    params_file = os.path.join(get_package_share_directory("pose_perception"), "config", "radar_pose.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("cloud_topic", default_value="radar/points", description="radar PointCloud2 topic"),
        DeclareLaunchArgument("axes", default_value="rep103", description="rep103 or ti (TI native axes)"),
        Node(
            package="pose_perception",
            executable="radar_pose_node",
            name="radar_pose_node",
            parameters=[params_file, {"cloud_topic": LaunchConfiguration("cloud_topic"),
                                      "axes": LaunchConfiguration("axes")}],
            output="screen",
        ),
    ])
