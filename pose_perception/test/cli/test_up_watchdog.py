"""`pose-perception up` notices a node that stops (SIGSTOP: its process lives, nothing comes out), kills it and
starts it again, in a real process over real DDS."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from ros_helpers import REPO, ros_env, wait_for

pytestmark = pytest.mark.timeout(150)


def test_a_stopped_node_is_killed_and_restarted(tmp_path):
    cfg = tmp_path / "radar.yaml"
    cfg.write_text("radar_pose_node:\n  ros__parameters:\n    diagnostics_period_s: 0.5\n")
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pose_perception.cli.main",
                "up",
                "--config",
                str(cfg),
                "--hang-timeout",
                "3",
                "--log-dir",
                str(tmp_path / "logs"),
            ],
            env=ros_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )
    try:
        first = int(wait_for(lambda: _pid(log, 1), 30, "the node started"))
        wait_for(lambda: f"(pid {first}) heard on /diagnostics" in log.read_text(), 120, "the node heard by up")
        os.kill(first, signal.SIGSTOP)
        second = int(wait_for(lambda: _pid(log, 2), 30, "a restart"))
        text = log.read_text()
        assert second != first and "is hung: no /diagnostics for" in text and "restarting in" in text
        assert up.poll() is None
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)


def _pid(log: Path, n: int):
    starts = [line for line in log.read_text().splitlines() if "started radar_pose_node (pid" in line]
    return starts[n - 1].split("pid ")[1].rstrip(")") if len(starts) >= n else None
