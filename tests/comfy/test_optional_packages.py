"""Tier 2: the pack without its optional packages (diffusers, open_clip, accelerate, transformers).

A meta-path finder refuses the packages for one test, as if they were not
installed; their ``sys.modules`` entries, and the pack modules that are
imported again under it, are put back afterwards. The pack loads, logs one
line per missing package when ComfyUI asks for the node list, keeps every node
listed, the nodes that need a missing package fail with that line, and
ChunkLoop still runs on a tiny model.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import json
import logging
import re
import sys

import chunkwise
import pytest
import torch
from chunkwise.nodes.families import I2VWan
from chunkwise.nodes.loop import ChunkLoop
from chunkwise.search.errors import ChunkwiseError
from chunkwise.tests.comfy import tiny

# Imported again under the blocker, so their own imports are made without the packages.
REIMPORTED = ("chunkwise.nodes.scorer_nodes", "chunkwise.nodes.diffusers_node", "chunkwise.scorers",
              "chunkwise.search.hosts")

OPEN_CLIP_LINE = ("chunkwise: open_clip is not installed: the Chunkwise Scorer (open_clip) node needs it "
                  "(pip install open_clip_torch)")
DIFFUSERS_LINE = "chunkwise: diffusers is not installed: the Diffusers I2V Model node needs it (pip install diffusers)"
ACCELERATE_LINE = ("chunkwise: accelerate is not installed: the Diffusers I2V Model node needs it for cpu_offload "
                   "(pip install accelerate)")
TRANSFORMERS_LINE = ("chunkwise: transformers is not installed: the Chunkwise Scorer (transformers) and "
                     "Diffusers I2V Model nodes need it (pip install transformers)")
DIFFUSERS_ARGS = dict(folder="video/none", steps=2, cfg=0.0, dtype="auto", width=0, height=0, frames=0)


class Refuse(importlib.abc.MetaPathFinder):
    """Refuses to find the named top-level packages (and their submodules), as an uninstalled package is."""

    def __init__(self, names) -> None:
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _under(name: str, roots) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


@pytest.fixture
def without(request):
    """Block ``request.param`` (package names) for one test; returns the pack's node list loaded under the block."""
    blocked = request.param
    saved = dict(sys.modules)
    for name in [n for n in sys.modules if _under(n, (*blocked, *REIMPORTED))]:
        del sys.modules[name]
    finder = Refuse(blocked)
    sys.meta_path.insert(0, finder)
    try:
        yield blocked
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n not in saved]:
            del sys.modules[name]
        sys.modules.update(saved)
        for name in saved:  # re-imported submodules were bound on their parent packages: bind the originals
            if _under(name, REIMPORTED):
                parent, _, child = name.rpartition(".")
                setattr(sys.modules[parent], child, saved[name])


