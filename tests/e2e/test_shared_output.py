"""Tier 3: two ComfyUI servers writing into one output folder (a fleet on a shared disk).

While the first server streams a run into ``output/chunkwise/<run_name>``, the second
server, given the same run name, is refused with the holder named, and writes nothing
there: the finished folder is the first server's run alone, every chunk intact. Once the
first writer is done the folder is free again, and the second server resumes it.
"""

from __future__ import annotations

import time

import pytest
import torch
from chunkwise.scripts.comfy_server import ComfyServer, ComfyServerError
from chunkwise.search.runs import finished_chunks, verify_run
from chunkwise.tests.e2e import tiny_prompts
from chunkwise.tests.e2e.tiny_prompts import TinySettings, frames_of, report_of

NAME = "chunkwise_wan21_i2v_long_video"
CHUNKS = 4
SETTINGS = dict(chunks=CHUNKS, candidates=2, k=1, steps=6, seed=33)


def streamed(tiny_prompt, run_name):
    inputs = {"ChunkwiseChunkLoop": {"run_name": run_name}, "ChunkwiseSearchOptions": {"on_existing": "resume"}}
    return tiny_prompt(NAME, TinySettings(**SETTINGS), inputs=inputs)


@pytest.fixture(scope="module")
def second_server(server, tmp_path_factory):
    """Another server with its own base directory but the first server's output folder."""
    base = tmp_path_factory.mktemp("comfyui-second")
    srv = ComfyServer(base, extra_custom_nodes={tiny_prompts.TESTPACK_NAME: tiny_prompts.TESTPACK},
                      extra_args=["--output-directory", str(server.dir("output"))])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_second_server_on_a_run_being_written_is_refused_and_nothing_interleaves(server, second_server,
                                                                                     tiny_prompt):
    runs = server.dir("output") / "chunkwise"
    prompt = streamed(tiny_prompt, "e2e_shared")
    first = server.queue(prompt)
    deadline = time.monotonic() + 300
    while finished_chunks(runs / "e2e_shared") < 1:
        assert time.monotonic() < deadline, "chunk 1 never reached the run folder"
        assert server.history(first) is None, "the run ended before the second server could try"
        time.sleep(0.05)

    # The second server's ChunkLoop fails naming the writer; the first goes on undisturbed.
    with pytest.raises(ComfyServerError, match=r"being written by another process \(pid \d+ on host"):
        second_server.run(streamed(tiny_prompt, "e2e_shared"), timeout=300)
    assert server.history(first) is None or finished_chunks(runs / "e2e_shared") == CHUNKS
    entry = server.wait(first, timeout=600)

    check = verify_run(runs / "e2e_shared")
    assert check.intact == CHUNKS and not check.bad
    assert report_of(entry, prompt)["restored_chunks"] == 0

    # The writer is done: the folder is free, and the second server finds the whole run there.
    again = second_server.run(streamed(tiny_prompt, "e2e_shared"), timeout=600)
    assert report_of(again, prompt)["restored_chunks"] == CHUNKS
    # Both servers save into the shared output folder, the first server's output/.
    assert torch.equal(frames_of(server, again), frames_of(server, entry))
