"""Tier 2: the ComfyUI hooks show a per-chunk summary on the node while a run goes on; the scorer choice."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pytest
import torch
from chunkwise.nodes.plumbing import SUMMARY_LINES, comfy_hooks, resolve_scorer
from chunkwise.scorers import ClipMinCosine, MotionGuard
from chunkwise.search.errors import ChunkwiseError
from chunkwise.tests.comfy import tiny


class FakeServer:
    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def send_progress_text(self, text, node_id, sid=None):
        self.texts.append((text, node_id))


def record(index, scores, chosen):
    return SimpleNamespace(index=index, chosen=chosen, chosen_seed=1000000 * index + chosen,
                           candidates=[{"score": s} for s in scores], nfe={"preview": 2 * len(scores), "full": 6},
                           seconds={"preview": 1.0, "full": 0.5})


def test_each_finished_chunk_adds_a_line_to_the_nodes_text(monkeypatch):
    server = FakeServer()
    module = ModuleType("server")
    module.PromptServer = SimpleNamespace(instance=server)
    monkeypatch.setitem(sys.modules, "server", module)
    hooks = comfy_hooks(10, node_id="7")
    frames = torch.rand(3, 8, 8, 3)
    hooks.on_chunk(record(0, [0.5, 0.75], 1), frames)
    hooks.on_chunk(record(1, [None], 0), frames)
    assert [node for _, node in server.texts] == ["7", "7"]
    assert server.texts[-1][0] == ("chunk 0: winner 1 (seed 1) of [0.5000 0.7500], nfe 4+6, 1.5s\n"
                                   "chunk 1: winner 0 (seed 1000000) of [-], nfe 2+6, 1.5s")
    for i in range(2, SUMMARY_LINES + 5):
        hooks.on_chunk(record(i, [0.1], 0), frames)
    shown = server.texts[-1][0].splitlines()
    assert len(shown) == SUMMARY_LINES and shown[-1].startswith(f"chunk {SUMMARY_LINES + 4}:")


def test_without_a_server_or_node_id_nothing_is_sent(monkeypatch):
    server = FakeServer()
    module = ModuleType("server")
    module.PromptServer = SimpleNamespace(instance=server)
    monkeypatch.setitem(sys.modules, "server", module)
    comfy_hooks(1, node_id=None).on_chunk(record(0, [0.2], 0), torch.rand(1, 4, 4, 3))
    assert server.texts == []
    monkeypatch.setitem(sys.modules, "server", None)  # no server module at all: no error either
    comfy_hooks(1, node_id="3").on_chunk(record(0, [0.2], 0), torch.rand(1, 4, 4, 3))


def test_a_scorer_wins_and_a_clip_vision_becomes_the_papers_min_cosine():
    clip_vision = tiny.tiny_clip_vision()
    guard = MotionGuard()
    assert resolve_scorer(clip_vision=clip_vision, scorer=guard) is guard
    scorer = resolve_scorer(clip_vision=clip_vision)
    assert isinstance(scorer, ClipMinCosine) and (scorer.anchor_weight, scorer.frame_stride) == (0.0, 1)
    g = torch.Generator().manual_seed(3)
    guide, preview = torch.rand(1, 28, 28, 3, generator=g), torch.rand(4, 28, 28, 3, generator=g)
    [result] = scorer.score(guide, [preview])
    embed = torch.nn.functional.normalize(clip_vision.encode_image(torch.cat([guide, preview])).image_embeds, dim=-1)
    assert result.frame_scores == pytest.approx((embed[1:] @ embed[0]).tolist(), abs=1e-5)
    assert result.score == pytest.approx(min(result.frame_scores))
    assert resolve_scorer(needed=False) is None
    with pytest.raises(ChunkwiseError, match="got neither clip_vision nor scorer; connect a CLIP_VISION"):
        resolve_scorer()
