"""Tier 3: long runs that lose nothing, on a real ComfyUI server over HTTP with tiny models.

A run streamed to a run folder, cancelled through ``POST /interrupt`` once chunk 2
of 5 is on disk and queued again, finishes with frames identical to an
uninterrupted run; bad input is refused before anything is written.
"""

from __future__ import annotations

import time

import pytest
import torch
from chunkwise.scripts.comfy_server import ComfyServerError
from chunkwise.search.runs import finished_chunks
from chunkwise.tests.e2e.tiny_prompts import TinySettings, frames_of, node_id, report_of

NAME = "chunkwise_wan21_i2v_long_video"
CHUNKS = 5
# Enough steps that a chunk takes a moment, so the interrupt lands before the run ends.
SETTINGS = dict(chunks=CHUNKS, candidates=2, k=1, steps=6, seed=21)


def streamed(tiny_prompt, run_name):
    inputs = {"ChunkwiseChunkLoop": {"run_name": run_name}, "ChunkwiseSearchOptions": {"on_existing": "resume"}}
    return tiny_prompt(NAME, TinySettings(**SETTINGS), inputs=inputs)


def test_cancel_after_chunk_2_of_5_then_requeue_gives_identical_frames(server, tiny_prompt):
    runs = server.dir("output") / "chunkwise"

    # 1. The uninterrupted run, streamed to its own folder.
    full_prompt = streamed(tiny_prompt, "e2e_straight")
    full_entry = server.run(full_prompt, timeout=600)
    full = frames_of(server, full_entry)
    full_report = report_of(full_entry, full_prompt)
    loop_out = full_entry["outputs"][node_id(full_prompt, "ChunkwiseChunkLoop")]
    assert loop_out["run_folder"][0].endswith("e2e_straight")
    assert finished_chunks(runs / "e2e_straight") == CHUNKS
    server.free()

    # 2. The same run under another name, cancelled once chunk 2 of 5 (index 1) is on disk.
    prompt = streamed(tiny_prompt, "e2e_cut")
    prompt_id = server.queue(prompt)
    deadline = time.monotonic() + 300
    while finished_chunks(runs / "e2e_cut") < 2:
        assert time.monotonic() < deadline, "chunk 2 never reached the run folder"
        assert server.history(prompt_id) is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    server.interrupt()
    entry = server.wait(prompt_id, timeout=300, check=False)
    events = [event for event, _ in entry["status"]["messages"]]
    assert "execution_interrupted" in events, events
    done = finished_chunks(runs / "e2e_cut")
    assert 2 <= done < CHUNKS  # every finished chunk kept, the run stopped early
    assert not (runs / "e2e_cut" / "report.json").exists()

    # 3. Queue it again: the finished chunks are skipped, the rest generated; identical frames.
    server.free()
    again_entry = server.run(streamed(tiny_prompt, "e2e_cut"), timeout=600)
    again = frames_of(server, again_entry)
    assert torch.equal(again, full)
    report = report_of(again_entry, prompt)
    assert report["restored_chunks"] == done and len(report["chunks"]) == CHUNKS
    assert [c["chosen_seed"] for c in report["chunks"]] == [c["chosen_seed"] for c in full_report["chunks"]]
    assert [c["candidates"] for c in report["chunks"]] == [c["candidates"] for c in full_report["chunks"]]


@pytest.mark.parametrize("run_name", ["../escape", "/tmp/abs", "a\\b", ".."])
def test_a_run_name_leaving_the_output_folder_is_refused_before_any_work(server, tiny_prompt, run_name):
    before = sorted(p.name for p in server.dir("output").rglob("*"))
    with pytest.raises(ComfyServerError, match="run name"):
        server.queue(streamed(tiny_prompt, run_name))
    assert sorted(p.name for p in server.dir("output").rglob("*")) == before


def test_changed_settings_on_a_run_folder_fail_and_leave_it_untouched(server, tiny_prompt):
    runs = server.dir("output") / "chunkwise"
    small = dict(SETTINGS, chunks=1, steps=2)
    server.run(tiny_prompt(NAME, TinySettings(**small), inputs={"ChunkwiseChunkLoop": {"run_name": "e2e_fixed"}}))
    files = {p: p.read_bytes() for p in (runs / "e2e_fixed").rglob("*") if p.is_file()}
    changed = tiny_prompt(NAME, TinySettings(**dict(small, seed=22)), inputs={"ChunkwiseChunkLoop": {"run_name": "e2e_fixed"}})
    with pytest.raises(ComfyServerError, match=r"settings\.seed: 21 -> 22"):
        server.run(changed, timeout=600)
    assert {p: p.read_bytes() for p in (runs / "e2e_fixed").rglob("*") if p.is_file()} == files
