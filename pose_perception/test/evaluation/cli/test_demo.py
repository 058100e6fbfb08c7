"""The main job on a shortened stream: three real nodes in their own processes over DDS, fed the sample
streams; every node answers, the MCAP bag is readable by rosbags, the pictures are written."""

import subprocess
import sys

from pose_perception.ros.bag import read_bag
from ros_helpers import REPO, ros_env


def test_demo_runs_the_whole_graph_and_records_it(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "pose_perception.cli.main", "demo", "--seconds", "8", "--out", str(out)],
        env=ros_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    for node in ("human_pose_node", "object_pose_node", "radar_pose_node"):
        row = next(line for line in proc.stdout.splitlines() if line.startswith(node))
        assert int(row.split()[2]) > 0, row  # results out
    (bag,) = out.glob("bag_*")
    topics = {topic for topic, *_ in read_bag(bag)}
    assert {"/humans", "/objects", "/radar/humans", "/tf", "/diagnostics"} <= topics
    for png in ("human_0.png", "objects.png", "radar_topview.png"):
        assert (out / png).stat().st_size > 10_000, png
