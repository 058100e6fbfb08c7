"""The layering of docs/DEVELOPING.md, read from the source (no imports run): ros/ -> domain (human/ objects/
radar/) -> core/, nothing imports upward; the runtime never imports pose_perception.evaluation (issue 20 item 2:
simulators, synthetic data, training, metrics, samples, bench / eval / demo commands); ROS (rclpy, message types) only in ros/, and in the cli/ commands
that act as DDS clients (demo, bench) only inside functions (so `pose-perception` runs without ROS sourced). ruff's TID251/TID253 say the same at lint time."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "pose_perception"
RANK = {"core": 0, "human": 1, "objects": 1, "radar": 1, "samples": 2, "ros": 3, "cli": 4, "evaluation": 5, "": 6}
EVALUATION = "evaluation"  # pose_perception/evaluation/: may import the runtime, never imported by it
ROS_MODULES = {
    "rclpy",
    "rosbag2_py",
    "tf2_ros",
    "launch",
    "launch_ros",
    "builtin_interfaces",
    "diagnostic_msgs",
    "geometry_msgs",
    "hri_msgs",
    "moveit_msgs",
    "pose_perception_msgs",
    "rcl_interfaces",
    "sensor_msgs",
    "shape_msgs",
    "std_msgs",
    "std_srvs",
    "tf2_msgs",
    "vision_msgs",
    "visualization_msgs",
}
# Known exceptions (file, area it imports), each to be removed by the change named.
KNOWN: dict[tuple[str, str], str] = {}


def _imports(path: Path):
    """(module, at_module_level) of every absolute import in path."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name, id(node) in top


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield path, rel.as_posix(), rel.parts[0] if len(rel.parts) > 1 else ""


def test_runtime_never_imports_evaluation():
    """Not even inside a function: a robot installs the runtime without the evaluation extra's dependencies.
    (cli/main.py names the evaluation commands as strings and skips them when they cannot load.)"""
    bad = []
    for path, rel, area in _modules():
        if area == EVALUATION:
            continue
        for name, _ in _imports(path):
            if name == f"pose_perception.{EVALUATION}" or name.startswith(f"pose_perception.{EVALUATION}."):
                bad.append(f"{rel} imports {name}")
    assert not bad, "the runtime imports the evaluation package:\n" + "\n".join(sorted(set(bad)))


def test_nothing_imports_upward():
    bad = []
    for path, rel, area in _modules():
        for name, _ in _imports(path):
            parts = name.split(".")
            if parts[0] != "pose_perception" or len(parts) < 2 or parts[1] not in RANK:
                continue
            target = parts[1]
            if target != area and RANK[target] >= RANK[area] and (rel, target) not in KNOWN:
                bad.append(f"{rel} imports {name}")
    assert not bad, "imports against the layering (ros -> domain -> core):\n" + "\n".join(sorted(set(bad)))


# The evaluation commands that drive nodes over DDS as a client would (issue 20 item 2 moves them out of the
# runtime); every other command goes through ros/.
CLI_DDS_CLIENTS = {
    "evaluation/cli/demo.py",
    "evaluation/cli/bench_transport.py",
    "evaluation/cli/bench_human.py",
    "evaluation/cli/bench_mesh.py",
    "evaluation/cli/bench_onboarding.py",
}


def test_ros_only_in_ros_and_lazily_in_cli():
    bad = []
    for path, rel, area in _modules():
        if area == "ros" or rel.startswith(f"{EVALUATION}/ros/"):
            continue
        for name, module_level in _imports(path):
            if name.split(".")[0] in ROS_MODULES and (rel not in CLI_DDS_CLIENTS or module_level):
                bad.append(f"{rel} imports {name}" + (" at module level" if module_level else ""))
    assert not bad, "ROS outside ros/ (cli/: inside functions only):\n" + "\n".join(sorted(set(bad)))
