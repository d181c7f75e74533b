"""Tier 3: every bundled workflow fits the live node definitions of a real server.

The UI-format files (workflows/*.json) are what the editor loads: every node
type must exist, every link's type must match both ends, every node's
widgets_values must have the count the editor lays out. The API twins
(workflows/api/*.json) must be the same graph. And the files must be what
scripts/make_workflows.py makes from today's /object_info (not stale).

The files are made on the oldest supported host (ComfyUI 0.3.75, the default
test host) and must fit it exactly. On a newer host they must load as the
editor loads an older file: every saved slot is there with its type, at its
index (0.28.2 labels outputs by their id where 0.3.75 used the type name, so
labels are not compared); what the newer definition adds (CreateVideo's
``bit_depth`` in 0.28.2) is optional and trailing, so the editor fills it
with its default.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chunkwise.scripts import make_workflows as mw
from chunkwise.tests.comfy_host import comfy_version
from chunkwise.tests.e2e.tiny_prompts import WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent.parent
UI_DIR = ROOT / "workflows"
MADE_ON = (0, 3, 75)
"""The ComfyUI whose /object_info the bundled workflows are made from (the oldest supported)."""


def _exact(name: str = "") -> bool:
    return comfy_version() == (mw.GRAPHS[name].made_on if name else MADE_ON)


def _skip_on_an_older_host(name: str) -> None:
    made_on = mw.GRAPHS[name].made_on
    if comfy_version() < made_on:
        pytest.skip(f"{name} is made on ComfyUI {'.'.join(map(str, made_on))} (its nodes are not in "
                    f"{'.'.join(map(str, comfy_version()))})")


def _widget_count(widgets) -> int:
    return sum(1 + len(i.extra_widget_values("fixed")) for i in widgets)


def _loadable_counts(widgets, exact: bool) -> set:
    """Widget value counts a saved node may have: the full layout, or (a file saved on an older host) the
    layout without trailing optional widgets, which the editor fills with their defaults."""
    counts = {_widget_count(widgets)}
    while not exact and widgets and widgets[-1].optional:
        widgets = widgets[:-1]
        counts.add(_widget_count(widgets))
    return counts


def _ui(name: str) -> dict:
    return json.loads((UI_DIR / f"{name}.json").read_text())


def _api(name: str) -> dict:
    return json.loads((UI_DIR / "api" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_matches_object_info(name, object_info):
    _skip_on_an_older_host(name)
    wf, exact = _ui(name), _exact(name)
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes) == len(wf["nodes"]), "duplicate node ids"
    assert wf["last_node_id"] == max(nodes) and wf["last_link_id"] == max(lk[0] for lk in wf["links"])

    # 1. Every node type exists; widget counts are those the editor lays out from the definition.
    for node in wf["nodes"]:
        if node["type"] in mw.FRONTEND_ONLY:
            continue
        assert node["type"] in object_info, f"node {node['id']}: {node['type']} is not installed"
        inputs = mw.node_inputs(object_info[node["type"]])
        widgets = [i for i in inputs if i.is_widget]
        assert len(node["widgets_values"]) in _loadable_counts(widgets, exact), (
            node["type"], node["widgets_values"], [i.name for i in widgets])
        sockets = [i for i in inputs if not i.is_widget]
        saved = [i["name"] for i in node["inputs"]]
        assert saved == [i.name for i in sockets[:len(saved)]], node["type"]
        assert all(i.optional for i in sockets[len(saved):]) and (len(saved) == len(sockets) or not exact), node["type"]
        for spec, ui_input in zip(sockets, node["inputs"], strict=False):
            if not spec.optional:
                assert ui_input["link"] is not None, f"{node['type']}.{spec.name} is required but unconnected"
        outputs = mw.node_outputs(object_info[node["type"]])
        if exact:
            assert [(o["name"], o["type"]) for o in node["outputs"]] == outputs, node["type"]
        else:
            assert [o["type"] for o in node["outputs"]] == [t for _, t in outputs[:len(node["outputs"])]], node["type"]

    # 2. Every link's type matches its source output and its target input; both ends list the link.
    for link_id, src, src_slot, dst, dst_slot, type_ in wf["links"]:
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        assert out["type"] == type_, (link_id, out, type_)
        assert mw.types_match(type_, inp["type"]), (link_id, type_, inp)
        assert link_id in (out["links"] or []) and inp["link"] == link_id, link_id
        src_def = mw.node_outputs(object_info[nodes[src]["type"]])[src_slot][1]
        dst_def = next(i for i in mw.node_inputs(object_info[nodes[dst]["type"]]) if i.name == inp["name"])
        assert mw.types_match(src_def, dst_def.type_name), (link_id, src_def, dst_def.type_name)

    # 3. Loaders name their model files and say where to download them.
    for node in wf["nodes"]:
        models = node.get("properties", {}).get("models")
        if models:
            assert node["widgets_values"][0] == models[0]["name"]
            assert models[0]["url"].startswith("https://") and models[0]["directory"]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_api_twin_is_the_same_graph(name, object_info):
    _skip_on_an_older_host(name)
    ui, api, exact = _ui(name), _api(name), _exact(name)
    real = [n for n in ui["nodes"] if n["type"] not in mw.FRONTEND_ONLY]
    assert sorted(api) == sorted(str(n["id"]) for n in real)
    by_id = {n["id"]: n for n in ui["nodes"]}
    for node in real:
        entry = api[str(node["id"])]
        assert entry["class_type"] == node["type"]
        linked = {k: v for k, v in entry["inputs"].items() if isinstance(v, list)}
        expected = {}
        for lk in ui["links"]:
            if lk[3] == node["id"]:
                expected[by_id[lk[3]]["inputs"][lk[4]]["name"]] = [str(lk[1]), lk[2]]
        assert linked == expected, node["type"]
        widgets = [i for i in mw.node_inputs(object_info[node["type"]]) if i.is_widget]
        given = sorted(k for k in entry["inputs"] if k not in linked)
        if exact:
            assert given == sorted(i.name for i in widgets), node["type"]
        else:  # a newer host's added optional widgets take their defaults in POST /prompt
            assert set(given) <= {i.name for i in widgets}, node["type"]
            assert {i.name for i in widgets if not i.optional} <= set(given), node["type"]


def test_workflow_files_are_current(object_info):
    if comfy_version() not in {g.made_on for g in mw.GRAPHS.values()}:
        pytest.skip(f"the workflows are made from ComfyUI {'.'.join(map(str, MADE_ON))}'s /object_info (the oldest "
                    "supported host) so that they load on every newer one (Kandinsky 5's from 0.28.2's); "
                    "test_ui_workflow_matches_object_info checks that they load here")
    stale = [str(path.relative_to(ROOT)) for path, text in mw.render(object_info, comfy_version()).items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f"regenerate with `python scripts/make_workflows.py` (see its --made-on): {stale}"


def _stock_video_templates() -> list:
    """The stock video templates' JSON files, wherever the installed template packages keep them."""
    core = pytest.importorskip("comfyui_workflow_templates_core")
    return sorted(Path(core.get_asset_path(entry.template_id, asset.filename))
                  for entry in core.iter_templates() if entry.bundle == "media-video"
                  for asset in entry.assets if asset.filename.endswith(".json"))


