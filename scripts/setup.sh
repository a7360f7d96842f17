#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with everything the bot and its tests need.
# Idempotent: safe to run again. torch is pinned to the machine's local CPU build in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PYTHON --version)..." >&2
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "Installing community-bot and its dependencies into .venv (first time: a few minutes)..." >&2
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
echo "Ready: .venv/bin/communitybot --help" >&2
