"""`pose-perception up` for a robot watched from a laptop: the Fast DDS profile of the nodes (local / lan / default /
a file) and the Foxglove server's bind address; the shipped LAN profile is one Fast DDS accepts and delivers with."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pose_perception.cli.main import build_parser
from pose_perception.cli.up import ConfigError, node_env
from pose_perception.ros.dds import PROFILE_ENV_VARS

REPO = Path(__file__).resolve().parents[2]


def profile(env):
    values = {env.get(v) for v in PROFILE_ENV_VARS}
    assert len(values) == 1
    return values.pop()


def test_profiles(monkeypatch, tmp_path):
    for v in PROFILE_ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    assert profile(node_env("local")).endswith("config/fastdds_local.xml")
    assert profile(node_env("lan")).endswith("config/fastdds_lan.xml")
    assert profile(node_env("default")) is None
    mine = tmp_path / "mine.xml"
    mine.write_text("<profiles/>")
    assert profile(node_env(str(mine))) == str(mine)
    with pytest.raises(ConfigError, match="not found"):
        node_env(str(tmp_path / "missing.xml"))
    monkeypatch.setenv(PROFILE_ENV_VARS[0], str(mine))
    monkeypatch.setenv(PROFILE_ENV_VARS[1], str(mine))
    assert profile(node_env("local")) == str(mine)  # local keeps the user's own profile
    assert profile(node_env("lan")).endswith("fastdds_lan.xml")  # an explicit choice wins


def test_nodes_get_two_malloc_arenas_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert node_env("local")["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert node_env("local")["MALLOC_ARENA_MAX"] == "8"


def test_foxglove_bind_address_and_profile_options():
    args = build_parser().parse_args(
        ["up", "--foxglove", "--foxglove-host", "0.0.0.0", "--foxglove-port", "9000", "--dds-profile", "lan"]
    )
    assert (args.foxglove_host, args.foxglove_port, args.dds_profile) == ("0.0.0.0", 9000, "lan")
    assert build_parser().parse_args(["up"]).foxglove_host == "127.0.0.1"


@pytest.mark.timeout(60)
def test_the_lan_profile_is_valid_and_delivers():
    code = """
import time, rclpy
from std_msgs.msg import String
from pose_perception.ros.process import init_ros
init_ros()
n = rclpy.create_node("lan_check")
got = []
n.create_subscription(String, "lan_check", got.append, 10)
pub = n.create_publisher(String, "lan_check", 10)
t0 = time.time()
while not got and time.time() - t0 < 20:
    pub.publish(String(data="x"))
    rclpy.spin_once(n, timeout_sec=0.1)
print("received" if got else "nothing")
"""
    env = dict(os.environ, PYTHONPATH=str(REPO), ROS_DOMAIN_ID=str(100 + os.getpid() % 100))
    for v in PROFILE_ENV_VARS:
        env[v] = str(REPO / "config" / "fastdds_lan.xml")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=50)
    assert "received" in r.stdout, r.stdout + r.stderr
    assert "XMLPARSER" not in r.stderr and "Error" not in r.stderr, r.stderr
