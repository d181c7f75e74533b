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


TIER_DIRS = {"pure": "pure", "comfy": "comfy", "e2e": "e2e"}  # folder under tests/ -> tier marker


def pytest_ignore_collect(collection_path, config):
    """``CHUNKWISE_TIERS=pure`` (or ``comfy,e2e``): collect only those tiers' folders, not even importing
    the others (scripts/test.sh runs tier 1 once and tiers 2 and 3 once per ComfyUI host)."""
    tiers = os.environ.get("CHUNKWISE_TIERS")
    if not tiers:
        return None
    try:
        parts = Path(collection_path).resolve().relative_to(ROOT / "tests").parts
    except ValueError:
        return None
    if parts and parts[0] in TIER_DIRS and TIER_DIRS[parts[0]] not in tiers.split(","):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    tiers = os.environ.get("CHUNKWISE_TIERS")
    kept, dropped = [], []
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        marker = TIER_DIRS.get(parts[0] if len(parts) > 1 else "pure")
        if marker:
            item.add_marker(getattr(pytest.mark, marker))
        (dropped if tiers and marker not in tiers.split(",") else kept).append(item)
    if dropped:  # files named on the command line bypass pytest_ignore_collect
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
