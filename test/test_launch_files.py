"""Launch files, checked without the `launch` package (absent here): every executable they start is a
console script of setup.py, every parameter file they name ships in config/, and each file parses."""
import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def console_scripts() -> set[str]:
    text = (REPO / "setup.py").read_text()
    return set(re.findall(r'"([\w-]+) = pose_perception\.', text))


def node_calls(tree: ast.AST):
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None)) == "Node":
            yield {kw.arg: kw.value for kw in call.keywords}


def string_constants(tree: ast.AST):
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_there_are_launch_files():
    assert LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_existing_executables_and_parameter_files(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    strings = string_constants(tree)
    executables = {s for s in strings if s.endswith("_node")}
    assert list(node_calls(tree)), f"{path.name} starts no Node"
    assert executables, f"{path.name} names no executable"
    assert executables <= console_scripts(), f"unknown executables {executables - console_scripts()}"
    for params_file in (s for s in strings if s.endswith(".yaml")):
        cfg = REPO / "config" / params_file
        assert cfg.exists(), f"{path.name} names config/{params_file}, which does not exist"


def test_every_shipped_parameter_file_is_valid_ros_parameter_yaml():
    for cfg in (REPO / "config").glob("*.yaml"):
        data = yaml.safe_load(cfg.read_text())
        for node_name, body in data.items():
            assert "ros__parameters" in body, f"{cfg.name}: {node_name} lacks ros__parameters"
