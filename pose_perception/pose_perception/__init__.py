"""pose_perception: 3D whole-body human pose and unseen-object 6D pose for ROS 2.

Algorithms live in core/, human/, objects/ and radar/ (ROS-free); ros/ is the only place importing rclpy.
"""

__version__ = "0.1.0"
