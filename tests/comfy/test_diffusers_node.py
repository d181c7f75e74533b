"""Tier 2: the Diffusers I2V Model node inside ComfyUI, driving ChunkLoop, on a tiny random SVD folder."""

from __future__ import annotations

import json

import folder_paths
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chunkwise.nodes.diffusers_node import ChunkwiseDiffusersI2V, diffusers_folders  # noqa: E402
from chunkwise.nodes.loop import ChunkLoop  # noqa: E402
from chunkwise.search.errors import ChunkwiseError  # noqa: E402
from chunkwise.search.protocols import I2VDenoiser  # noqa: E402
from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402
from chunkwise.tests.pure.toys import MeanColourScorer  # noqa: E402

SIZE, FRAMES = 16, 3


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusers_models")
    with torch.inference_mode(False):
        tiny.tiny_svd().save_pretrained(root / "video" / "tiny-svd")
    # A folder of an unsupported pipeline type is not offered.
    (root / "sd15").mkdir()
    (root / "sd15" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return root


@pytest.fixture
def registered(models_dir, monkeypatch):
    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items()}
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", saved)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder_paths.add_model_folder_path("diffusers", str(models_dir))
    return models_dir


def test_the_node_lists_supported_pipeline_folders_of_models_diffusers(registered):
    assert "video/tiny-svd" in diffusers_folders()
    assert "sd15" not in diffusers_folders()
    schema = ChunkwiseDiffusersI2V.define_schema()
    folder_input = next(i for i in schema.inputs if i.id == "folder")
    assert "video/tiny-svd" in folder_input.options
    assert all(getattr(i, "tooltip", None) for i in schema.inputs) and schema.description


def test_a_symlink_cycle_under_models_diffusers_is_walked_once(tmp_path, monkeypatch):
    # The folder list is built while ComfyUI builds the node schema: a link back up must not loop.
    import os

    root = tmp_path / "cyclic"
    model = root / "video" / "svd"
    model.mkdir(parents=True)
    (model / "model_index.json").write_text(json.dumps({"_class_name": "StableVideoDiffusionPipeline"}))
    os.symlink(root / "video", root / "video" / "loop", target_is_directory=True)
    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items()}
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", saved)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder_paths.add_model_folder_path("diffusers", str(root))
    assert [f for f in diffusers_folders() if f.startswith("video/")] == ["video/svd"]


def test_loaded_model_drives_chunk_loop(registered):
    i2v = ChunkwiseDiffusersI2V.execute(folder="video/tiny-svd", steps=2, cfg=0.0, dtype="auto", width=SIZE,
                                        height=SIZE, frames=0, cpu_offload=False)[0]
    assert isinstance(i2v, I2VDenoiser) and i2v.steps == 2 and i2v.family == "svd"
    assert i2v.num_frames == FRAMES and i2v.max_guidance_scale == 3.0  # the model's own defaults
    assert i2v.pipe.unet.dtype == torch.float32  # auto on the CPU

    g = torch.Generator().manual_seed(1)
    start = torch.rand(1, 24, 20, 3, generator=g)  # not the model's size: the host resizes it
    chunks, m, k, s = 2, 2, 1, 2
    out = ChunkLoop.execute(i2v, start, chunks=chunks, candidates=m, k=k, preview_mode="short schedule", seed=7,
                            search=True, drop_first_frame=True, scorer=MeanColourScorer())
    video, report = out[0], json.loads(out[1])
    assert video.shape == (FRAMES + (chunks - 1) * (FRAMES - 1), SIZE, SIZE, 3)
    assert torch.isfinite(video).all() and 0.0 <= video.min() and video.max() <= 1.0
    assert report["settings"]["steps"] == s and len(report["chunks"]) == chunks
    assert [c["nfe"] for c in report["chunks"]] == [{"preview": m * k, "full": s}] * chunks
    assert report["totals"]["nfe"] == i2v.nfe == chunks * (m * k + s)
    for c in report["chunks"]:
        scores = [cand["score"] for cand in c["candidates"]]
        assert c["chosen"] == scores.index(max(scores))


def test_an_unknown_folder_names_where_to_put_it(registered):
    with pytest.raises(ChunkwiseError, match="not found under.*models/diffusers"):
        ChunkwiseDiffusersI2V.execute(folder="nope", steps=2, cfg=0.0, dtype="auto", width=0, height=0, frames=0,
                                      cpu_offload=False)
