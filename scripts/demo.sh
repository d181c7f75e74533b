#!/usr/bin/env bash
# The main job, one command on a fresh machine: set up (idempotent: the venvs, torch,
# the ComfyUI hosts), then make long videos through a headless ComfyUI's API: by
# default naive against search on the toy world (no weights; a toy model that
# demonstrates the mechanism, not a result about real models). Results go to
# ./output (videos, evaluations, comparison chart). Arguments go to scripts/demo.py,
# e.g. --models /path/to/ComfyUI/models (real Wan 2.1 weights), --workflow svd.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the host the demo runs on (CHUNKWISE_COMFY, default 0.3.75), not every test host.
CHUNKWISE_COMFY=${CHUNKWISE_COMFY:-0.3.75} bash scripts/setup.sh
# The venv of the ComfyUI host that CHUNKWISE_COMFY names (.venv for 0.3.75, the default).
exec "$("${PYTHON:-python3}" scripts/comfy_host.py --venv)/bin/python" scripts/demo.py "$@"
