"""Shared fixtures of the ROS integration tests: one in-process client node per test module, the object scene."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "objects"))  # scenes.py: the SYNTHETIC object scenes

from ros_helpers import RosClient


@pytest.fixture(scope="module")
def client(request):
    c = RosClient(f"{request.module.__name__.split('.')[-1]}_client")
    yield c
    c.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """(ObjectModel, Scene) of the mustard bottle, made once per module (test/ros/mustard_node.py)."""
    from mustard_node import mustard_scene

    return mustard_scene(tmp_path_factory.mktemp("mustard"))
