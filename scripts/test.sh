#!/usr/bin/env bash
# The whole test suite on CPU: set-up (idempotent), then tier 1 once and tiers 2 and 3 on each
# ComfyUI test host (0.3.75 in .venv, 0.28.2 in .venv-comfy-0.28.2; scripts/comfy_host.py).
# Extra arguments go to every pytest run (e.g. -k resume, -x, tests/comfy/test_schema.py).
# CHUNKWISE_COMFY="0.28.2" runs tiers 2 and 3 on that host only; COMFYUI_DIR (your own ComfyUI)
# runs them once, on it, in .venv. Exits non-zero when a run fails, or when no run ran a test
# (pytest's exit 5 in one run is fine while another ran tests). The output ends with each
# run's own pytest summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PY=${PYTHON:-python3}
if [ -n "${CHUNKWISE_COMFY:-}" ]; then
  HOSTS=${CHUNKWISE_COMFY//,/ }
elif [ -n "${COMFYUI_DIR:-}" ]; then
  HOSTS=0.3.75
else
  HOSTS=$("$PY" scripts/comfy_host.py --list)
fi

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
NAMES=() CODES=()
# run NAME PYTHON TIERS [ENV=VALUE...]: one pytest run over the given tiers (tests/conftest.py reads
# CHUNKWISE_TIERS), its output shown as it goes and kept for the closing summary.
run() {
  local name=$1 python=$2 tiers=$3 rc=0 n=${#NAMES[@]}
  shift 3
  echo "[test] $name" >&2
  env CHUNKWISE_TIERS="$tiers" "$@" "$python" -m pytest "${ARGS[@]}" 2>&1 | tee "$LOGS/$n.log" || rc=${PIPESTATUS[0]}
  NAMES+=("$name") CODES+=("$rc")
}
ARGS=("$@")
first=${HOSTS%% *}
run "tier 1 (pure)" "$("$PY" scripts/comfy_host.py --host "$first" --venv)/bin/python" pure
for host in $HOSTS; do
  venv=$("$PY" scripts/comfy_host.py --host "$host" --venv)
  if [ -n "${COMFYUI_DIR:-}" ] && [ -z "${CHUNKWISE_COMFY:-}" ]; then
    run "tiers 2 and 3 on COMFYUI_DIR=$COMFYUI_DIR" "$venv/bin/python" comfy,e2e
  else
    run "tiers 2 and 3 on ComfyUI $host" "$venv/bin/python" comfy,e2e CHUNKWISE_COMFY="$host"
  fi
done

# The verdict: a failed run fails the whole; pytest's exit 5 (nothing collected, e.g. -k matching only
# other tiers or hosts) is fine while another run ran tests. Then each run's own summary line.
failed=0 ran=0
for code in "${CODES[@]}"; do
  case "$code" in
    0) ran=1 ;;
    5) ;;
    *) failed=1 ;;
  esac
done
if [ "$failed" -eq 0 ] && [ "$ran" -eq 0 ]; then
  echo "[test] no run ran a test"
fi
for i in "${!NAMES[@]}"; do
  echo "[test] ${NAMES[$i]}: exit ${CODES[$i]}"
  tail -n 1 "$LOGS/$i.log"
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
if [ "$ran" -eq 0 ]; then
  exit 5
fi
