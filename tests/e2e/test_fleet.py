"""Tier 3: a ComfyUI fleet. ``chunkwise batch`` over two Ray workers, each with its own headless ComfyUI
server, runs three bundled API workflows (tiny models); one of them takes its start image by upload.

The outputs of each job come back into its folder with a ``fleet.json`` record, every ChunkLoop streamed
its chunks into the fleet's shared output folder, both servers took jobs, and a second batch over the same
file redoes nothing.
"""

from __future__ import annotations

import io
import json

import pytest
from chunkwise.search.runs import finished_chunks
from chunkwise.tests.e2e import tiny_prompts
from chunkwise.tests.e2e.tiny_prompts import TinySettings, node_id
from PIL import Image

ray = pytest.importorskip("ray", reason="ComfyUI fleets run on Ray: pip install ray")

WORKFLOWS = ("chunkwise_wan21_i2v_long_video", "chunkwise_svd_long_video", "chunkwise_wan22_5b_ti2v_long_video")
CHUNKS = 2


@pytest.fixture(scope="module")
def fleet_batch(tmp_path_factory):
    from chunkwise.scale.batch import run_batch

    root = tmp_path_factory.mktemp("fleet")
    jobs = []
    for name in WORKFLOWS:
        settings = TinySettings(chunks=CHUNKS, candidates=2)
        prompt = tiny_prompts.tiny_prompt(name, settings)
        job = {"run": name.removeprefix("chunkwise_"), "workflow": f"{name}.json",
               "comfyui": {"custom_nodes": {tiny_prompts.TESTPACK_NAME: str(tiny_prompts.TESTPACK)}, "cpu": True}}
        if name == "chunkwise_wan21_i2v_long_video":  # this one loads its start image, uploaded to its server
            image = prompt[node_id(prompt, "ChunkwiseTestImage")]
            size = (image["inputs"]["width"], image["inputs"]["height"])
            image.update(class_type="LoadImage", inputs={"image": "start.png"})
            Image.new("RGB", size, (200, 120, 40)).save(root / "beach.png")
            job["images"] = {"start.png": "beach.png"}
        (root / f"{name}.json").write_text(json.dumps(prompt), encoding="utf-8")
        jobs.append(job)
    jobs_file = root / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(j) + "\n" for j in jobs), encoding="utf-8")
    out = io.StringIO()
    try:
        code = run_batch(jobs_file, root / "out", workers=2, stream=out)
        again = io.StringIO()
        code_again = run_batch(jobs_file, root / "out", stream=again)
    finally:
        ray.shutdown()
    return root / "out", jobs, code, out.getvalue(), code_again, again.getvalue()


def test_a_fleet_of_two_comfyui_servers_runs_three_bundled_workflows(fleet_batch):
    out, jobs, code, table, _, _ = fleet_batch
    assert code == 0, table
    servers = set()
    for job in jobs:
        folder = out / job["run"]
        record = json.loads((folder / "fleet.json").read_text(encoding="utf-8"))
        servers.add(record["server"])
        assert any(f.endswith(".safetensors") for f in record["files"]), record  # the lossless frames came back
        assert all((folder / f).is_file() for f in record["files"])
        # The ChunkLoop streamed into the fleet's shared output folder, under the job's run name.
        assert finished_chunks(out / "comfyui-output" / "chunkwise" / job["run"]) == CHUNKS
    assert len(servers) == 2  # the first two jobs start on the two workers, each with its own server


def test_the_start_image_is_uploaded_to_the_server_that_runs_the_job(fleet_batch):
    out, jobs, *_ = fleet_batch
    job = next(j for j in jobs if "images" in j)
    record = json.loads((out / job["run"] / "fleet.json").read_text(encoding="utf-8"))
    # LoadImage refuses a name its server's input folder lacks, so the finished run took the uploaded file.
    assert record["images"] == {"start.png": "beach.png"}


def test_a_second_batch_over_the_same_file_redoes_nothing(fleet_batch):
    *_, code_again, table_again = fleet_batch
    assert code_again == 0, table_again
    assert table_again.count("done (earlier)") == len(WORKFLOWS), table_again
