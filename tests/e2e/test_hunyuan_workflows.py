"""Tier 3: the bundled HunyuanVideo workflows run over HTTP on a real server with tiny models.

test_runs.py sizes its checks by the SVD/Wan workflow names; these run the same checks for the HunyuanVideo
workflows (whose tiny prompts use the Wan sizes: 32x32, 5 frames per chunk).
"""

from __future__ import annotations

import pytest
import torch
from chunkwise.tests.e2e.tiny_prompts import TinySettings, frames_of, node_id, report_of

V2 = {"ChunkwiseI2VHunyuanVideo": {"guidance_type": "v2 (replace)"},
      "ChunkwiseTestHunyuanModel": {"guidance_type": "v2 (replace)"}}
"""The HunyuanVideo workflow with the v2 (replace) model: the binding's guidance_type and the model file."""
RUNS = [("chunkwise_hunyuan15_i2v_long_video", {}), ("chunkwise_hunyuan_i2v_long_video", {}),
        ("chunkwise_hunyuan_i2v_long_video", V2)]


@pytest.mark.parametrize("name, inputs", RUNS, ids=["hunyuan15", "hunyuan-v1", "hunyuan-v2"])
@pytest.mark.parametrize("mode", ["short schedule", "truncated"])
def test_hunyuan_long_video_workflow_runs(name, inputs, mode, server, tiny_prompt):
    settings = TinySettings(chunks=2, candidates=3, steps=3, k=1, prefix=f"chunkwise_e2e_{mode.split()[0]}")
    prompt = tiny_prompt(name, settings, inputs={"ChunkwiseChunkLoop": {"preview_mode": mode}, **inputs})
    entry = server.run(prompt, timeout=600)

    # 1. Frames: chunks x frames per chunk, minus the first frame of every chunk after the first.
    frames = frames_of(server, entry)
    width, height = settings.wan_size
    assert frames.shape == (settings.chunks * settings.wan_length - (settings.chunks - 1), height, width, 3)
    assert torch.isfinite(frames).all() and frames.std() > 0
    video = entry["outputs"].get(node_id(prompt, "SaveVideo"), {}).get("images") or []
    assert len(video) == 1 and server.output_path(video[0]).stat().st_size > 0

    # 2. The report: m candidates per chunk, the chosen one is the argmax; NFE m*k + s (m*k + s - k resumed).
    report = report_of(entry, prompt)
    assert len(report["chunks"]) == settings.chunks and report["totals"]["frames"] == frames.shape[0]
    full = settings.steps - (settings.k if mode == "truncated" else 0)
    for chunk in report["chunks"]:
        scores = [c["score"] for c in chunk["candidates"]]
        assert len(scores) == settings.candidates
        assert chunk["chosen"] == max(range(len(scores)), key=scores.__getitem__)
        assert chunk["chosen_seed"] == chunk["candidates"][chunk["chosen"]]["seed"]
        assert chunk["nfe"] == {"preview": settings.candidates * settings.k, "full": full}
