"""Tier 1: how a ComfyUI fleet reads a workflow job (no server, no Ray): inputs set by node type or id, a
ChunkLoop named after the job, refused files and keys, and what makes a finished job count as done."""

from __future__ import annotations

import json

import pytest
from chunkwise.scale import fleet
from chunkwise.search.errors import ChunkwiseError

PROMPT = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
    "2": {"class_type": "ChunkwiseChunkLoop", "inputs": {"chunks": 5, "seed": 0, "run_name": "", "image": ["1", 0]}},
    "3": {"class_type": "SaveVideo", "inputs": {"filename_prefix": "video/x"}},
}


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(PROMPT), encoding="utf-8")
    (tmp_path / "a.png").write_bytes(b"png bytes")
    return {"run": "beach", "workflow": str(path), "images": {"example.png": str(tmp_path / "a.png")},
            "inputs": {"ChunkwiseChunkLoop": {"chunks": 20}, "3": {"filename_prefix": "video/beach"}}}


def test_inputs_are_set_by_type_or_id_and_the_chunk_loop_is_named_after_the_job(job):
    prompt = fleet.load_workflow(job)
    assert prompt["2"]["inputs"]["chunks"] == 20 and prompt["2"]["inputs"]["run_name"] == "beach"
    assert prompt["3"]["inputs"]["filename_prefix"] == "video/beach"
    job["inputs"]["ChunkwiseChunkLoop"]["run_name"] = "mine"
    assert fleet.load_workflow(job)["2"]["inputs"]["run_name"] == "mine"


def test_a_ui_format_file_and_an_unknown_input_key_are_refused(job, tmp_path):
    with pytest.raises(ChunkwiseError, match="neither a node id nor a node type"):
        fleet.load_workflow(dict(job, inputs={"KSampler": {"seed": 1}}))
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}), encoding="utf-8")
    with pytest.raises(ChunkwiseError, match=r"Export \(API\)"):
        fleet.load_workflow(dict(job, workflow=str(ui)))


def test_a_job_is_done_only_with_the_same_prompt_and_images_and_every_file_there(job, tmp_path):
    folder = tmp_path / "out" / "beach"
    folder.mkdir(parents=True)
    (folder / "video").mkdir()
    (folder / "video" / "beach.mp4").write_bytes(b"mp4")
    record = {"digest": fleet.digest(job), "files": ["video/beach.mp4"]}
    (folder / fleet.RECORD).write_text(json.dumps(record), encoding="utf-8")
    assert fleet.workflow_job_done(job, folder)
    assert not fleet.workflow_job_done(dict(job, inputs={"ChunkwiseChunkLoop": {"chunks": 21}}), folder)
    (tmp_path / "a.png").write_bytes(b"other bytes")
    assert not fleet.workflow_job_done(job, folder)
    (tmp_path / "a.png").write_bytes(b"png bytes")
    (folder / "video" / "beach.mp4").unlink()
    assert not fleet.workflow_job_done(job, folder)


def test_output_files_are_the_output_items_of_the_history():
    entry = {"outputs": {"3": {"images": [{"filename": "a.png", "subfolder": "v", "type": "output"},
                                          {"filename": "t.png", "subfolder": "", "type": "temp"}],
                               "animated": [True]}}}
    assert fleet.output_files(entry) == [{"filename": "a.png", "subfolder": "v", "type": "output"}]
