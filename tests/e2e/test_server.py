"""Tier 3: the pack loads in a real ComfyUI server and shows its nodes and workflows."""

from __future__ import annotations

import json
import time

import pytest
from chunkwise.scripts.comfy_server import FREE_BARRIER, ComfyServerError
from chunkwise.tests.e2e.tiny_prompts import TESTPACK_NAME, WORKFLOWS, node_id

PACK_NODES = [
    "ChunkwiseNoiseCandidates",
    "ChunkwiseKStepPreview",
    "ChunkwiseClipMinCosineScore",
    "ChunkwiseSelectBestNoise",
    "ChunkwiseFullDenoise",
    "ChunkwiseChunkLoop",
    "ChunkwiseSearchOptions",
    "ChunkwiseI2VSVD",
    "ChunkwiseI2VWan",
    "ChunkwiseI2VWan22TI2V",
    "ChunkwiseI2VCosmosPredict2",
]
DISPLAY_NAMES = {
    "ChunkwiseNoiseCandidates": "NoiseCandidates",
    "ChunkwiseKStepPreview": "KStepPreview",
    "ChunkwiseClipMinCosineScore": "ClipMinCosineScore",
    "ChunkwiseSelectBestNoise": "SelectBestNoise",
    "ChunkwiseFullDenoise": "FullDenoise",
    "ChunkwiseChunkLoop": "ChunkLoop",
    "ChunkwiseSearchOptions": "Search Options",
    "ChunkwiseI2VSVD": "I2V Model (SVD)",
    "ChunkwiseI2VWan": "I2V Model (Wan)",
    "ChunkwiseI2VWan22TI2V": "I2V Model (Wan 2.2 5B TI2V)",
    "ChunkwiseI2VCosmosPredict2": "I2V Model (Cosmos Predict2)",
}


def test_no_custom_node_import_failed(server):
    assert server.import_failures() == [], server.log_tail()
    loaded = [line for line in server.log_text().splitlines() if "seconds:" in line and "custom_nodes/" in line]
    for name in ("chunkwise", TESTPACK_NAME):
        assert any(line.rstrip().endswith("/" + name) for line in loaded), (name, loaded)


def test_object_info_lists_every_node(object_info):
    missing = [n for n in PACK_NODES if n not in object_info]
    assert not missing, f"/object_info lacks {missing}"
    for kind, display in DISPLAY_NAMES.items():
        assert object_info[kind]["display_name"] == display
        assert object_info[kind]["description"], f"{kind} has no description"


def test_every_pack_input_has_a_tooltip(object_info):
    bare = []
    for kind, info in object_info.items():
        if info.get("python_module") != "custom_nodes.chunkwise":
            continue
        for group in ("required", "optional"):
            for name, spec in (info["input"].get(group) or {}).items():
                options = spec[1] if len(spec) > 1 else {}
                if not options.get("tooltip"):
                    bare.append(f"{kind}.{name}")
    assert not bare, f"inputs without a tooltip: {bare}"


def test_workflow_templates_lists_the_bundled_workflows(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates.get("chunkwise", [])) == sorted(WORKFLOWS), templates
    for name in WORKFLOWS:
        served = server.get(f"/api/workflow_templates/chunkwise/{name}.json")
        if isinstance(served, (bytes, str)):
            served = json.loads(served)
        assert served["version"] == 0.4 and served["nodes"], name


def test_refused_prompt_names_the_node_and_the_value(server, tiny_prompt):
    with pytest.raises(ComfyServerError) as err:
        server.queue(tiny_prompt("chunkwise_wan21_i2v_long_video", chunks=0))
    assert "ChunkwiseChunkLoop" in str(err.value) and "got 0" in str(err.value)


def test_failed_prompt_raises_the_nodes_error(server, tiny_prompt):
    # k >= steps passes validation (steps come through the I2V link) and fails when ChunkLoop runs
    with pytest.raises(ComfyServerError) as err:
        server.run(tiny_prompt("chunkwise_wan21_i2v_long_video", k=2, steps=2), timeout=300)
    message = str(err.value)
    assert "ChunkwiseChunkLoop" in message and "k=2, steps=2" in message


def test_a_wan_length_that_is_not_4n_plus_1_is_refused_at_validation(server, tiny_prompt):
    with pytest.raises(ComfyServerError) as err:
        server.queue(tiny_prompt("chunkwise_wan21_i2v_long_video", wan_length=6))
    message = str(err.value)
    assert "ChunkwiseI2VWan" in message and "got 6" in message and "4*n + 1" in message


def test_interrupt_stops_a_running_prompt(server, tiny_prompt):
    prompt = tiny_prompt("chunkwise_wan21_i2v_long_video", chunks=50, seed=99)
    prompt_id = server.queue(prompt)
    deadline = time.monotonic() + 60
    while not server.get("/queue")["queue_running"]:
        assert time.monotonic() < deadline, "the prompt never started"
        time.sleep(0.1)
    server.interrupt(prompt_id)
    entry = server.wait(prompt_id, timeout=120, check=False)
    events = [event for event, _ in entry["status"]["messages"]]
    assert entry["status"]["status_str"] == "error" and "execution_interrupted" in events, events
    assert node_id(prompt, "ChunkwiseTestSaveTensor") not in entry["outputs"]
    with pytest.raises(ComfyServerError, match="interrupted"):
        server.wait(prompt_id, timeout=5)


def _cached(entry: dict) -> list:
    return sorted(n for event, data in entry["status"]["messages"] if event == "execution_cached" for n in data["nodes"])


def test_free_makes_the_next_identical_prompt_run_again(server):
    # ComfyUI's own nodes, unlike the barrier free() runs (2x2 here, 1x1 there).
    prompt = json.loads(json.dumps(FREE_BARRIER))
    prompt["1"]["inputs"].update(width=2, height=2, color=0x336699)
    server.run(prompt)
    assert _cached(server.run(prompt)) == ["1", "2"], "an identical prompt should come from the cache"
    for _ in range(3):
        server.free()
        assert _cached(server.run(prompt)) == [], "the prompt queued right after free() came from the cache"
