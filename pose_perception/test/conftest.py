"""Test session set-up: one ROS_DOMAIN_ID per run and the shipped DDS profile for every participant."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 200))
for var in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):  # Fast DDS 2.x / 3.x
    os.environ[var] = str(REPO / "config" / "fastdds_local.xml")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