def start_up(caplog) -> tuple[dict, list[str]]:
    """What ComfyUI does at start-up: the entry point, then the node list. Returns nodes by id and the log lines."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        extension = asyncio.run(chunkwise.comfy_entrypoint())
        asyncio.run(extension.on_load())
        nodes = asyncio.run(extension.get_node_list())
    lines = [r.getMessage() for r in caplog.records if r.name == "chunkwise"]
    return {n.define_schema().node_id: n for n in nodes}, lines


@pytest.mark.parametrize("without", [("diffusers", "open_clip")], indirect=True)
def test_missing_packages_are_logged_at_start_up_and_their_nodes_fail_with_that_line(without, caplog):
    # 1. Importing the node modules logs nothing and imports no optional package.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="chunkwise"):
        for name in REIMPORTED:
            importlib.import_module(name)
    assert [r for r in caplog.records if r.name == "chunkwise"] == []

    # 2. Start-up: one line per missing package; every node stays listed, its schema intact.
    nodes, lines = start_up(caplog)
    assert lines == [OPEN_CLIP_LINE, DIFFUSERS_LINE]
    assert {"ChunkwiseScorerOpenClip", "ChunkwiseDiffusersI2V", "ChunkwiseScorerTransformers",
            "ChunkwiseChunkLoop", "ChunkwiseI2VWan"} <= set(nodes)
    for node in nodes.values():
        assert all(getattr(i, "tooltip", None) for i in node.define_schema().inputs), node
    assert not [n for n in sys.modules if _under(n, without)], "an optional package was imported to check it"

    # 3. The nodes that need them fail with the same line when they run; the others do not.
    with pytest.raises(ChunkwiseError, match=re.escape(OPEN_CLIP_LINE)):
        nodes["ChunkwiseScorerOpenClip"].execute("ViT-B-32", "open_clip_model.safetensors")
    with pytest.raises(ChunkwiseError, match=re.escape(DIFFUSERS_LINE)):
        nodes["ChunkwiseDiffusersI2V"].execute(**DIFFUSERS_ARGS, cpu_offload=False)
    guard = nodes["ChunkwiseScorerMotionGuard"].execute(0.05)[0]
    assert guard.score(torch.zeros(1, 8, 8, 3), [torch.zeros(3, 8, 8, 3)])[0].score == -1.0

    # 4. ChunkLoop runs on a tiny Wan with the CLIP-vision verifier.
    model, vae, positive, negative = tiny.tiny_wan()
    wan = I2VWan.execute(model, positive, negative, vae, width=32, height=32, length=5, steps=2, cfg=1.0,
                         sampler_name="euler", scheduler="simple")[0]
    start = torch.rand((1, 32, 32, 3), generator=torch.Generator().manual_seed(0))
    out = ChunkLoop.execute(wan, start, chunks=2, candidates=2, k=1, preview_mode="short schedule", seed=3,
                            search=True, drop_first_frame=True, clip_vision=tiny.tiny_clip_vision())
    video, report = out[0], json.loads(out[1])
    assert video.shape == (2 * 5 - 1, 32, 32, 3) and torch.isfinite(video).all()
    assert [len(c["candidates"]) for c in report["chunks"]] == [2, 2]
    assert not [n for n in sys.modules if _under(n, without)]


@pytest.mark.parametrize("without", [("accelerate",)], indirect=True)
def test_without_accelerate_only_cpu_offload_is_refused(without, caplog):
    nodes, lines = start_up(caplog)
    assert lines == [ACCELERATE_LINE]
    node = nodes["ChunkwiseDiffusersI2V"]
    with pytest.raises(ChunkwiseError, match=re.escape(ACCELERATE_LINE)):
        node.execute(**DIFFUSERS_ARGS, cpu_offload=True)
    # Without offload the packages are there: the node goes on to look for its folder.
    with pytest.raises(ChunkwiseError, match="'video/none' was not found under"):
        node.execute(**DIFFUSERS_ARGS, cpu_offload=False)


@pytest.mark.parametrize("without", [("transformers",)], indirect=True)
def test_a_package_two_nodes_need_is_one_line_naming_both(without, caplog):
    nodes, lines = start_up(caplog)
    assert lines == [TRANSFORMERS_LINE]
    with pytest.raises(ChunkwiseError, match=re.escape(TRANSFORMERS_LINE)):
        nodes["ChunkwiseScorerTransformers"].execute("tiny-hf-clip-vision", "")
    with pytest.raises(ChunkwiseError, match=re.escape(TRANSFORMERS_LINE)):
        nodes["ChunkwiseDiffusersI2V"].execute(**DIFFUSERS_ARGS, cpu_offload=False)


def test_with_every_package_installed_nothing_is_logged(caplog):
    for module in ("diffusers", "open_clip", "accelerate", "transformers"):
        pytest.importorskip(module)
    nodes, lines = start_up(caplog)
    assert lines == [] and "ChunkwiseDiffusersI2V" in nodes
