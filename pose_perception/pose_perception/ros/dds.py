"""The Fast DDS profile for local runs: which environment variables point Fast DDS at it.

Fast DDS 2.x (ROS 2 Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, Fast DDS 3.x (Kilted and later) reads
FASTDDS_DEFAULT_PROFILES_FILE: set both so the same code is right on every distro.
"""

from __future__ import annotations

from pathlib import Path
from typing import MutableMapping, Optional

PROFILE_ENV_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
SHIPPED_PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_local.xml"


def shipped_profile() -> Path:
    """config/fastdds_local.xml of the source tree, else of the installed share/ folder."""
    if SHIPPED_PROFILE.exists():
        return SHIPPED_PROFILE
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("pose_perception")) / "config" / "fastdds_local.xml"


def current_profile(env: MutableMapping[str, str]) -> Optional[str]:
    return next((env[v] for v in PROFILE_ENV_VARS if env.get(v)), None)


def set_profile(env: MutableMapping[str, str], profile: Optional[str | Path], overwrite: bool = True) -> None:
    """Point env at profile (None: Fast DDS defaults). overwrite=False keeps a profile the user already chose."""
    if not overwrite and current_profile(env):
        profile = current_profile(env)
    for var in PROFILE_ENV_VARS:
        if profile is None:
            env.pop(var, None)
        else:
            env[var] = str(profile)
