"""The repository as a ROS workspace sees it: real colcon (pinned colcon-common-extensions, against the Jazzy
wheels of .venv) finds both packages of a clone, builds them, and the installed nodes start under a namespace
with the shipped parameter files (what `colcon build` then `ros2 launch pose_perception pose_perception.launch.py
namespace:=robot1` does; the arguments -> node command lines step is launch_support's, as launch_ros would run it)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the clone: pose_perception/ and pose_perception_msgs/ side by side
VENV = Path(sys.prefix)
COLCON = shutil.which("colcon", path=str(VENV / "bin"))
pytestmark = pytest.mark.skipif(COLCON is None, reason="colcon is not installed in .venv (tools/requirements-ros.txt)")
PACKAGES = {"pose_perception": "ros.ament_python", "pose_perception_msgs": "ros.ament_cmake"}


def colcon(*args, cwd, timeout=600):
    env = dict(
        os.environ,
        AMENT_PREFIX_PATH=str(VENV),
        CMAKE_PREFIX_PATH=str(VENV),
        PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    return subprocess.run(
        [COLCON, "--log-base", str(cwd / "log"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_colcon_list_finds_both_packages(tmp_path):
    r = colcon("list", "--base-paths", str(ROOT), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    found = {}
    for line in r.stdout.splitlines():
        name, path, kind = line.split("\t")
        found[name] = (Path(path), kind.strip("()"))
    # tools/tf2_msgs, tools/vision_msgs, ... carry COLCON_IGNORE: a real install uses the real packages
    assert {n: k for n, (p, k) in found.items()} == PACKAGES
    assert found["pose_perception"][0] == ROOT / "pose_perception"


@pytest.mark.timeout(900)
def test_colcon_builds_both_and_the_installed_nodes_start_namespaced(tmp_path):
    r = colcon(
        "build",
        "--base-paths",
        str(ROOT),
        "--build-base",
        str(tmp_path / "build"),
        "--install-base",
        str(tmp_path / "install"),
        "--packages-select",
        *PACKAGES,
        "--cmake-args",
        f"-DPython3_EXECUTABLE={VENV / 'bin' / 'python'}",
        "-DBUILD_TESTING=OFF",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Summary: 2 packages finished" in r.stdout
    install = tmp_path / "install"
    site = Path(sysconfig.get_path("purelib")).relative_to(VENV)  # lib/python3.X/site-packages
    share = install / "pose_perception" / "share" / "pose_perception"
    assert sorted(p.name for p in (share / "launch").glob("*.launch.py")) == [
        "human_pose.launch.py",
        "object_pose.launch.py",
        "pose_perception.launch.py",
        "radar_pose.launch.py",
    ]
    assert (share / "config" / "object_pose.yaml").exists() and (share / "config" / "fastdds_lan.xml").exists()
    assert (
        install / "pose_perception" / "share" / "ament_index" / "resource_index" / "packages" / "pose_perception"
    ).exists()
    executables = install / "pose_perception" / "lib" / "pose_perception"
    assert {"human_pose_node", "object_pose_node", "radar_pose_node"} <= {p.name for p in executables.iterdir()}

    # The workspace's environment (what `source install/setup.bash` sets for these two packages).
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(
        [str(install / "pose_perception"), str(install / "pose_perception_msgs"), str(VENV)]
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [str(install / "pose_perception" / site), str(install / "pose_perception_msgs" / site)]
    )
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(install / "pose_perception_msgs" / "lib"), env.get("LD_LIBRARY_PATH", "")]
    )
    user = tmp_path / "robot.yaml"
    user.write_text(
        textwrap.dedent(f"""\
        /**/object_pose_node:
          ros__parameters:
            objects: ["duck=pybullet_data:duck_vhacd.obj"]
            symmetry: none
            cache_dir: {tmp_path / "cache"}
        """)
    )
    # launch_support from the installed package: the shipped files come from the install's share directory.
    code = (
        "import json; from pose_perception.ros.launch_support import node_specs; import pose_perception_msgs.msg\n"
        f"specs = node_specs(('human_pose_node', 'object_pose_node', 'radar_pose_node'), "
        f"{{'namespace': 'robot1', 'params_file': {str(user)!r}}})\n"
        "print(json.dumps([[s.executable, s.ros_args()] for s in specs]))"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    specs = json.loads(r.stdout.strip().splitlines()[-1])
    for _exe, argv in specs:
        assert str(share / "config") in argv[argv.index("--params-file") + 1]
    procs = {}
    logs = {}
    try:
        for exe, argv in specs:
            logs[exe] = open(tmp_path / f"{exe}.log", "wb")
            procs[exe] = subprocess.Popen(
                [str(executables / exe), *argv],
                env=env,
                stdout=logs[exe],
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                start_new_session=True,
            )

        def out(exe):
            return (tmp_path / f"{exe}.log").read_text(errors="replace")

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not all("active" in out(e) for e in procs):
            assert all(p.poll() is None for p in procs.values()), {e: out(e)[-2000:] for e in procs}
            time.sleep(0.5)
        for exe in procs:
            assert f"[robot1.{exe}]: active" in out(exe), out(exe)[-2000:]
        assert "objects loaded: ['duck']" in out("object_pose_node")  # the user's file, under the namespace
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(2)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()
