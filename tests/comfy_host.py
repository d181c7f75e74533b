"""Put the ComfyUI test host on sys.path for in-process tests (tier 2).

The host is the one ``CHUNKWISE_COMFY`` names (0.3.75 or 0.28.2, default
0.3.75; scripts/comfy_host.py), or ``COMFYUI_DIR``. Tests only: the pack
itself never edits sys.path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from chunkwise.scripts import comfy_host

ROOT = Path(__file__).resolve().parent.parent


def comfy_root() -> Path:
    env = os.environ.get("COMFYUI_DIR")
    if env:
        return Path(env).resolve()
    host = comfy_host.get_host()
    if not host.stamp.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "comfy_host.py"), "--host", host.version],
                       check=True, stdout=subprocess.DEVNULL)
    return host.cache


def _check_interpreter() -> None:
    """A host named by CHUNKWISE_COMFY is imported only from its own venv (its own requirements)."""
    if os.environ.get("COMFYUI_DIR") or not os.environ.get(comfy_host.ENV_HOST):
        return
    host = comfy_host.get_host()
    if Path(sys.prefix).resolve() != host.venv.resolve():
        raise pytest.UsageError(
            f"{comfy_host.ENV_HOST}={host.version} runs tier 2 in {host.venv}, but this is {sys.prefix}; "
            f"run `{host.python.relative_to(ROOT)} -m pytest ...` (or `bash scripts/test.sh`)"
        )


def comfy_version() -> tuple:
    """The version of the ComfyUI test host (the tree both tiers run), e.g. (0, 28, 2); read, not imported."""
    text = (comfy_root() / "comfyui_version.py").read_text()
    found = re.search(r"__version__\s*=\s*[\"']([0-9.]+)", text)
    if not found:
        raise RuntimeError(f"no __version__ in {comfy_root() / 'comfyui_version.py'}")
    return tuple(int(part) for part in found.group(1).split(".")[:3])


def enable_in_process() -> Path:
    """Import ComfyUI in this process on the CPU (idempotent)."""
    _check_interpreter()
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
