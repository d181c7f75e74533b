"""The pack's import is light: ComfyUI imports it at start-up, so it must do no work and pull in nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PKG_PARENT = Path(__file__).resolve().parents[2] / ".cache" / "pkgroot"


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PKG_PARENT, capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_importing_the_pack_imports_neither_torch_nor_comfy():
    loaded = run_python(
        "import sys, chunkwise; print(sorted(m for m in ('torch', 'comfy', 'comfy_api', 'PIL', 'chunkwise.nodes') "
        "if m in sys.modules))"
    )
    assert loaded == "[]"


def test_the_pack_does_not_edit_sys_path():
    assert run_python("import sys; before = list(sys.path); import chunkwise; print(sys.path == before)") == "True"


def test_the_entry_point_is_the_only_export():
    public = run_python("import chunkwise; print(sorted(n for n in vars(chunkwise) if not n.startswith('_')))")
    assert public == "['comfy_entrypoint']"
    assert run_python("import inspect, chunkwise; print(inspect.iscoroutinefunction(chunkwise.comfy_entrypoint))") == "True"
