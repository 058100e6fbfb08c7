"""launch_support: the launch files' arguments, checks and nodes, without the `launch` package. The parameter-file
key matching is checked against rclpy's own (rcl), and a node started with the arguments launch_ros would give it
(namespace, the shipped parameter file, remapped camera topics) loads its objects and listens where it should."""

import sys
import tempfile
import textwrap

import pytest
import rclpy
from rclpy.node import Node

from pose_perception.ros.launch_support import (
    CAMERAS,
    LaunchArgumentError,
    arguments,
    command_line_arguments,
    key_applies,
    node_specs,
)
from ros_helpers import NodeProcess, ros_env, wait_for

ALL = ("human_pose_node", "object_pose_node", "radar_pose_node")


def params_file(text: str) -> str:
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(textwrap.dedent(text))
    f.close()
    return f.name


def test_defaults_follow_realsense_4_5x_and_the_ti_driver():
    specs = {s.name: s for s in node_specs(ALL, {})}
    assert set(specs) == set(ALL)
    human = dict(specs["human_pose_node"].remappings)
    assert human == {
        "image": "/camera/camera/color/image_raw",
        "camera_info": "/camera/camera/color/camera_info",
        "depth/image": "/camera/camera/aligned_depth_to_color/image_raw",
    }
    assert specs["radar_pose_node"].parameters[-1]["cloud_topic"] == "/ti_mmwave/radar_scan_pcl"
    for s in specs.values():
        assert s.namespace == "" and s.parameters[-1]["use_sim_time"] is False
        assert s.parameters[0].endswith(f"config/{s.name.replace('_node', '')}.yaml")


def test_namespace_camera_topics_and_sim_time():
    [spec] = node_specs(
        ("object_pose_node",),
        {
            "namespace": "robot1",
            "camera": "zed",
            "use_sim_time": "True",
            "depth_topic": "/zed/zed_node/depth/depth_raw",
        },
    )
    assert spec.namespace == "/robot1" and spec.parameters[-1]["use_sim_time"] is True
    remaps = dict(spec.remappings)
    assert remaps["image"] == CAMERAS["zed"]["image"]
    assert remaps["depth/image"] == "/zed/zed_node/depth/depth_raw"
    argv = spec.ros_args()
    assert argv[:3] == ["--ros-args", "-r", "__node:=object_pose_node"] and "__ns:=/robot1" in argv


def test_node_flags_start_only_the_nodes_asked_for():
    names = [s.name for s in node_specs(ALL, {"radar": "false", "human": "False"})]
    assert names == ["object_pose_node"]
    with pytest.raises(LaunchArgumentError, match="no node to start"):
        node_specs(ALL, {"radar": "false", "human": "false", "objects": "false"})


