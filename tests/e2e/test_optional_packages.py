"""Tier 3: a real ComfyUI server on a Python where diffusers and open_clip cannot be imported.

A ``sitecustomize`` on the server's PYTHONPATH installs a meta-path finder that
refuses both packages, as on a machine without them. The pack loads, the log
names each missing package once, every node is still offered, the tiny Wan
long-video workflow runs, and a prompt using the open_clip scorer fails with
the logged line.
"""

from __future__ import annotations

import os

import pytest
from chunkwise.scripts.comfy_server import ComfyServer, ComfyServerError
from chunkwise.tests.e2e import tiny_prompts

BLOCKER = '''
import sys


class _Refuse:
    """Refuses diffusers and open_clip (tests only: a machine where they are not installed)."""

    names = ("diffusers", "open_clip")

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, _Refuse())
'''
OPEN_CLIP_LINE = ("chunkwise: open_clip is not installed: the Chunkwise Scorer (open_clip) node needs it "
                  "(pip install open_clip_torch)")
DIFFUSERS_LINE = "chunkwise: diffusers is not installed: the Diffusers I2V Model node needs it (pip install diffusers)"
NAME = "chunkwise_wan21_i2v_long_video"


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    base = tmp_path_factory.mktemp("comfyui_bare")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), saved) if p)
    srv = ComfyServer(base, extra_custom_nodes={tiny_prompts.TESTPACK_NAME: tiny_prompts.TESTPACK})
    try:
        srv.start()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        yield srv
    finally:
        srv.stop()


def test_the_log_names_each_missing_package_once_and_every_node_is_offered(bare_server):
    log = bare_server.log_text()
    assert log.count(OPEN_CLIP_LINE) == 1 and log.count(DIFFUSERS_LINE) == 1, bare_server.log_tail()
    assert bare_server.import_failures() == [], bare_server.log_tail()
    info = bare_server.object_info()
    assert {"ChunkwiseScorerOpenClip", "ChunkwiseDiffusersI2V", "ChunkwiseChunkLoop"} <= set(info)


def test_the_loop_runs_and_the_open_clip_scorer_fails_with_the_logged_line(bare_server):
    settings = tiny_prompts.TinySettings(chunks=1, candidates=2)
    entry = bare_server.run(tiny_prompts.tiny_prompt(NAME, settings), timeout=600)
    frames = tiny_prompts.frames_of(bare_server, entry)
    assert frames.shape[0] == settings.wan_length
    assert len(tiny_prompts.report_of(entry, tiny_prompts.tiny_prompt(NAME, settings))["chunks"][0]["candidates"]) == 2

    prompt = tiny_prompts.tiny_prompt(NAME, settings)
    prompt["960"] = {"class_type": "ChunkwiseScorerOpenClip",
                     "inputs": {"model_name": "ViT-B-32", "weights": "(none found)", "pretrained_tag": "",
                                "anchor_weight": 0.0, "frame_stride": 1, "batch_size": 16}}
    prompt[tiny_prompts.node_id(prompt, "ChunkwiseChunkLoop")]["inputs"]["scorer"] = ["960", 0]
    with pytest.raises(ComfyServerError) as err:
        bare_server.run(prompt, timeout=300)
    assert "ChunkwiseScorerOpenClip" in str(err.value) and OPEN_CLIP_LINE in str(err.value)
