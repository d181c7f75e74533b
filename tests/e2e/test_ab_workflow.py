"""Tier 3: the A/B workflows over HTTP: naive and search from one image and seed, both evaluated and compared."""

from __future__ import annotations

import json

import pytest
from chunkwise.tests.e2e.tiny_prompts import TinySettings


def _by_title(prompt: dict, title: str) -> str:
    (found,) = [k for k, v in prompt.items() if v["_meta"]["title"] == title]
    return found


@pytest.mark.parametrize("name", ["chunkwise_wan21_i2v_ab", "chunkwise_toy_world_ab"])
def test_ab_workflow_returns_both_evaluations_the_comparison_chart_and_three_videos(server, tiny_prompt, name):
    s = TinySettings(chunks=2, candidates=2)
    frames = s.wan_length
    inputs = {"ChunkwiseEvaluate": {"frames_per_chunk": frames}}
    if name == "chunkwise_toy_world_ab":
        inputs["ChunkwiseToyWorld"] = {"width": 32, "height": 24, "length": frames, "steps": 2}
    prompt = tiny_prompt(name, s, inputs=inputs)
    naive = prompt[_by_title(prompt, "ChunkLoop: naive (no search)")]["inputs"]
    search = prompt[_by_title(prompt, "ChunkLoop: k-step noise search")]["inputs"]
    assert naive["seed"] == search["seed"] and naive["image"] == search["image"] and naive["search"] is False
    entry = server.run(prompt, timeout=600)
    out = entry["outputs"]

    # 1. Both evaluations (chunkwise.eval/1), one row per chunk, labelled.
    evaluations = {}
    for role in ("naive", "search"):
        (text,) = out[_by_title(prompt, f"Evaluation: {role}")]["text"]
        evaluations[role] = json.loads(text)
        assert evaluations[role]["format"] == "chunkwise.eval/1" and len(evaluations[role]["chunks"]) == 2
    assert evaluations["naive"]["label"] == "naive" and evaluations["search"]["label"] == "search m=4"
    if name == "chunkwise_wan21_i2v_ab":  # clip_vision_h (here the tiny one) feeds background and embedding drift
        assert evaluations["search"]["dimensions"]["background_consistency"]["computed"]
        assert evaluations["search"]["chunks"][1]["drift"]["embedding"] is not None

    # 2. The comparison's chart and summary, and three videos (naive, search, side by side).
    (plot,) = out[_by_title(prompt, "Naive vs search")]["images"]
    assert server.output_path(plot).stat().st_size > 1000
    (summary,) = out[_by_title(prompt, "Comparison")]["text"]
    assert "b = 'search m=4' minus a = 'naive'" in summary
    videos = [out[k]["images"][0] for k, v in prompt.items() if v["class_type"] == "SaveVideo"]
    assert len(videos) == 3 and all(server.output_path(v).stat().st_size > 0 for v in videos)
