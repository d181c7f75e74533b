"""Tier 2: ChunkwiseEvaluate and ChunkwiseCompare executed in-process on tiny inputs (ComfyUI's tiny CLIP vision)."""

from __future__ import annotations

import json

import folder_paths
import pytest
import torch
from chunkwise.nodes.eval_nodes import EVAL_NODES, ChunkwiseCompare, ChunkwiseEvaluate
from chunkwise.nodes.loop import RUNS_SUBFOLDER
from chunkwise.scorers import AestheticScore, ComfyClipVisionEncoder, LinearHead, SubjectConsistency
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.sinks import DiskSink
from chunkwise.tests.comfy import tiny


@pytest.fixture(scope="module")
def clip_vision():
    return tiny.tiny_clip_vision()


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_paths, "output_directory", str(tmp_path))
    return tmp_path


def video(t=9, seed=0):
    return torch.rand(t, 16, 24, 3, generator=torch.Generator().manual_seed(seed))


def test_schemas_have_ids_descriptions_and_a_tooltip_on_every_input():
    for node in EVAL_NODES:
        schema = node.define_schema()
        assert schema.node_id.startswith("Chunkwise") and schema.description.strip()
        for item in schema.inputs:
            assert (item.tooltip or "").strip(), f"{schema.node_id}.{item.id} has no tooltip"
        info = schema.get_v1_info(type("Node", (), {}))
        assert info.name == schema.node_id


def test_evaluate_a_video_with_clip_vision_inputs(clip_vision):
    out = ChunkwiseEvaluate.execute(frames_per_chunk=5, drop_first_frame=True, video=video(),
                                    subject_clip_vision=clip_vision, background_clip_vision=clip_vision)
    evaluation_json, plot, summary = out.result
    ev = json.loads(evaluation_json)
    assert ev["format"] == "chunkwise.eval/1"
    assert [c["frames"] for c in ev["chunks"]] == [5, 4]
    assert ev["dimensions"]["subject_consistency"]["model"].startswith("comfy-clip-vision")
    assert 0.0 <= ev["whole_video"]["background_consistency"] <= 1.0
    assert ev["chunks"][1]["drift"]["embedding"] is not None
    assert "ComfyUI nor this pack" in ev["left_out"]["motion_smoothness"]
    assert plot.ndim == 4 and plot.shape[0] == 1 and plot.shape[-1] == 3 and plot.shape[2] == 960
    assert float(plot.min()) < 0.2 and float(plot.max()) == 1.0  # axes and text on white
    assert summary.startswith("chunkwise evaluation") and out.ui["text"] == [summary]
    assert "aesthetic_quality: not computed" in summary


def test_evaluate_takes_encoders_from_scorers_and_a_run_folder_by_name(clip_vision, outdir):
    sink = DiskSink(outdir / RUNS_SUBFOLDER, "my run")
    sink.open_run({"seed": 1}, chunks=2)
    frames = video(t=8, seed=3)
    sink.write_chunk(0, frames[:5])
    sink.write_chunk(1, frames[5:])
    encoder = ComfyClipVisionEncoder(clip_vision)
    head = LinearHead({"weight": torch.ones(1, 32) / 32, "bias": torch.full((1,), 5.0)})
    out = ChunkwiseEvaluate.execute(run_folder="my run", frames_per_chunk=99, video=video(t=3),
                                    subject_scorer=SubjectConsistency(encoder),
                                    aesthetic_scorer=AestheticScore(encoder, head))
    ev = json.loads(out.result[0])
    assert ev["source"]["kind"] == "run folder" and ev["label"] == "my run"
    assert [c["frames"] for c in ev["chunks"]] == [5, 3]  # the folder's layout, not frames_per_chunk
    assert ev["dimensions"]["aesthetic_quality"]["computed"] and ev["dimensions"]["subject_consistency"]["computed"]
    assert not ev["dimensions"]["background_consistency"]["computed"]
    assert ev["whole_video"]["aesthetic_quality"] == pytest.approx(0.5, abs=0.05)  # bias 5 / 10 + a small term
    absolute = ChunkwiseEvaluate.execute(run_folder=str(outdir / RUNS_SUBFOLDER / "my run"))
    assert json.loads(absolute.result[0])["whole_video"]["temporal_flickering"] == ev["whole_video"][
        "temporal_flickering"]


