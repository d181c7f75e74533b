"""Tier 3: workflows saved while ChunkLoop had its options as inputs of its own still load and run.

The fixtures in ``tests/e2e/data/legacy`` are the long-video workflows as they were bundled then.
API format: ComfyUI hands a V3 node only the inputs its schema declares, so ChunkLoop reads the
saved options from the prompt and runs with them (or refuses them, naming the Search Options
node). UI format: the editor assigns ``widgets_values`` by position, so ChunkLoop's kept widgets
are a prefix of the old ones and every saved value lands on the widget it was saved from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from chunkwise.scripts import make_workflows as mw
from chunkwise.scripts.comfy_server import ComfyServerError
from chunkwise.tests.e2e.tiny_prompts import TinySettings, frames_of, node_id, report_of

LEGACY = Path(__file__).resolve().parent / "data" / "legacy"
LEGACY_API = LEGACY / "api"
LONG = ("chunkwise_svd_long_video", "chunkwise_wan21_i2v_long_video", "chunkwise_wan22_i2v_long_video")
WAN21 = "chunkwise_wan21_i2v_long_video"
LOOP, OPTIONS = "ChunkwiseChunkLoop", "ChunkwiseSearchOptions"


def legacy_prompt(tiny_prompt, name, settings=None, **loop_inputs):
    return tiny_prompt(name, settings or TinySettings(), api_dir=LEGACY_API, inputs={LOOP: loop_inputs})


@pytest.mark.parametrize("name", LONG)
def test_a_saved_api_workflow_runs_as_the_bundled_one_does(name, server, tiny_prompt):
    settings = TinySettings(seed=3, prefix="chunkwise_e2e_legacy")
    old_prompt = legacy_prompt(tiny_prompt, name, settings)
    assert "colour_anchor" in old_prompt[node_id(old_prompt, LOOP)]["inputs"]  # the old ChunkLoop's inputs
    old = server.run(old_prompt, timeout=600)
    new_prompt = tiny_prompt(name, settings)
    new = server.run(new_prompt, timeout=600)
    assert torch.equal(frames_of(server, old), frames_of(server, new))
    old_report, new_report = report_of(old, old_prompt), report_of(new, new_prompt)
    assert old_report["settings"] == new_report["settings"]
    assert [c["candidates"] for c in old_report["chunks"]] == [c["candidates"] for c in new_report["chunks"]]


def test_saved_options_that_are_not_off_run_as_on_a_search_options_node(server, tiny_prompt):
    saved = {"colour_anchor": 0.5, "colour_method": "rgb", "candidate_batch": 2, "preview_frame_stride": 2}
    old_prompt = legacy_prompt(tiny_prompt, WAN21, **saved)
    old = server.run(old_prompt, timeout=600)
    settings = report_of(old, old_prompt)["settings"]
    assert settings["colour_anchor"] == 0.5 and settings["colour_method"] == "rgb"
    assert settings["cost"]["candidate_batch"] == 2 and settings["cost"]["preview_stride"] == 2
    assert "saved before they moved to the Search Options node" in server.log_text()
    new_prompt = tiny_prompt(WAN21, inputs={OPTIONS: saved})
    new = server.run(new_prompt, timeout=600)
    assert torch.equal(frames_of(server, old), frames_of(server, new))
    assert report_of(new, new_prompt)["settings"] == settings


def test_a_saved_option_that_cannot_run_fails_naming_search_options(server, tiny_prompt):
    # ComfyUI validates only declared inputs: the saved value passes the queue and fails as ChunkLoop starts.
    with pytest.raises(ComfyServerError) as err:
        server.run(legacy_prompt(tiny_prompt, WAN21, candidate_batch=0), timeout=300)
    message = str(err.value)
    assert LOOP in message and "candidate_batch must be between 1 and 64, got 0" in message
    assert "Search Options" in message

    # A saved value that is not off beside a connected Search Options node: two places would set the run.
    prompt = legacy_prompt(tiny_prompt, WAN21, colour_anchor=0.5)
    prompt["950"] = {"class_type": OPTIONS, "inputs": {"colour_anchor": 0.25}}
    prompt[node_id(prompt, LOOP)]["inputs"]["options"] = ["950", 0]
    with pytest.raises(ComfyServerError, match="Search Options node on its options input"):
        server.run(prompt, timeout=300)


def test_the_options_conflict_is_refused_when_queued(server, tiny_prompt):
    with pytest.raises(ComfyServerError) as err:
        server.queue(tiny_prompt(WAN21, inputs={OPTIONS: {"early_accept": True, "halving_k": 1}}))
    assert OPTIONS in str(err.value) and "cannot be combined" in str(err.value)
    with pytest.raises(ComfyServerError, match="candidate_batch"):
        server.queue(tiny_prompt(WAN21, inputs={OPTIONS: {"candidate_batch": 0}}))


def _layout(info: dict) -> list[str]:
    """Widget value names in the order the editor stores ``widgets_values`` (seed's control after it)."""
    names = []
    for item in mw.node_inputs(info):
        if item.is_widget:
            names.append(item.name)
            names.extend(f"{item.name}:extra" for _ in item.extra_widget_values("fixed"))
    return names


@pytest.mark.parametrize("name", LONG)
def test_a_saved_ui_workflow_puts_every_kept_value_on_its_own_widget(name, object_info):
    old_info = json.loads((LEGACY / "chunk_loop_object_info.json").read_text())[LOOP]
    old_layout, new_layout = _layout(old_info), _layout(object_info[LOOP])
    assert len(object_info[LOOP]["input_order"]["required"]) + len(object_info[LOOP]["input_order"]["optional"]) <= 14
    assert new_layout == old_layout[: len(new_layout)], "the kept widgets must stay a prefix in the old order"
    options = {i.name: i for i in mw.node_inputs(object_info[OPTIONS])}
    old_inputs = {i.name: i for i in mw.node_inputs(old_info)}
    old_sockets = [i.name for i in old_inputs.values() if not i.is_widget]
    new_sockets = [i.name for i in mw.node_inputs(object_info[LOOP]) if not i.is_widget]
    assert new_sockets[: len(old_sockets)] == old_sockets, "saved links name their input by slot index"

    workflow = json.loads((LEGACY / "ui" / f"{name}.json").read_text())
    (node,) = [n for n in workflow["nodes"] if n["type"] == LOOP]
    saved = dict(zip(old_layout, node["widgets_values"], strict=True))
    loaded = dict(zip(new_layout, node["widgets_values"], strict=False))  # what the editor assigns, by position
    assert loaded == {key: saved[key] for key in new_layout}
    # What no ChunkLoop widget takes any more has a Search Options widget of the same kind, and these
    # files saved them off (accept_score 0 was off; early accept is now off by default).
    for key in old_layout[len(new_layout):]:
        assert key in options, f"{key} has no Search Options widget"
        assert options[key].type_name == old_inputs[key].type_name and options[key].choices == old_inputs[key].choices
        off = 0.0 if key == "accept_score" else options[key].default()
        assert saved[key] == off, (key, saved[key])
    assert options["early_accept"].default() is False
    for link_id, _src, _src_slot, dst, slot, _type in workflow["links"]:
        if dst == node["id"]:
            assert node["inputs"][slot]["link"] == link_id and node["inputs"][slot]["name"] == new_sockets[slot]
