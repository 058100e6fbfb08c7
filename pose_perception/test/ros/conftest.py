"""Shared fixture of the ROS integration tests: one in-process client node per test module."""

import pytest

from ros_helpers import RosClient


@pytest.fixture(scope="module")
def client(request):
    c = RosClient(f"{request.module.__name__.split('.')[-1]}_client")
    yield c
    c.close()
