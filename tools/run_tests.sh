#!/usr/bin/env bash
# The test command: the whole suite in .venv with the shipped DDS profile.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash tools/with_env.sh python -m pytest -q "$@"
