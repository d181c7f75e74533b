"""Shared test set-up: import the pack as the package ``chunkwise``.

Test helpers are imported through the package too (``chunkwise.tests.pure.toys``).

The repository root is the pack (ComfyUI loads it from custom_nodes/ by folder
name), so tests link it under a fixed package name in an ignored folder and
import ``chunkwise.search`` etc. Never a bare ``import nodes``: that is ComfyUI's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG_PARENT = ROOT / ".cache" / "pkgroot"


def _link_package() -> None:
    link = PKG_PARENT / "chunkwise"
    PKG_PARENT.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        try:
            os.symlink(ROOT, link, target_is_directory=True)
        except FileExistsError:
            pass
    if str(PKG_PARENT) not in sys.path:
        sys.path.insert(0, str(PKG_PARENT))


_link_package()


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        tier = parts[0] if len(parts) > 1 else "pure"
        marker = {"pure": "pure", "comfy": "comfy", "e2e": "e2e"}.get(tier)
        if marker:
            item.add_marker(getattr(pytest.mark, marker))
