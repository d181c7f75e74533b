#!/usr/bin/env bash
# The main job, one command on a fresh machine: set up (idempotent: the venvs, torch,
# the ComfyUI hosts), then make a long video through a headless ComfyUI's API.
# Results go to ./output (video, search report, score plot). Arguments go to
# scripts/demo.py, e.g. --workflow svd, --models /path/to/ComfyUI/models.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the host the demo runs on (CHUNKWISE_COMFY, default 0.3.75), not every test host.
CHUNKWISE_COMFY=${CHUNKWISE_COMFY:-0.3.75} bash scripts/setup.sh
# The venv of the ComfyUI host that CHUNKWISE_COMFY names (.venv for 0.3.75, the default).
exec "$("${PYTHON:-python3}" scripts/comfy_host.py --venv)/bin/python" scripts/demo.py "$@"
