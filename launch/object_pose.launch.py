"""object_pose_node with config/object_pose.yaml (real ROS 2 installs: `ros2 launch pose_perception
object_pose.launch.py`; remap image, depth/image, camera_info to the camera's topics)."""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory("pose_perception"), "config", "object_pose.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=config, description="node parameters"),
        DeclareLaunchArgument("camera", default_value="/camera", description="camera namespace"),
        Node(
            package="pose_perception",
            executable="object_pose_node",
            name="object_pose_node",
            parameters=[LaunchConfiguration("params_file")],
            remappings=[
                ("image", [LaunchConfiguration("camera"), "/color/image_raw"]),
                ("depth/image", [LaunchConfiguration("camera"), "/aligned_depth_to_color/image_raw"]),
                ("camera_info", [LaunchConfiguration("camera"), "/color/camera_info"]),
            ],
            output="screen",
        ),
    ])
