"""All three perception nodes (real ROS 2 installs), e.g. on a robot with a RealSense (realsense-ros 4.5x,
`align_depth.enable:=true`) and a TI mmWave radar:

    ros2 launch pose_perception pose_perception.launch.py namespace:=robot1 \
        params_file:=my_params.yaml use_sim_time:=false camera:=realsense radar:=false

`ros2 launch pose_perception pose_perception.launch.py --show-args` lists every argument. The arguments, their
checks and the nodes they give are in pose_perception/ros/launch_support.py (tested without `launch`). Without the
launch package: `pose-perception up`."""

from pose_perception.ros.launch_support import launch_description


def generate_launch_description():
    return launch_description(("human_pose_node", "object_pose_node", "radar_pose_node"), __file__)
