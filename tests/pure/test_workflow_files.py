"""The bundled workflow files: UI format directly in workflows/, their API twins in workflows/api/."""

from __future__ import annotations

import json
from pathlib import Path

from chunkwise.tests.e2e.tiny_prompts import WORKFLOWS

UI_DIR = Path(__file__).resolve().parent.parent.parent / "workflows"


def _ui(name: str) -> dict:
    return json.loads((UI_DIR / f"{name}.json").read_text())


def _api(name: str) -> dict:
    return json.loads((UI_DIR / "api" / f"{name}.json").read_text())


def test_only_ui_workflows_sit_directly_in_workflows():
    direct = sorted(p.stem for p in UI_DIR.glob("*.json"))
    assert direct == sorted(WORKFLOWS)
    for name in direct:
        data = _ui(name)
        assert {"nodes", "links", "version"} <= set(data), f"{name}.json is not in the editor's UI format"
    twins = sorted(p.stem for p in (UI_DIR / "api").glob("*.json"))
    assert twins == direct
    for name in twins:
        assert all("class_type" in node for node in _api(name).values()), f"api/{name}.json is not API format"
