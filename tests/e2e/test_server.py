"""Tier 3: the pack loads in a real ComfyUI server and shows its nodes and workflows."""

from __future__ import annotations

import json

from chunkwise.tests.e2e.tiny_prompts import TESTPACK_NAME, WORKFLOWS

PACK_NODES = [
    "ChunkwiseNoiseCandidates",
    "ChunkwiseKStepPreview",
    "ChunkwiseClipMinCosineScore",
    "ChunkwiseSelectBestNoise",
    "ChunkwiseFullDenoise",
    "ChunkwiseChunkLoop",
    "ChunkwiseI2VSVD",
    "ChunkwiseI2VWan",
]
DISPLAY_NAMES = {
    "ChunkwiseNoiseCandidates": "NoiseCandidates",
    "ChunkwiseKStepPreview": "KStepPreview",
    "ChunkwiseClipMinCosineScore": "ClipMinCosineScore",
    "ChunkwiseSelectBestNoise": "SelectBestNoise",
    "ChunkwiseFullDenoise": "FullDenoise",
    "ChunkwiseChunkLoop": "ChunkLoop",
    "ChunkwiseI2VSVD": "I2V Model (SVD)",
    "ChunkwiseI2VWan": "I2V Model (Wan)",
}


def test_no_custom_node_import_failed(server):
    assert server.import_failures() == [], server.log_tail()
    loaded = [line for line in server.log_text().splitlines() if "seconds:" in line and "custom_nodes/" in line]
    for name in ("chunkwise", TESTPACK_NAME):
        assert any(line.rstrip().endswith("/" + name) for line in loaded), (name, loaded)


def test_object_info_lists_every_node(object_info):
    missing = [n for n in PACK_NODES if n not in object_info]
    assert not missing, f"/object_info lacks {missing}"
    for node_id, display in DISPLAY_NAMES.items():
        assert object_info[node_id]["display_name"] == display
        assert object_info[node_id]["description"], f"{node_id} has no description"


def test_every_pack_input_has_a_tooltip(object_info):
    bare = []
    for node_id, info in object_info.items():
        if info.get("python_module") != "custom_nodes.chunkwise":
            continue
        for group in ("required", "optional"):
            for name, spec in (info["input"].get(group) or {}).items():
                options = spec[1] if len(spec) > 1 else {}
                if not options.get("tooltip"):
                    bare.append(f"{node_id}.{name}")
    assert not bare, f"inputs without a tooltip: {bare}"


def test_workflow_templates_lists_the_bundled_workflows(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates.get("chunkwise", [])) == sorted(WORKFLOWS), templates
    for name in WORKFLOWS:
        served = server.get(f"/api/workflow_templates/chunkwise/{name}.json")
        if isinstance(served, (bytes, str)):
            served = json.loads(served)
        assert served["version"] == 0.4 and served["nodes"], name
