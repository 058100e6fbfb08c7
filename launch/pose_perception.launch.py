"""All three perception nodes with the shipped parameter files (real ROS 2 installs: `ros2 launch
pose_perception pose_perception.launch.py`). Without the launch package: `pose-perception up`."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

NODES = (
    ("human", "human_pose_node", "human_pose.yaml"),
    ("objects", "object_pose_node", "object_pose.yaml"),
    ("radar", "radar_pose_node", "radar_pose.yaml"),
)


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("pose_perception"), "config")
    actions = []
    for flag, executable, params_file in NODES:
        actions.append(DeclareLaunchArgument(flag, default_value="true", description=f"start {executable}"))
        actions.append(Node(
            package="pose_perception",
            executable=executable,
            name=executable,
            parameters=[os.path.join(config_dir, params_file)],
            condition=IfCondition(LaunchConfiguration(flag)),
            output="screen",
        ))
    return LaunchDescription(actions)