def test_evaluate_refuses_missing_inputs_and_encoderless_scorers(clip_vision):
    with pytest.raises(ChunkwiseError, match="got neither a video nor a run_folder"):
        ChunkwiseEvaluate.execute(frames_per_chunk=5)
    from chunkwise.scorers import TemporalFlicker

    with pytest.raises(ChunkwiseError, match="the subject SCORER .* holds no image encoder"):
        ChunkwiseEvaluate.execute(video=video(), subject_scorer=TemporalFlicker())
    assert ChunkwiseEvaluate.validate_inputs(frames_per_chunk=0).startswith("frames_per_chunk must be between 1")
    assert ChunkwiseEvaluate.validate_inputs(frames_per_chunk=25, batch_size=16) is True


def test_compare_two_evaluations(clip_vision):
    a = ChunkwiseEvaluate.execute(frames_per_chunk=3, drop_first_frame=False, video=video(seed=1),
                                  background_clip_vision=clip_vision)
    b = ChunkwiseEvaluate.execute(frames_per_chunk=3, drop_first_frame=False, video=video(seed=1) * 0.7,
                                  background_clip_vision=clip_vision)
    out = ChunkwiseCompare.execute(a.result[0], b.result[0])
    cmp_json, plot, summary = out.result
    cmp = json.loads(cmp_json)
    ea, eb = json.loads(a.result[0]), json.loads(b.result[0])
    assert cmp["format"] == "chunkwise.eval-compare/1" and len(cmp["chunks"]) == 3
    assert cmp["chunks"][2]["difference"]["background_consistency"] == pytest.approx(
        eb["chunks"][2]["scores"]["background_consistency"] - ea["chunks"][2]["scores"]["background_consistency"])
    assert plot.shape[0] == 1 and plot.shape[-1] == 3
    assert "chunkwise comparison" in summary and out.ui["text"] == [summary]
    with pytest.raises(ChunkwiseError, match="expected a chunkwise.eval/1 evaluation"):
        ChunkwiseCompare.execute('{"format": "chunkwise.report/1"}', b.result[0])


def test_dino_scorer_node_loads_vbenchs_dino_from_models_clip_vision(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    from chunkwise.nodes.eval_nodes import NONE_FOUND, ChunkwiseScorerDino
    from chunkwise.scorers.dino import DinoEncoder

    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items()}
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", saved)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder = tmp_path / "clip_vision"
    folder.mkdir()
    folder_paths.add_model_folder_path("clip_vision", str(folder))
    assert ChunkwiseScorerDino.define_schema().inputs[0].options == [NONE_FOUND]
    with torch.inference_mode(False):
        torch.manual_seed(6)
        vit = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=1,
                                                               num_heads=1, num_classes=0)
        torch.save(vit.state_dict(), folder / "tiny_dino_vitb16.pth")
    (folder / "dinov2-large").mkdir()  # Load CLIP Vision's job, not listed
    assert ChunkwiseScorerDino.define_schema().inputs[0].options == ["tiny_dino_vitb16.pth"]
    scorer = ChunkwiseScorerDino.execute("tiny_dino_vitb16.pth").result[0]
    assert isinstance(scorer.encoder, DinoEncoder) and scorer.encoder.patcher is not None
    out = ChunkwiseEvaluate.execute(frames_per_chunk=4, drop_first_frame=False, video=video(t=8),
                                    subject_scorer=scorer)
    ev = json.loads(out.result[0])
    assert ev["dimensions"]["subject_consistency"]["model"] == "dino timm (tiny_dino_vitb16.pth)"
    with pytest.raises(FileNotFoundError, match="put dino_vitbase16_pretrain.pth"):
        ChunkwiseScorerDino.execute(NONE_FOUND)
