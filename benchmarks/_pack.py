"""Import the repository as the package ``chunkwise`` from the benchmark scripts (as tests/conftest.py does):
a symlink ``.cache/pkgroot/chunkwise`` -> the repository root, put first on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def import_pack() -> None:
    parent = ROOT / ".cache" / "pkgroot"
    link = parent / "chunkwise"
    parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        try:
            os.symlink(ROOT, link, target_is_directory=True)
        except FileExistsError:
            pass
    if str(parent) not in sys.path:
        sys.path.insert(0, str(parent))
