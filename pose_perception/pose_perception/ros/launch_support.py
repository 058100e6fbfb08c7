"""What launch/*.launch.py do, without the `launch` package: their arguments, the checks of the values given, and
the nodes to start (name, namespace, parameter files, remappings). The launch files only turn these into
launch_ros Nodes, so all of this is tested here (the `launch` / `launch_ros` packages have no PyPI wheel).

Bad launch input (an unknown argument, a namespace with a trailing slash, a parameter file with a key or a value
the node does not take, or whose sections do not apply to the node under its namespace) raises LaunchArgumentError
with a message naming the argument; `ros2 launch` prints it as one line, without a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml

from pose_perception.ros.dds import set_profile

# Camera drivers' default topics. realsense-ros 4.5x: `ros2 launch realsense2_camera rs_launch.py
# align_depth.enable:=true` publishes under /camera/camera/ (namespace camera, node camera). ZED wrapper (4.x):
# `ros2 launch zed_wrapper zed_camera.launch.py camera_model:=zed2i` publishes under /zed/zed_node/
# (depth_registered: 32FC1 metres, registered to the left rectified image).
CAMERAS = {
    "realsense": {
        "image": "/camera/camera/color/image_raw",
        "camera_info": "/camera/camera/color/camera_info",
        "depth/image": "/camera/camera/aligned_depth_to_color/image_raw",
    },
    "zed": {
        "image": "/zed/zed_node/rgb/image_rect_color",
        "camera_info": "/zed/zed_node/rgb/camera_info",
        "depth/image": "/zed/zed_node/depth/depth_registered",
    },
}
# TI mmWave ROS 2 driver (ti_mmwave_rospkg): its point cloud topic.
RADAR_CLOUD_TOPIC = "/ti_mmwave/radar_scan_pcl"

NODES = {  # executable -> (flag of pose_perception.launch.py, shipped parameter file, module holding PARAMS)
    "human_pose_node": ("human", "human_pose.yaml", "pose_perception.ros.human_pose_node"),
    "object_pose_node": ("objects", "object_pose.yaml", "pose_perception.ros.object_pose_node"),
    "radar_pose_node": ("radar", "radar_pose.yaml", "pose_perception.ros.radar_pose_node"),
}
CAMERA_NODES = ("human_pose_node", "object_pose_node")
# Node name in a parameter file -> module whose main() runs it (the setup.py console scripts call the same).
NODE_MODULES = {name: module for name, (_, _, module) in NODES.items()}
# Parameters every rclpy node has besides ours (a params file may set them).
ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")


class LaunchArgumentError(ValueError):
    """A launch argument or the parameter file it names cannot be used; the message names the argument."""


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    description: str
    choices: Optional[tuple[str, ...]] = None


# glibc's per-thread malloc arenas kept ~430 MB of the object node's RSS after one 2 M-face add_object load;
# two arenas kept +42 MB (docs/safety.md). A value the user exports wins (node_env uses setdefault).
NODE_MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class NodeSpec:
    """One node to start: what launch_ros.actions.Node takes, in plain values."""

    executable: str
    name: str
    namespace: str
    parameters: tuple  # parameter file paths, then one dict of overrides
    remappings: tuple[tuple[str, str], ...]
    ros_arguments: tuple[str, ...] = field(default=())

    def launch_kwargs(self) -> dict:
        return dict(
            package="pose_perception",
            executable=self.executable,
            name=self.name,
            namespace=self.namespace,
            parameters=list(self.parameters),
            remappings=list(self.remappings),
            ros_arguments=list(self.ros_arguments),
            output="screen",
            emulate_tty=True,
            additional_env={k: os.environ.get(k, v) for k, v in NODE_MALLOC_ENV.items()},
        )

    def ros_args(self) -> list[str]:
        """The same node as `--ros-args ...` (what launch_ros passes it), for `ros2 run` or a test."""
        argv = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            argv += ["-r", f"__ns:={self.namespace}"]
        for p in self.parameters:
            if isinstance(p, dict):
                argv += [a for k, v in p.items() for a in ("-p", f"{k}:={_ros_value(v)}")]
            else:
                argv += ["--params-file", str(p)]
        argv += [a for src, dst in self.remappings for a in ("-r", f"{src}:={dst}")]
        return argv + list(self.ros_arguments)


def _ros_value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def arguments(executables: Sequence[str]) -> list[Argument]:
    """The launch arguments of a launch file starting these executables."""
    args = [
        Argument(
            "namespace",
            "",
            "Namespace of the nodes, e.g. robot1 (no trailing slash). Inputs given as "
            "absolute topics are unchanged; outputs move under it.",
        ),
        Argument(
            "params_file",
            "",
            "A ROS parameter file applied after the shipped one (config/<node>.yaml) of "
            "each node; key its sections '/**/<node name>:' so they apply under any namespace.",
        ),
        # booleans carry no `choices`: launch compares those case-sensitively, and users write True as often as true
        Argument("use_sim_time", "false", "Use /clock (rosbag2 playback with --clock): true or false."),
        Argument("log_level", "info", "Log level of the nodes.", ("debug", "info", "warn", "error")),
    ]
    if len(executables) > 1:
        args += [Argument(NODES[e][0], "true", f"Start {e}: true or false.") for e in executables]
    if any(e in CAMERA_NODES for e in executables):
        cam = ", ".join(f"{k}: {v['image']}" for k, v in CAMERAS.items())
        args += [
            Argument(
                "camera", "realsense", f"Camera driver whose default topics the inputs use ({cam}).", tuple(CAMERAS)
            ),
            Argument("image_topic", "", "Colour image topic (empty: the camera's default)."),
            Argument("camera_info_topic", "", "CameraInfo of the colour image (empty: the camera's default)."),
            Argument(
                "depth_topic",
                "",
                "Depth registered to the colour image, 16UC1 mm or 32FC1 m (empty: the camera's default).",
            ),
        ]
    if "human_pose_node" in executables:
        args.append(
            Argument("use_depth", "", "Human node: lift with depth, true or false (empty: the params file's value).")
        )
    if "radar_pose_node" in executables:
        args += [
            Argument("cloud_topic", RADAR_CLOUD_TOPIC, "Radar PointCloud2 topic (default: the TI mmWave driver's)."),
            Argument("axes", "", "Radar axes: rep103 or ti (empty: the params file's value).", ("", "rep103", "ti")),
        ]
    return args


# ---- checks ----------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_namespace(value: str) -> str:
    """The namespace as launch_ros takes it ('' or '/a/b'); a trailing slash or a bad token is refused."""
    ns = value.strip()
    if not ns or ns == "/":
        return ""
    if ns.endswith("/"):
        raise LaunchArgumentError(
            f"launch argument 'namespace' = '{value}' ends with '/': give '{ns.rstrip('/')}' instead"
        )
    bad = [t for t in ns.lstrip("/").split("/") if not _TOKEN.match(t)]
    if bad:
        raise LaunchArgumentError(
            f"launch argument 'namespace' = '{value}': {bad[0]!r} is not a valid ROS name "
            f"(letters, digits and '_', not starting with a digit; '/' between parts)"
        )
    return "/" + ns.lstrip("/")


def check_topic(argument: str, value: str) -> str:
    topic = value.strip()
    bad = [t for t in topic.lstrip("/").split("/") if not _TOKEN.match(t)]
    if not topic or topic.endswith("/") or bad:
        raise LaunchArgumentError(
            f"launch argument '{argument}' = '{value}' is not a valid topic name (e.g. /camera/camera/color/image_raw)"
        )
    return topic


def check_bool(argument: str, value: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise LaunchArgumentError(f"launch argument '{argument}' = '{value}' must be true or false")
    return v == "true"


def unknown_arguments(given: Sequence[str], declared: Sequence[Argument]) -> None:
    """Refuse names in `given` that no argument declares, suggesting the closest one."""
    names = [a.name for a in declared]
    for g in given:
        if g not in names:
            close = difflib.get_close_matches(g, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise LaunchArgumentError(f"unknown launch argument '{g}': {hint}this launch file takes {', '.join(names)}")


def command_line_arguments(launch_file: str, argv: Optional[Sequence[str]] = None) -> list[str]:
    """Names of the `name:=value` arguments given to `ros2 launch ... <launch_file>` on this command line (empty
    when the launch file was included by another one: those arguments belong to the including file)."""
    argv = list(sys.argv if argv is None else argv)
    base = os.path.basename(launch_file)
    hits = [i for i, a in enumerate(argv) if os.path.basename(a) == base]
    if not hits:
        return []
    return [a.split(":=", 1)[0] for a in argv[hits[0] + 1 :] if ":=" in a and not a.startswith("-")]


def key_applies(key: str, fqn: str) -> bool:
    """Does a parameter file's top-level key apply to the node with fully qualified name fqn ('/ns/name')?
    As rcl: the leading slash is optional, '*' is one name token, '**' any number of tokens (also none)."""
    pattern = [t for t in ("/" + key.lstrip("/")).split("/") if t]
    tokens = [t for t in fqn.split("/") if t]

    def match(p: int, t: int) -> bool:
        if p == len(pattern):
            return t == len(tokens)
        if pattern[p] == "**":
            return any(match(p + 1, k) for k in range(t, len(tokens) + 1))
        return t < len(tokens) and pattern[p] in ("*", tokens[t]) and match(p + 1, t + 1)

    return match(0, 0)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def node_param_specs(executable: str) -> dict:
    """name -> ParamSpec of every parameter the node declares (imports the node module: needs rclpy)."""
    import importlib

    from pose_perception.ros.base_node import COMMON_PARAMS

    module = importlib.import_module(NODES[executable][2])
    return {s.name: s for s in tuple(COMMON_PARAMS) + tuple(module.PARAMS)}


def check_params_file(
    path: str,
    executable: str,
    fqn: str,
    argument: str = "params_file",
    specs: Optional[dict] = None,
    required: bool = True,
) -> dict:
    """The parameters the file sets for node fqn, after checking every key and value against the node's
    declarations. required: the file must have a section for this node (else a message saying how to key it)."""
    p = Path(path)
    if not p.is_file():
        raise LaunchArgumentError(f"launch argument '{argument}': file '{path}' does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise LaunchArgumentError(f"launch argument '{argument}': '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LaunchArgumentError(
            f"launch argument '{argument}': '{path}' is not a ROS parameter file "
            f"('<node>:' then 'ros__parameters:' then the parameters)"
        )
    specs = node_param_specs(executable) if specs is None else specs
    values: dict = {}
    applied = []
    for key, body in data.items():
        if not key_applies(str(key), fqn):
            continue
        if "ros__parameters" not in body or not isinstance(body["ros__parameters"], dict):
            raise LaunchArgumentError(
                f"launch argument '{argument}': section '{key}' of '{path}' has no 'ros__parameters:' mapping"
            )
        applied.append(key)
        for name, value in _flatten(body["ros__parameters"]).items():
            if name in ROS_PARAMETERS or name.startswith("qos_overrides."):
                continue
            spec = specs.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, list(specs), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise LaunchArgumentError(
                    f"launch argument '{argument}': '{path}' sets '{name}', which {executable} does not have{hint}"
                )
            if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            problem = spec.check(value)
            if problem:
                raise LaunchArgumentError(f"launch argument '{argument}': '{path}': {problem}")
            values[name] = value
    if required and not applied:
        wrong = [k for k in data if str(k).strip("/").split("/")[-1] == executable]
        why = (
            f"its section {wrong[0]!r} applies only to /{executable} in the root namespace"
            if wrong
            else f"it has sections {sorted(map(str, data))}"
        )
        raise LaunchArgumentError(
            f"launch argument '{argument}': '{path}' sets nothing for {fqn}: {why}; key the "
            f"section '/**/{executable}:' so it applies under any namespace"
        )
    return values


def shipped_config(name: str) -> str:
    """config/<name> of this source tree when run from one (as `pose-perception up`), else of the installed
    package (its ament share directory)."""
    source = Path(__file__).resolve().parents[2] / "config" / name
    if source.exists():
        return str(source)
    from ament_index_python.packages import get_package_share_directory

    return str(Path(get_package_share_directory("pose_perception")) / "config" / name)


def node_specs(
    executables: Sequence[str], values: Mapping[str, str], given: Sequence[str] = (), check_files: bool = True
) -> list[NodeSpec]:
    """The nodes a launch file starting `executables` runs for argument values `values` (defaults filled in by
    launch), after refusing unknown names in `given` and bad values. check_files: check every parameter file
    against the node's declarations (imports the node modules)."""
    declared = arguments(executables)
    unknown_arguments(given, declared)
    v = {a.name: a.default for a in declared}
    v.update({k: str(val) for k, val in values.items() if k in v})
    namespace = check_namespace(v["namespace"])
    overrides: dict = {"use_sim_time": check_bool("use_sim_time", v["use_sim_time"])}
    user_file = v["params_file"].strip()
    specs = []
    for exe in executables:
        if len(executables) > 1 and not check_bool(NODES[exe][0], v[NODES[exe][0]]):
            continue
        fqn = f"{namespace}/{exe}"
        shipped = shipped_config(NODES[exe][1])
        if check_files:
            param_specs = node_param_specs(exe)
            check_params_file(shipped, exe, fqn, argument=f"(shipped {NODES[exe][1]})", specs=param_specs)
            if user_file:
                check_params_file(user_file, exe, fqn, specs=param_specs, required=False)
        node_overrides = dict(overrides)
        remaps: list[tuple[str, str]] = []
        if exe in CAMERA_NODES:
            camera = CAMERAS[v["camera"]]
            for topic, arg in (
                ("image", "image_topic"),
                ("camera_info", "camera_info_topic"),
                ("depth/image", "depth_topic"),
            ):
                remaps.append((topic, check_topic(arg, v[arg] or camera[topic])))
        if exe == "human_pose_node" and v["use_depth"]:
            node_overrides["use_depth"] = check_bool("use_depth", v["use_depth"])
        if exe == "radar_pose_node":
            node_overrides["cloud_topic"] = check_topic("cloud_topic", v["cloud_topic"])
            if v["axes"]:
                node_overrides["axes"] = v["axes"]
        files = (shipped,) + ((user_file,) if user_file else ())
        specs.append(
            NodeSpec(exe, exe, namespace, files + (node_overrides,), tuple(remaps), ("--log-level", v["log_level"]))
        )
    if not specs:
        raise LaunchArgumentError(
            f"launch arguments {', '.join(NODES[e][0] for e in executables)} are all false: no node to start"
        )
    if check_files and user_file and not any(_has_section(user_file, f"{namespace}/{s.name}") for s in specs):
        check_params_file(user_file, specs[0].executable, f"{namespace}/{specs[0].name}")  # raises, saying why
    return specs