@pytest.mark.parametrize(
    "values,given,match",
    [
        ({"namespace": "robot1/"}, (), r"'namespace' = 'robot1/' ends with '/': give 'robot1'"),
        ({"namespace": "robot 1"}, (), r"'namespace' = 'robot 1'"),
        ({"namespace": "2robot"}, (), r"'namespace'"),
        ({}, ("namespace", "namspace"), r"unknown launch argument 'namspace': did you mean 'namespace'\?"),
        ({}, ("cloud_topic",), r"unknown launch argument 'cloud_topic'"),  # object_pose.launch.py has no radar
        ({"use_sim_time": "yes"}, (), r"'use_sim_time' = 'yes' must be true or false"),
        ({"image_topic": "/camera/"}, (), r"'image_topic' = '/camera/' is not a valid topic name"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(values, given, match):
    with pytest.raises(LaunchArgumentError, match=match):
        node_specs(("object_pose_node",), values, given)


def test_params_file_is_checked_against_the_nodes_declarations():
    good = params_file("""
        /**/object_pose_node:
          ros__parameters:
            score_threshold: 0.5
            redetect_period_s: 3
            use_sim_time: false
        /**/radar_pose_node:
          ros__parameters: {mesh: true}
        """)
    specs = node_specs(ALL, {"params_file": good, "namespace": "robot1"})
    assert all(s.parameters[1] == good for s in specs)  # after the shipped file: it overrides
    cases = [
        (
            "/**/object_pose_node:\n  ros__parameters:\n    score_treshold: 0.5\n",
            r"sets 'score_treshold', which object_pose_node does not have \(did you mean 'score_threshold'\?\)",
        ),
        (
            "/**/object_pose_node:\n  ros__parameters:\n    score_threshold: high\n",
            r"'score_threshold' must be a number",
        ),
        ("/**/object_pose_node:\n  ros__parameters:\n    score_threshold: 2.0\n", r"above its maximum"),
        ("/**/object_pose_node:\n  ros__parameters:\n    track: 1\n", r"'track' must be a bool"),
        (
            "object_pose_node:\n  ros__parameters:\n    track: false\n",
            r"sets nothing for /robot1/object_pose_node: its section 'object_pose_node' applies only to "
            r"/object_pose_node in the root namespace; key the section '/\*\*/object_pose_node:'",
        ),
        ("/**/object_pose_node: {}\n", r"has no 'ros__parameters:'"),
        ("- a\n- b\n", r"is not a ROS parameter file"),
        ("a: [\n", r"is not valid YAML"),
    ]
    for text, match in cases:
        with pytest.raises(LaunchArgumentError, match=r"launch argument 'params_file': .*" + match):
            node_specs(("object_pose_node",), {"params_file": params_file(text), "namespace": "robot1"})
    with pytest.raises(LaunchArgumentError, match="'params_file': file '/nonexistent.yaml' does not exist"):
        node_specs(("object_pose_node",), {"params_file": "/nonexistent.yaml"})


def test_arguments_given_on_the_command_line_are_those_after_this_launch_file():
    argv = [
        "/opt/ros/jazzy/bin/ros2",
        "launch",
        "pose_perception",
        "object_pose.launch.py",
        "namespace:=r1",
        "camra:=zed",
        "--debug",
    ]
    assert command_line_arguments("/x/share/pose_perception/launch/object_pose.launch.py", argv) == [
        "namespace",
        "camra",
    ]
    # included by another launch file: the command line's arguments are that file's
    assert (
        command_line_arguments(
            "/x/object_pose.launch.py", ["ros2", "launch", "my_robot", "bringup.launch.py", "namespace:=r1"]
        )
        == []
    )


def test_every_argument_has_a_description_and_a_default_among_its_choices():
    for a in arguments(ALL):
        assert a.description and (a.choices is None or a.default in a.choices)


KEYS = [
    "object_pose_node",
    "/object_pose_node",
    "/**/object_pose_node",
    "/**",
    "/*",
    "/*/object_pose_node",
    "/robot1/object_pose_node",
    "robot1/object_pose_node",
    "/**/other",
    "/robot1/**",
]


def test_key_matching_is_rcls():
    """Which parameter-file sections apply to a node, by key_applies and by rclpy itself (rcl)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        for ns in ("", "robot1", "a/b"):
            fqn = ("/" + ns if ns else "") + "/object_pose_node"
            text = "".join(f"{k}:\n  ros__parameters:\n    p{i}: 1\n" for i, k in enumerate(KEYS))
            node = Node(
                "object_pose_node",
                namespace=ns,
                context=context,
                cli_args=["--ros-args", "--params-file", params_file(text)],
            )
            try:
                rcl = {KEYS[i] for i in range(len(KEYS)) if f"p{i}" in node._parameter_overrides}
            finally:
                node.destroy_node()
            assert rcl == {k for k in KEYS if key_applies(k, fqn)}, fqn
    finally:
        rclpy.try_shutdown(context=context)


@pytest.mark.timeout(120)
def test_namespaced_object_node_loads_its_objects_and_listens_to_the_camera(client, tmp_path):
    """The node as launch_ros starts it from object_pose.launch.py namespace:=robot1 params_file:=F."""
    user = params_file(f"""
        /**/object_pose_node:
          ros__parameters:
            objects: ["duck=pybullet_data:duck_vhacd.obj"]
            symmetry: none
            cache_dir: {tmp_path}
        """)
    [spec] = node_specs(("object_pose_node",), {"namespace": "robot1", "params_file": user})
    typo = ["-p", "score_treshold:=0.5"]  # what the launch-time check refuses; the node itself warns
    node = NodeProcess(
        [sys.executable, "-m", "pose_perception.ros.object_pose_node", *spec.ros_args(), *typo], ros_env()
    )
    try:
        wait_for(lambda: "objects loaded: ['duck']" in node.output() or not node.alive(), 90, "objects loaded")
        assert "objects loaded: ['duck']" in node.output(), node.output()[-2000:]
        assert (
            "ignoring parameter 'score_treshold': object_pose_node has no such parameter (did you mean "
            "'score_threshold'?)" in node.output()
        )
        graph = client.node
        wait_for(
            lambda: (
                graph.count_subscribers("/camera/camera/aligned_depth_to_color/image_raw") >= 1
                and graph.count_publishers("/robot1/objects") >= 1
            ),
            60,
            "remapped inputs and namespaced outputs",
        )
        assert graph.count_publishers("/objects") == 0
    finally:
        node.stop()


@pytest.mark.timeout(60)
def test_a_namespaced_node_whose_file_does_not_apply_says_so():
    """A file keyed for the root namespace given to a namespaced node (`ros2 run ... __ns:=/robot1`, no launch
    check): rclpy applies nothing; the object node warns that it has no objects and how to key the file."""
    root_only = params_file(
        "object_pose_node:\n  ros__parameters:\n    objects: ['duck=pybullet_data:duck_vhacd.obj']\n"
    )
    node = NodeProcess(
        [
            sys.executable,
            "-m",
            "pose_perception.ros.object_pose_node",
            "--ros-args",
            "-r",
            "__ns:=/robot1",
            "--params-file",
            root_only,
        ],
        ros_env(),
    )
    try:
        wait_for(lambda: "objects loaded" in node.output() or not node.alive(), 40, "configure")
        out = node.output()
        assert "no objects to look for: parameter 'objects' is empty for /robot1/object_pose_node" in out, out[-2000:]
        assert "key it '/**/object_pose_node:'" in out
    finally:
        node.stop()