def test_widget_layout_matches_the_editors_own_saved_templates(object_info):
    """The widget layout rule used above reproduces every stock template the editor saved (if installed),
    for the node types the bundled workflows use (the rule's domain: no V3 dynamic inputs there)."""
    ours = {n["type"] for name in WORKFLOWS for n in _ui(name)["nodes"]} - mw.FRONTEND_ONLY
    files = _stock_video_templates()
    checked = 0
    for path in files:
        data = json.loads(path.read_text())
        nodes = list(data.get("nodes", []))
        for sub in data.get("definitions", {}).get("subgraphs", []):
            nodes.extend(sub.get("nodes", []))
        for node in nodes:
            if node.get("type") not in ours or not isinstance(node.get("widgets_values"), list):
                continue
            widgets = [i for i in mw.node_inputs(object_info[node["type"]]) if i.is_widget]
            if not widgets:
                continue  # only the editor's own display widgets (PreviewAny's in newer editors)
            # Templates are saved by many editor versions: trailing optional widgets may be absent.
            assert len(node["widgets_values"]) in _loadable_counts(widgets, exact=False), (
                path.name, node["type"], node["widgets_values"])
            checked += 1
    assert checked > 100, f"only {checked} stock nodes checked in {len(files)} templates"


def test_generator_rejects_graphs_that_would_not_load(object_info):
    # A CLIP_VISION output into a MODEL input.
    g = mw.Graph("bad_link", "")
    ckpt = g.add("ImageOnlyCheckpointLoader", widgets={"ckpt_name": "svd_xt.safetensors"})
    g.add("VideoLinearCFGGuidance", model=ckpt[1])
    with pytest.raises(mw.WorkflowError, match="CLIP_VISION.*MODEL"):
        mw.build_ui(g, object_info)
    # A widget the node does not have.
    g = mw.Graph("bad_widget", "")
    g.add("ChunkwiseNoiseCandidates", widgets={"candidates": 4})
    with pytest.raises(mw.WorkflowError, match="no input 'candidates'"):
        mw.build_api(g, object_info)
    # A required socket left unconnected, and a combo value that is not an option.
    g = mw.Graph("unconnected", "")
    g.add("ChunkwiseNoiseCandidates", widgets={"count": 2})
    with pytest.raises(mw.WorkflowError, match="needs its input 'latent'"):
        mw.build_ui(g, object_info)
    g = mw.Graph("bad_combo", "")
    g.add("CLIPLoader", widgets={"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "sideways"})
    with pytest.raises(mw.WorkflowError, match="'sideways' is not one of"):
        mw.build_api(g, object_info)
