#!/usr/bin/env bash
# Set up prefgym in ./.venv: torch's CPU build first, then the package with every extra.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned, so nothing below can pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[mujoco,box2d,atari,dev]"
echo "prefgym is set up in .venv ($(.venv/bin/python -c 'import prefgym; print(prefgym.__version__)'))"
