#!/usr/bin/env bash
# Set up everything on a fresh machine (idempotent): one venv per ComfyUI test host, each with
# torch, the pack's test dependencies and that host's requirements, and the hosts themselves
# (scripts/comfy_host.py): ComfyUI 0.3.75 in .cache/comfyui with .venv, ComfyUI 0.28.2 in
# .cache/comfyui-0.28.2 with .venv-comfy-0.28.2.
# CHUNKWISE_COMFY="0.3.75" (or "0.28.2", or both) sets up only those hosts; with COMFYUI_DIR
# (your own ComfyUI) and no CHUNKWISE_COMFY, only .venv is set up, for that ComfyUI.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEPS_HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
# torch + torchvision as ComfyUI needs them (x86_64: 2.14.1 / 0.29.1, from local disk where available);
# ComfyUI 0.28.2 also imports torchaudio at start-up.
case "$(uname -m)" in
  aarch64|arm64) TORCH="torch==2.9.1 torchvision==0.24.1"; TORCHAUDIO="torchaudio==2.9.1" ;;
  *) TORCH="torch==2.14.1 torchvision==0.29.1"; TORCHAUDIO="torchaudio==2.11.1" ;;
esac

# pip quietly, without the index-location notices; a failed install stops set-up (no tier may be skipped).
pip_install() {
  local vpy=$1 log rc=0
  shift
  log=$(mktemp)
  "$vpy" -m pip install -q "$@" >"$log" 2>&1 || rc=$?
  grep -v "is ignored" "$log" >&2 || true
  rm -f "$log"
  if [ "$rc" -ne 0 ]; then
    echo "[setup] pip install $* failed (exit $rc); see the messages above" >&2
    exit "$rc"
  fi
}

# setup_venv VENV TORCH_PACKAGES...: the venv with torch, the test dependencies and the pack (editable).
setup_venv() {
  local venv=$1 vpy=$1/bin/python stamp=$1/.chunkwise-deps
  shift
  if [ ! -x "$vpy" ]; then
    "$PY" -m venv "$venv"
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$DEPS_HASH" ]; then
    return
  fi
  echo "[setup] installing torch and test dependencies into $venv" >&2
  pip_install "$vpy" --upgrade pip
  pip_install "$vpy" "$@"
  pip_install "$vpy" "pytest>=8" "ruff>=0.6" "numpy>=1.25" "pillow>=9" "safetensors>=0.4.2" \
    "open_clip_torch>=2.24" "diffusers>=0.32" "accelerate>=0.30" "ray>=2.40"
  pip_install "$vpy" --no-deps -e .  # package chunkwise + the chunkwise command
  # Every optional backend the tests cover must import, or the stamp is not written and set-up runs again.
  "$vpy" -c "import torch, torchvision, open_clip, diffusers, accelerate, pytest, chunkwise.search" >/dev/null
  echo "$DEPS_HASH" > "$stamp"
}

if [ -n "${CHUNKWISE_COMFY:-}" ]; then
  HOSTS=${CHUNKWISE_COMFY//,/ }
elif [ -n "${COMFYUI_DIR:-}" ]; then
  HOSTS=0.3.75
else
  HOSTS=$("$PY" scripts/comfy_host.py --list)
fi
for host in $HOSTS; do
  venv=$("$PY" scripts/comfy_host.py --host "$host" --venv)
  # shellcheck disable=SC2086  # the package lists split into words on purpose
  case "$host" in
    0.3.75) setup_venv "$venv" $TORCH ;;  # torchaudio stays optional there (two audio node files fail to import)
    *) setup_venv "$venv" $TORCH $TORCHAUDIO ;;
  esac
  # The ComfyUI test host (or COMFYUI_DIR) and its requirements, in that venv.
  "$venv/bin/python" scripts/comfy_host.py --host "$host" >/dev/null
done
