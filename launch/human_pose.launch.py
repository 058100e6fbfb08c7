"""human_pose_node alone with config/human_pose.yaml (real ROS 2 installs: `ros2 launch pose_perception
human_pose.launch.py`; remap image / camera_info / depth/image to your camera's topics)."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description():
    params = os.path.join(get_package_share_directory("pose_perception"), "config", "human_pose.yaml")
    return LaunchDescription([
        Node(package="pose_perception", executable="human_pose_node", name="human_pose_node",
             parameters=[params], output="screen"),
    ])
