"""Put the ComfyUI test host on sys.path for in-process tests (tier 2).

Tests only: the pack itself never edits sys.path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def comfy_root() -> Path:
    env = os.environ.get("COMFYUI_DIR")
    if env:
        return Path(env).resolve()
    host = ROOT / ".cache" / "comfyui"
    if not (host / ".chunkwise-host").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "comfy_host.py")], check=True, stdout=subprocess.DEVNULL)
    return host


def enable_in_process() -> Path:
    """Import ComfyUI in this process on the CPU (idempotent)."""
    root = comfy_root()
    if "comfy.model_management" in sys.modules:
        return root
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    saved = sys.argv
    sys.argv = [saved[0], "--cpu"]
    try:
        import comfy.options

        comfy.options.enable_args_parsing()
        import comfy.model_management  # noqa: F401  (picks the CPU device now)
    finally:
        sys.argv = saved
    return root
