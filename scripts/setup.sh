#!/usr/bin/env bash
# Set up everything on a fresh machine (idempotent): a venv in .venv with torch,
# the pack's test dependencies and the ComfyUI 0.3.75 test host in .cache/comfyui.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
STAMP=.venv/.chunkwise-deps
DEPS_HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
# pip quietly, without the index-location notices; a failed install stops set-up (no tier may be skipped).
pip_install() {
  local log rc=0
  log=$(mktemp)
  "$VPY" -m pip install -q "$@" >"$log" 2>&1 || rc=$?
  grep -v "is ignored" "$log" >&2 || true
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then
    echo "[setup] pip install $* failed (exit $rc); see the messages above" >&2
    exit "$rc"
  fi
}
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$DEPS_HASH" ]; then
  echo "[setup] installing torch and test dependencies into .venv" >&2
  pip_install --upgrade pip
  # torch + torchvision as ComfyUI needs them (x86_64: 2.14.1 / 0.29.1, from local disk where available).
  case "$(uname -m)" in
    aarch64|arm64) TORCH="torch==2.9.1 torchvision==0.24.1" ;;
    *) TORCH="torch==2.14.1 torchvision==0.29.1" ;;
  esac
  # shellcheck disable=SC2086
  pip_install $TORCH
  pip_install "pytest>=8" "ruff>=0.6" "numpy>=1.25" "pillow>=9" "safetensors>=0.4.2" \
    "open_clip_torch>=2.24" "diffusers>=0.32" "accelerate>=0.30"
  pip_install --no-deps -e .  # package chunkwise + the chunkwise command
  # Every optional backend the tests cover must import, or the stamp is not written and set-up runs again.
  "$VPY" -c "import torch, torchvision, open_clip, diffusers, accelerate, pytest, chunkwise.search" >/dev/null
  echo "$DEPS_HASH" > "$STAMP"
fi
# The ComfyUI test host (or COMFYUI_DIR) and its requirements.
"$VPY" scripts/comfy_host.py >/dev/null
