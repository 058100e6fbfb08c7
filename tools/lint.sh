#!/usr/bin/env bash
# The lint step of CI (.ci/run): ruff (lint + format check) and mypy, with the settings in pyproject.toml and the
# versions pinned in tools/requirements-dev.txt (installed into .venv by make setup). Runs all three, then fails
# if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
status=0
"$V/ruff" check . || status=1
"$V/ruff" format --check . || status=1
"$V/mypy" || status=1
exit $status
