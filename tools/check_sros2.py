"""Can this ROS 2 install run SROS2 (DDS Security)? Scripted check: `bash tools/with_env.sh python tools/check_sros2.py`.

Builds a throwaway keystore layout (placeholder files, enough for rcl to hand the enclave to the RMW) and creates
a node with ROS_SECURITY_ENABLE=true / ROS_SECURITY_STRATEGY=Enforce in a child process. The RMW then either
refuses for lack of security support (the PyPI Jazzy wheels: Fast DDS built without -DSECURITY=ON) or tries to
load the placeholder certificates, which proves the security plugins exist: then follow docs/security.md with a
real keystore (`ros2 security create_keystore`, sros2 from apt). Exit code 0: security available, 1: not.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import rclpy
from pose_perception.ros.process import init_ros
try:
    init_ros(args=["--ros-args", "--enclave", "/probe"])
    rclpy.create_node("sros2_probe")
    print("RESULT node created")
except Exception as exc:
    print("RESULT " + " ".join(str(exc).split()))
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as keystore:
        enclave = Path(keystore) / "enclaves" / "probe"
        enclave.mkdir(parents=True)
        for name in (
            "identity_ca.cert.pem",
            "cert.pem",
            "key.pem",
            "permissions_ca.cert.pem",
            "governance.p7s",
            "permissions.p7s",
        ):
            (enclave / name).write_text("placeholder\n")
        env = dict(
            os.environ,
            ROS_SECURITY_ENABLE="true",
            ROS_SECURITY_STRATEGY="Enforce",
            ROS_SECURITY_KEYSTORE=keystore,
            ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", "97"),
        )
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    result = next((line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")), out.stderr[-500:])
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if "doesn't have the security libraries" in result or "SECURITY=ON" in result:
        print(f"SROS2: NOT available with {rmw} here: {result}")
        print(
            "The permissions recipe (docs/safety.md, pose_perception/config/sros2/policy.xml) needs a ROS 2 install whose DDS has "
            "security (apt ros-jazzy-* packages, or Fast DDS built with -DSECURITY=ON)."
        )
        return 1
    print(
        f"SROS2: the RMW has security plugins (placeholder certificates gave: {result}). "
        "Create a real keystore with the recipe in docs/security.md and run its check."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
