#!/usr/bin/env bash
# The test command: the whole suite in .venv with the shipped DDS profile.
set -euo pipefail
# From the package folder, where setup.cfg holds pytest's settings (test paths are relative to it, e.g. test/ros).
cd "$(dirname "$0")/../pose_perception"
exec bash ../tools/with_env.sh python -m pytest -q "$@"
