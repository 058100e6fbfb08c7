#!/usr/bin/env bash
# Runs a command inside .venv with the environment local runs use: the shipped loopback-only DDS profile and
# AMENT_PREFIX_PATH for ament_index lookups. ROS_DOMAIN_ID is kept if set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export VIRTUAL_ENV=$ROOT/.venv
export PATH=$VIRTUAL_ENV/bin:$PATH
export AMENT_PREFIX_PATH=$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# Fast DDS 2.x (Jazzy) reads FASTRTPS_..., 3.x (Kilted+) FASTDDS_...: both point at the shipped profile.
PROFILE=${FASTDDS_DEFAULT_PROFILES_FILE:-${FASTRTPS_DEFAULT_PROFILES_FILE:-$ROOT/pose_perception/config/fastdds_local.xml}}
export FASTRTPS_DEFAULT_PROFILES_FILE=$PROFILE FASTDDS_DEFAULT_PROFILES_FILE=$PROFILE
export PYTHONUNBUFFERED=1
exec "$@"
