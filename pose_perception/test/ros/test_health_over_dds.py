"""/diagnostics over real DDS tells the truth about the recent past: OK while frames come out, ERROR while every
frame fails (even after earlier successes), OK again once clean frames return, WARN when input stops."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped

from ros_helpers import start_node, wait_for
from test_base_node import NODE, centre_camera

pytestmark = pytest.mark.timeout(120)


def newest_status(diags):
    for msg in reversed(diags):
        for status in msg.status:
            if status.name.startswith("centre_depth_node:"):
                return status
    return None


def level_becomes(diags, feeder, level, send=None, timeout_s=20.0, says=""):
    def check():
        if send is not None:
            send()
            time.sleep(0.05)
        status = newest_status(diags)
        return status if status is not None and status.level == level and says in status.message else None

    return wait_for(check, timeout_s, f"diagnostics level {level!r}")


def test_diagnostics_level_follows_recent_errors_and_input(client):
    points = client.collect(PointStamped, "centre_point")
    diags = client.collect(DiagnosticArray, "/diagnostics")
    node = start_node(NODE, params={"health_window_s": 2.0, "stale_input_s": 1.5, "diagnostics_period_s": 0.2})
    try:
        feeder = centre_camera(client)
        client.wait_for_subscribers(feeder.image, timeout_s=30)
        wait_for(lambda: (feeder.send(), points)[1], 30, "first centre point")
        level_becomes(diags, feeder, DiagnosticStatus.OK, feeder.send)
        bad_depth = np.full((12, 16), 1000, np.uint16)  # wrong size: every frame fails
        status = level_becomes(
            diags,
            feeder,
            DiagnosticStatus.ERROR,
            lambda: feeder.send(depth_mm=bad_depth),
            says="every frame in the last 2 s failed",
        )
        assert "every frame in the last 2 s failed" in status.message and "register depth" in status.message
        level_becomes(diags, feeder, DiagnosticStatus.OK, feeder.send)
        status = level_becomes(diags, feeder, DiagnosticStatus.WARN)  # nothing sent
        assert status.message.startswith("no input for")
        assert node.alive()
    finally:
        assert node.stop() == 0, node.output()
