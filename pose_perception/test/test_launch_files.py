"""Launch files, checked without the `launch` package (absent from PyPI): each is a thin wrapper over
pose_perception.ros.launch_support (tested in test/ros/test_launch_support.py) naming real executables, and
every shipped parameter file is keyed so that it applies under any namespace."""

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
EXPECTED = {
    "pose_perception.launch.py": ("human_pose_node", "object_pose_node", "radar_pose_node"),
    "human_pose.launch.py": ("human_pose_node",),
    "object_pose.launch.py": ("object_pose_node",),
    "radar_pose.launch.py": ("radar_pose_node",),
}


def console_scripts() -> set[str]:
    text = (REPO / "setup.py").read_text()
    return set(re.findall(r'"([\w-]+) = pose_perception\.', text))


def test_there_are_the_launch_files():
    assert {p.name for p in LAUNCH_FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_builds_its_description_from_launch_support(path):
    """generate_launch_description() returns launch_description(<executables>, __file__): the arguments, their
    checks and the nodes are launch_support's, and the executables are console scripts of setup.py."""
    tree = ast.parse(path.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description")
    ret = fn.body[-1]
    assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.Call)
    assert ret.value.func.id == "launch_description"
    executables = ast.literal_eval(ret.value.args[0])
    assert isinstance(ret.value.args[1], ast.Name) and ret.value.args[1].id == "__file__"
    assert executables == EXPECTED[path.name]
    assert set(executables) <= console_scripts()
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [
        ("pose_perception.ros.launch_support", ["launch_description"])
    ]


def test_every_shipped_parameter_file_applies_under_any_namespace():
    for cfg in (REPO / "config").glob("*.yaml"):
        data = yaml.safe_load(cfg.read_text())
        for key, body in data.items():
            assert "ros__parameters" in body, f"{cfg.name}: {key} lacks ros__parameters"
            assert key.startswith("/**/"), f"{cfg.name}: key '{key}' applies only in the root namespace"


def test_setup_installs_the_launch_and_config_files():
    text = (REPO / "setup.py").read_text()
    assert 'glob("launch/*.launch.py")' in text and 'glob("config/*.yaml")' in text
