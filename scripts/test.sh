#!/usr/bin/env bash
# The whole test suite, all three tiers, on CPU: set-up (idempotent) then pytest.
# Extra arguments go to pytest (e.g. -m pure, -k resume).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