def _has_section(path: str, fqn: str) -> bool:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return any(key_applies(str(k), fqn) for k in data)


def launch_description(executables: Sequence[str], launch_file: str):
    """The LaunchDescription of a launch file starting `executables` (imports `launch`: real ROS installs only)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    def nodes(context):
        given = command_line_arguments(launch_file)
        specs = node_specs(executables, context.launch_configurations, given)
        return [Node(**s.launch_kwargs()) for s in specs]

    declared = [
        DeclareLaunchArgument(
            a.name,
            default_value=a.default,
            description=a.description,
            **({"choices": list(a.choices)} if a.choices else {}),
        )
        for a in arguments(executables)
    ]
    return LaunchDescription(declared + [OpaqueFunction(function=nodes)])


class ConfigError(ValueError):
    """A parameter or DDS profile file that is missing or does not say what `up` needs."""


def resolve_config(path: str) -> Path:
    """A path as given, else a file of that name in the package's installed share/config."""
    p = Path(path)
    if p.exists():
        return p.resolve()
    candidates = [Path(__file__).resolve().parents[2] / "config" / p.name]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("pose_perception")) / "config" / p.name)
    except Exception:  # noqa: BLE001 - package not installed in an ament prefix: only the source tree counts
        pass
    for c in candidates:
        if c.exists():
            return c
    raise ConfigError(f"parameter file '{path}' not found (also looked in {', '.join(map(str, candidates))})")


DDS_PROFILES = {"local": "fastdds_local.xml", "lan": "fastdds_lan.xml"}


def node_env(dds_profile: str = "local") -> dict:
    """Environment of the nodes. dds_profile: local (shipped, loopback only: nothing leaves the machine), lan
    (shared memory + UDP on every interface: a laptop on the network sees the graph), default (Fast DDS's own), or
    a profile file. An explicit choice overrides FASTDDS_DEFAULT_PROFILES_FILE; local keeps one the user set."""
    env = dict(os.environ)
    if dds_profile == "default":
        set_profile(env, None)
    elif dds_profile == "local":
        set_profile(env, resolve_config(DDS_PROFILES["local"]), overwrite=False)
    else:
        set_profile(env, resolve_config(DDS_PROFILES.get(dds_profile, dds_profile)))
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    env.setdefault("PYTHONUNBUFFERED", "1")
    for key, value in NODE_MALLOC_ENV.items():
        env.setdefault(key, value)
    return env
