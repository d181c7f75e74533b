#!/usr/bin/env bash
# The main job, one command on a fresh machine: set up (idempotent: .venv, torch,
# the ComfyUI host), then make a long video through a headless ComfyUI's API.
# Results go to ./output (video, search report, score plot). Arguments go to
# scripts/demo.py, e.g. --workflow svd, --models /path/to/ComfyUI/models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
