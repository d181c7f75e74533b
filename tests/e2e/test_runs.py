"""Tier 3: the bundled API workflows run over HTTP on a real server with tiny models."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from chunkwise.scripts import make_workflows as mw
from chunkwise.tests.comfy_host import comfy_version
from chunkwise.tests.e2e.tiny_prompts import TinySettings, frames_of, node_id, report_of

LONG = ("chunkwise_svd_long_video", "chunkwise_wan21_i2v_long_video", "chunkwise_wan22_i2v_long_video",
        "chunkwise_wan22_5b_ti2v_long_video", "chunkwise_cosmos_predict2_i2v_long_video", "chunkwise_ltxv_i2v_long_video",
        "chunkwise_kandinsky5_i2v_long_video")


def _saved_video(server, entry: dict, prompt: dict):
    items = entry["outputs"].get(node_id(prompt, "SaveVideo"), {}).get("images") or []
    assert len(items) == 1, entry["outputs"]
    path = server.output_path(items[0])
    assert path.suffix == ".mp4" and path.stat().st_size > 0, path
    return path


def _cached_nodes(entry: dict) -> list:
    return [n for event, data in entry["status"]["messages"] if event == "execution_cached" for n in data["nodes"]]


def test_single_chunk_workflow_runs(server, tiny_prompt):
    settings = TinySettings(candidates=3)
    prompt = tiny_prompt("chunkwise_svd_single_chunk", settings)
    entry = server.run(prompt, timeout=600)
    frames = frames_of(server, entry)
    assert frames.shape == (settings.svd_frames, settings.svd_size[1], settings.svd_size[0], 3)
    assert torch.isfinite(frames).all() and frames.std() > 0
    _saved_video(server, entry, prompt)
    # ClipMinCosineScore shows every candidate's score, the winner marked.
    summary = entry["outputs"][node_id(prompt, "ChunkwiseClipMinCosineScore")]["text"][0]
    assert summary.count("*") == 1, summary


@pytest.mark.parametrize("name", LONG)
def test_long_video_workflow_runs(name, server, tiny_prompt):
    made_on = mw.GRAPHS[name].made_on
    if comfy_version() < made_on:
        pytest.skip(f"{name} needs ComfyUI {'.'.join(map(str, made_on))} (this host: "
                    f"{'.'.join(map(str, comfy_version()))})")
    settings = TinySettings(chunks=2 if "svd" in name or "kandinsky5" in name else 3, candidates=3)
    prompt = tiny_prompt(name, settings)
    entry = server.run(prompt, timeout=600)

    # 1. Frames: chunks x frames per chunk, minus the first frame of every chunk after the first.
    frames = frames_of(server, entry)
    per_chunk = settings.frames_per_chunk(name)
    width, height = settings.size(name)
    assert frames.shape == (settings.chunks * per_chunk - (settings.chunks - 1), height, width, 3)
    assert torch.isfinite(frames).all()
    _saved_video(server, entry, prompt)

    # 2. The report: m candidates per chunk, the chosen one is the argmax of the scores.
    report = report_of(entry, prompt)
    assert len(report["chunks"]) == settings.chunks
    assert report["totals"]["frames"] == frames.shape[0]
    for chunk in report["chunks"]:
        scores = [c["score"] for c in chunk["candidates"]]
        assert len(scores) == settings.candidates
        assert chunk["chosen"] == max(range(len(scores)), key=scores.__getitem__)
        assert chunk["chosen_seed"] == chunk["candidates"][chunk["chosen"]]["seed"]
        assert chunk["nfe"] == {"preview": settings.candidates * settings.k, "full": settings.steps}


def test_same_seed_gives_identical_frames(server, tiny_prompt):
    name = "chunkwise_wan21_i2v_long_video"
    prompt = tiny_prompt(name, seed=11)
    first = frames_of(server, server.run(prompt, timeout=600))
    server.free()  # drop the executor's caches: the second run really samples again
    entry = server.run(tiny_prompt(name, seed=11), timeout=600)
    assert node_id(prompt, "ChunkwiseChunkLoop") not in _cached_nodes(entry), "the second run came from the cache"
    again = frames_of(server, entry)
    assert torch.equal(first, again)
    other = frames_of(server, server.run(tiny_prompt(name, seed=12), timeout=600))
    assert other.shape == first.shape and not torch.equal(first, other)


@pytest.mark.parametrize(
    "loop_inputs, expected",
    [
        # Truncated previews: the winner resumes at step k, so its full run costs s - k.
        ({"preview_mode": "truncated"}, {"candidates": 3, "nfe": {"preview": 3 * 2, "full": 4 - 2}, "resume": True}),
        # Search off: the naive chain, one unscored noise per chunk, exactly s evaluations.
        ({"search": False}, {"candidates": 1, "nfe": {"preview": 0, "full": 4}, "resume": False}),
    ],
    ids=["truncated", "search-off"],
)
def test_loop_modes_cost_what_they_promise(loop_inputs, expected, server, tiny_prompt):
    name = "chunkwise_wan21_i2v_long_video"
    settings = TinySettings(steps=4, k=2, candidates=3)
    prompt = tiny_prompt(name, settings, inputs={"ChunkwiseChunkLoop": loop_inputs})
    entry = server.run(prompt, timeout=600)
    assert frames_of(server, entry).shape[0] == settings.chunks * settings.wan_length - (settings.chunks - 1)
    report = report_of(entry, prompt)
    assert report["settings"]["resume"] is expected["resume"]
    for chunk in report["chunks"]:
        assert len(chunk["candidates"]) == expected["candidates"]
        assert chunk["nfe"] == expected["nfe"]
        if expected["candidates"] == 1:
            assert chunk["candidates"][0]["score"] is None


def test_winner_seed_replays_in_a_stock_ksampler(server, tiny_prompt):
    """SelectBestNoise's seed output, fed to a plain KSampler, gives FullDenoise's frames."""
    settings = TinySettings(candidates=3, seed=21, prefix="chunkwise_e2e_replay")
    prompt = tiny_prompt("chunkwise_svd_single_chunk", settings)
    full = prompt[node_id(prompt, "ChunkwiseFullDenoise")]["inputs"]
    best = node_id(prompt, "ChunkwiseSelectBestNoise")
    decode = prompt[node_id(prompt, "VAEDecode")]["inputs"]
    prompt["950"] = {"class_type": "KSampler", "inputs": {
        "model": full["model"], "positive": full["positive"], "negative": full["negative"],
        "latent_image": full["latent"], "seed": [best, 1], "steps": full["steps"], "cfg": full["cfg"],
        "sampler_name": full["sampler_name"], "scheduler": full["scheduler"], "denoise": 1.0}}
    prompt["951"] = {"class_type": "VAEDecode", "inputs": {"samples": ["950", 0], "vae": decode["vae"]}}
    prompt["952"] = {"class_type": "ChunkwiseTestSaveTensor",
                     "inputs": {"images": ["951", 0], "filename_prefix": "chunkwise_e2e_replay/ksampler"}}
    entry = server.run(prompt, timeout=600)
    saved = {}
    for nid in ("900", "952"):
        (item,) = entry["outputs"][nid]["tensors"]
        saved[nid] = safetensors.torch.load_file(str(server.output_path(item)))["images"]
    assert saved["900"].shape == saved["952"].shape
    torch.testing.assert_close(saved["952"], saved["900"], rtol=0, atol=1e-5)
