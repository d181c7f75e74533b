"""Tier 2: every scorer node's execute on tiny models, and its SCORER in ClipMinCosineScore and ChunkLoop.

Backends: ComfyUI's CLIP vision from ``data/tiny_clip_vision.json``
(comfy.clip_vision), open_clip from ``data/tiny_open_clip.json`` with a
seeded random weights file in a temp folder registered with folder_paths,
and transformers from a tiny folder saved there. No downloads.
"""

from __future__ import annotations

import importlib.util
import json
import math

import comfy.model_management
import folder_paths
import pytest
import torch
from chunkwise.nodes import node_list, scorer_nodes
from chunkwise.nodes.chunk_nodes import ClipMinCosineScore, PreviewSet
from chunkwise.nodes.loop import ChunkLoop
from chunkwise.nodes.scorer_nodes import (
    NONE_FOUND,
    SCORER_NODES,
    ChunkwiseScorerAesthetic,
    ChunkwiseScorerClipVision,
    ChunkwiseScorerComposite,
    ChunkwiseScorerFlicker,
    ChunkwiseScorerMotionGuard,
    ChunkwiseScorerOpenClip,
    ChunkwiseScorerSubjectConsistency,
    ChunkwiseScorerTransformers,
)
from chunkwise.scorers import (
    AestheticScore,
    ClipMinCosine,
    Composite,
    MotionGuard,
    OpenClipEncoder,
    SubjectConsistency,
    TemporalFlicker,
    TransformersEncoder,
)
from chunkwise.search.errors import ChunkwiseError
from chunkwise.tests.comfy import tiny
from chunkwise.tests.pure.toys import ToyDenoiser

open_clip = pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")

OPEN_CLIP_JSON = tiny.DATA / "tiny_open_clip.json"
OPEN_CLIP_NAME = "chunkwise-tiny-open-clip"
OPEN_CLIP_FILE = "tiny_open_clip.safetensors"
HF_FOLDER = "tiny-hf-clip-vision"
HEAD_FILE = "tiny_head.safetensors"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A models folder holding a tiny open_clip checkpoint, a transformers folder and an aesthetic head."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("models")
    (root / "clip_vision").mkdir()
    (root / "aesthetic").mkdir()
    # open_clip: a custom config registered under a fixed name, random seeded weights.
    config = json.loads(OPEN_CLIP_JSON.read_text())
    open_clip.factory._MODEL_CONFIGS[OPEN_CLIP_NAME] = config
    with torch.inference_mode(False):
        torch.manual_seed(21)
        model = open_clip.create_model(OPEN_CLIP_NAME, pretrained=None)
        save_file(
            {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
            str(root / "clip_vision" / OPEN_CLIP_FILE),
        )
        # transformers: CLIPVisionModelWithProjection with the tiny ComfyUI CLIP vision config.
        cfg = json.loads(tiny.CLIP_VISION_JSON.read_text())
        hf = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**cfg))
        hf.save_pretrained(str(root / "clip_vision" / HF_FOLDER))
        size = cfg["image_size"]
        transformers.CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        ).save_pretrained(str(root / "clip_vision" / HF_FOLDER))
    # A linear aesthetic head on the tiny CLIP vision's 32-dim embeddings.
    g = torch.Generator().manual_seed(5)
    save_file(
        {"weight": torch.randn(1, 32, generator=g), "bias": torch.tensor([5.0])}, str(root / "aesthetic" / HEAD_FILE)
    )
    return root


@pytest.fixture
def registered(models_dir, monkeypatch):
    """models_dir's folders registered with folder_paths for this test only."""
    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items()}
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", saved)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder_paths.add_model_folder_path("clip_vision", str(models_dir / "clip_vision"))
    folder_paths.add_model_folder_path("aesthetic", str(models_dir / "aesthetic"))
    return models_dir


@pytest.fixture(scope="module")
def clip_vision():
    return tiny.tiny_clip_vision()


def frames(n: int, h: int = 40, w: int = 56, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 5, 7, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear").movedim(1, -1).contiguous()


def min_cosine(embed, guide, preview) -> float:
    g = torch.nn.functional.normalize(embed(guide), dim=-1)
    v = torch.nn.functional.normalize(embed(preview), dim=-1)
    return float((v @ g[0]).min())


# ---------------------------------------------------------------- one node per backend


def test_clip_vision_node_is_the_papers_min_cosine(clip_vision):
    scorer = ChunkwiseScorerClipVision.execute(clip_vision, anchor_weight=0.0, frame_stride=1, batch_size=3)[0]
    assert isinstance(scorer, ClipMinCosine) and scorer.encoder.batch_size == 3
    guide, preview = frames(1, seed=1), frames(5, seed=2)
    [result] = scorer.score(guide, [preview])
    expected = min_cosine(lambda x: clip_vision.encode_image(x).image_embeds, guide, preview)
    assert result.score == pytest.approx(expected, abs=1e-5)
    assert len(result.frame_scores) == 5
    strided = ChunkwiseScorerClipVision.execute(clip_vision, anchor_weight=0.5, frame_stride=3)[0]
    assert (strided.anchor_weight, strided.frame_stride) == (0.5, 3)
    assert len(strided.score(guide, [preview], anchor=frames(1, seed=3))[0].frame_scores) == 3  # frames 0, 3, 4


def test_clip_vision_centre_crops_non_square_frames(clip_vision):
    scorer = ChunkwiseScorerClipVision.execute(clip_vision)[0]
    wide = frames(2, h=28, w=44, seed=4)  # short side already 28 px, the model's size
    other = wide.clone()
    other[:, :, :8] = frames(2, h=28, w=44, seed=5)[:, :, :8]
    emb = scorer.encoder.encode(torch.cat([wide, other]))
    assert torch.allclose(emb[:2], emb[2:], atol=1e-4)


def test_open_clip_node_loads_the_file_from_models_folder(registered):
    assert OPEN_CLIP_FILE in folder_paths.get_filename_list("clip_vision")
    scorer = ChunkwiseScorerOpenClip.execute(
        OPEN_CLIP_NAME, OPEN_CLIP_FILE, anchor_weight=0.2, frame_stride=2, batch_size=4
    )[0]
    assert isinstance(scorer, ClipMinCosine) and isinstance(scorer.encoder, OpenClipEncoder)
    assert (scorer.anchor_weight, scorer.frame_stride, scorer.encoder.batch_size) == (0.2, 2, 4)
    # The same weights without ComfyUI's memory management give the same embeddings.
    with torch.inference_mode(False):
        plain = OpenClipEncoder(OPEN_CLIP_NAME, registered / "clip_vision" / OPEN_CLIP_FILE)
    x = frames(3, seed=6)
    assert torch.allclose(scorer.encoder.encode(x), plain.encode(x), atol=1e-4)
    # ComfyUI's memory manager loaded it, like its own models.
    loaded = [m.model for m in comfy.model_management.current_loaded_models]
    assert scorer.encoder.patcher in loaded
    [result] = scorer.score(frames(1, seed=1), [frames(5, seed=2)], anchor=frames(1, seed=3))
    assert len(result.frame_scores) == 3 and -1.0 <= result.score <= 1.0


def test_transformers_node_from_folder_name_or_path(registered):
    assert HF_FOLDER in ChunkwiseScorerTransformers.define_schema().inputs[0].options
    by_name = ChunkwiseScorerTransformers.execute(HF_FOLDER, "", anchor_weight=0.0, frame_stride=1)[0]
    by_path = ChunkwiseScorerTransformers.execute(NONE_FOUND, str(registered / "clip_vision" / HF_FOLDER))[0]
    assert isinstance(by_name.encoder, TransformersEncoder)
    guide, preview = frames(1, seed=1), frames(4, seed=2)
    a, b = by_name.score(guide, [preview])[0], by_path.score(guide, [preview])[0]
    assert a.score == pytest.approx(b.score, abs=1e-6)
    with torch.inference_mode(False):
        plain = TransformersEncoder(registered / "clip_vision" / HF_FOLDER)
    assert a.score == pytest.approx(min_cosine(plain.encode, guide, preview), abs=1e-5)


def test_missing_files_name_where_to_put_them(registered):
    with pytest.raises(
        FileNotFoundError,
        match=r"open_clip weights 'nope.safetensors' not found in models/clip_vision.*put an open_clip checkpoint for ViT-B-32 there",
    ):
        ChunkwiseScorerOpenClip.execute("ViT-B-32", "nope.safetensors")
    with pytest.raises(FileNotFoundError, match="not found in models/clip_vision"):
        ChunkwiseScorerOpenClip.execute("ViT-B-32", NONE_FOUND)
    with pytest.raises(
        FileNotFoundError, match=r"transformers model folder 'gone' not found .*put the folder \(config.json"
    ):
        ChunkwiseScorerTransformers.execute("gone")
    with pytest.raises(FileNotFoundError, match=r"config.json missing\); put the model folder"):
        ChunkwiseScorerTransformers.execute(NONE_FOUND, str(registered / "nowhere"))
    with pytest.raises(
        FileNotFoundError, match=r"aesthetic head 'none.pth' not found in .*aesthetic.*sa_0_4_vit_l_14_linear.pth"
    ):
        ChunkwiseScorerAesthetic.execute(tiny.tiny_clip_vision(), "none.pth")


def test_open_clip_node_takes_the_checkpoints_pretrained_tag(registered, monkeypatch):
    squash = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bilinear", "resize_mode": "squash"}
    openai = {"resize_mode": "shortest", "quick_gelu": True}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, OPEN_CLIP_NAME, {"webli": squash, "openai": openai})
    scorer = ChunkwiseScorerOpenClip.execute(OPEN_CLIP_NAME, OPEN_CLIP_FILE, pretrained_tag="webli")[0]
    assert {k: scorer.encoder.preprocess_cfg[k] for k in squash} == squash
    quick = ChunkwiseScorerOpenClip.execute(OPEN_CLIP_NAME, OPEN_CLIP_FILE, pretrained_tag="openai")[0]
    assert quick.encoder.quick_gelu and quick.encoder.preprocess_cfg["resize_mode"] == "shortest"
    assert any(isinstance(m, open_clip.transformer.QuickGELU) for m in quick.encoder.model.modules())
    with pytest.raises(
        ChunkwiseError, match=r"no pretrained tag 'laion'; set pretrained_tag to one of \['webli', 'openai'\]"
    ):
        ChunkwiseScorerOpenClip.execute(OPEN_CLIP_NAME, OPEN_CLIP_FILE, pretrained_tag="laion")


def test_open_clip_node_offers_only_models_it_builds_offline(monkeypatch):
    # Every name in the list builds (image tower only, on the meta device: no memory, no download). Hugging Face
    # text towers (xlm-roberta, mt5, nllb ...) would go to the network: none may be built.
    def refuse(*args, **kwargs):
        raise AssertionError("the text tower was built")

    monkeypatch.setattr(open_clip.model, "_build_text_tower", refuse)
    monkeypatch.setattr(open_clip.coca_model, "_build_text_tower", refuse)
    [name_input] = [i for i in ChunkwiseScorerOpenClip.define_schema().inputs if i.id == "model_name"]
    names = name_input.options
    assert {"ViT-L-14", "ViT-bigG-14", "xlm-roberta-large-ViT-H-14", "ViT-SO400M-14-SigLIP"} <= set(names)
    assert name_input.default in names
    # One name per kind of tower (ViT, ResNet, CoCa, each timm family, Hugging Face text, QuickGELU) is built;
    # the others share its code path (the encoder reads only embed_dim, vision_cfg and quick_gelu).
    kinds = {}
    for name in names:
        cfg = open_clip.get_model_config(name)
        assert cfg is not None, name
        vision = cfg["vision_cfg"]
        kind = vision.get("timm_model_name", "").split("_")[0] or (
            "resnet" if isinstance(vision["layers"], list) else "vit"
        )
        key = (kind, bool(vision.get("attentional_pool")), "hf_model_name" in cfg["text_cfg"], "multimodal_cfg" in cfg)
        kinds.setdefault(key + (bool(cfg.get("quick_gelu")), vision.get("timm_pool"), vision.get("timm_proj")), name)
    built = sorted(set(kinds.values()) | {"ViT-bigG-14", "xlm-roberta-large-ViT-H-14"})
    assert len(built) >= 15
    for name in built:
        with torch.device("meta"):
            enc = OpenClipEncoder(name, device="meta")
        assert enc.model_name == name and next(enc.model.parameters()).is_meta
    # Without timm, the timm-based image towers (SigLIP, EVA, ConvNeXt ...) are not offered.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "timm" else real_find_spec(n, *a))
    without_timm = scorer_nodes._open_clip_names()
    assert (
        "ViT-L-14" in without_timm and "ViT-SO400M-14-SigLIP" not in without_timm and "EVA02-L-14" not in without_timm
    )


def test_weights_are_found_through_comfys_model_folders(models_dir, clip_vision, tmp_path, monkeypatch):
    # A ComfyUI whose models/ has an aesthetic folder ComfyUI itself does not know, and a second clip_vision path
    # (extra_model_paths.yaml) with a transformers folder one level down.
    import shutil

    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items() if k != "aesthetic"}
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", saved)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    monkeypatch.setattr(folder_paths, "models_dir", str(tmp_path / "models"))
    (tmp_path / "models" / "aesthetic").mkdir(parents=True)
    shutil.copy(models_dir / "aesthetic" / HEAD_FILE, tmp_path / "models" / "aesthetic" / "default_head.safetensors")
    (tmp_path / "models" / "aesthetic" / "notes.txt").write_text("not a head")
    shutil.copytree(models_dir / "clip_vision" / HF_FOLDER, tmp_path / "extra" / "org" / HF_FOLDER)
    folder_paths.add_model_folder_path("clip_vision", str(tmp_path / "extra"))

    [head] = [i for i in ChunkwiseScorerAesthetic.define_schema().inputs if i.id == "head"]
    assert head.options == ["default_head.safetensors"]
    assert folder_paths.get_folder_paths("aesthetic") == [str(tmp_path / "models" / "aesthetic")]
    aesthetic = ChunkwiseScorerAesthetic.execute(clip_vision, "default_head.safetensors")[0]
    assert isinstance(aesthetic, AestheticScore)

    folder = f"org/{HF_FOLDER}"
    assert folder in ChunkwiseScorerTransformers.define_schema().inputs[0].options
    nested = ChunkwiseScorerTransformers.execute(folder, "")[0]
    with torch.inference_mode(False):
        plain = TransformersEncoder(tmp_path / "extra" / "org" / HF_FOLDER)
    x = frames(2, seed=4)
    assert torch.allclose(nested.encoder.encode(x), plain.encode(x), atol=1e-5)


# ---------------------------------------------------------------- other verifiers and the composite


def test_verifier_nodes(registered, clip_vision):
    guard = ChunkwiseScorerMotionGuard.execute(0.05)[0]
    assert isinstance(guard, MotionGuard) and guard.min_motion == 0.05
    assert isinstance(ChunkwiseScorerFlicker.execute()[0], TemporalFlicker)
    consistency = ChunkwiseScorerSubjectConsistency.execute(clip_vision, use_guide=False, frame_stride=2)[0]
    assert isinstance(consistency, SubjectConsistency) and not consistency.use_guide
    assert HEAD_FILE in ChunkwiseScorerAesthetic.define_schema().inputs[1].options
    aesthetic = ChunkwiseScorerAesthetic.execute(clip_vision, HEAD_FILE, frame_stride=1)[0]
    assert isinstance(aesthetic, AestheticScore)
    guide, still, moving = frames(1, seed=1), frames(1, seed=1).expand(4, -1, -1, -1), frames(4, seed=2)
    assert guard.score(guide, [still, moving])[0].score == -1.0
    assert ChunkwiseScorerFlicker.execute()[0].score(guide, [still])[0].score == 1.0
    c = consistency.score(guide, [moving])[0]
    assert len(c.frame_scores) == 2 and 0.0 <= c.score <= 1.0  # frames 0, 2, 3
    [a] = aesthetic.score(guide, [moving])
    emb = torch.nn.functional.normalize(clip_vision.encode_image(moving).image_embeds, dim=-1)
    head = aesthetic.head
    assert a.score == pytest.approx(float(head(emb).mean()) / 10, abs=1e-5)


def test_composite_node_sums_connected_scorers(clip_vision):
    clip = ChunkwiseScorerClipVision.execute(clip_vision)[0]
    guard = ChunkwiseScorerMotionGuard.execute(0.02)[0]
    comp = ChunkwiseScorerComposite.execute(scorer_1=clip, weight_1=1.0, scorer_3=guard, weight_3=0.5)[0]
    assert isinstance(comp, Composite) and [w for _, w in comp.parts] == [1.0, 0.5]
    guide, preview = frames(1, seed=1), frames(1, seed=1).expand(3, -1, -1, -1)
    [res] = comp.score(guide, [preview])
    assert res.score == pytest.approx(clip.score(guide, [preview])[0].score - 0.5, abs=1e-5)
    with pytest.raises(ChunkwiseError, match="got no scorer: connect at least one of scorer_1..scorer_4"):
        ChunkwiseScorerComposite.execute(weight_1=1.0)


# ---------------------------------------------------------------- SCORER accepted downstream


def test_clip_min_cosine_score_node_takes_a_scorer_over_clip_vision(registered, clip_vision):
    scorer = ChunkwiseScorerComposite.execute(
        scorer_1=ChunkwiseScorerOpenClip.execute(OPEN_CLIP_NAME, OPEN_CLIP_FILE, anchor_weight=0.5)[0],
        weight_1=1.0,
        scorer_2=ChunkwiseScorerMotionGuard.execute(0.02)[0],
        weight_2=0.1,
    )[0]
    previews = PreviewSet(
        seeds=[5, 6, 7],
        frames=[frames(4, seed=s) for s in (10, 11, 12)],
        mode="short schedule",
        k=2,
        steps=4,
        sampler_name="euler",
        scheduler="normal",
        cfg=1.0,
    )
    guide, anchor = frames(1, seed=1), frames(1, seed=3)
    out = ClipMinCosineScore.execute(guide, previews, clip_vision=clip_vision, scorer=scorer, anchor=anchor)
    scores, summary = out[0], out[1]
    expected = [r.score for r in scorer.score(guide, previews.frames, anchor=anchor)]
    assert scores.values == pytest.approx(expected, abs=1e-6)
    assert scores.scorer == scorer.describe() and "open_clip" in scores.scorer
    best = max(range(3), key=expected.__getitem__)
    assert f"* candidate {best} (seed {5 + best})" in summary


class ToyI2V(ToyDenoiser):
    """The toy denoiser with the ``steps`` an I2V binding carries."""

    steps = 3


def test_chunk_loop_runs_the_search_with_a_scorer_node(registered):
    scorer = ChunkwiseScorerOpenClip.execute(OPEN_CLIP_NAME, OPEN_CLIP_FILE, anchor_weight=0.3, frame_stride=2)[0]
    encoder = scorer.encoder
    calls_before, images_before = encoder.calls, encoder.images_encoded
    chunks, m, t = 2, 3, 5
    start = frames(1, h=32, w=40, seed=8).clamp(0.2, 0.8)
    out = ChunkLoop.execute(
        ToyI2V(frames=t, drift=0.1),
        start,
        chunks=chunks,
        candidates=m,
        k=1,
        preview_mode="short schedule",
        seed=4,
        search=True,
        drop_first_frame=True,
        scorer=scorer,
    )
    video, report = out[0], json.loads(out[1])
    assert video.shape == (t + (chunks - 1) * (t - 1), 32, 40, 3)
    assert report["settings"]["scorer"] == scorer.describe()
    # References once per chunk, then one call per candidate of frames {0, 2, 4}.
    assert encoder.calls - calls_before == chunks * (1 + m)
    assert encoder.images_encoded - images_before == 1 + 2 + chunks * m * 3  # chunk 1's anchor is its guide
    for record in report["chunks"]:
        scores = [c["score"] for c in record["candidates"]]
        assert all(math.isfinite(s) for s in scores)
        assert record["chosen"] == scores.index(max(scores))


# ---------------------------------------------------------------- schema


def test_scorer_nodes_are_listed_with_descriptions_and_tooltips():
    listed = {n.define_schema().node_id for n in node_list()}
    for node in SCORER_NODES:
        schema = node.define_schema()
        assert schema.node_id in listed and schema.node_id.startswith("ChunkwiseScorer")
        assert (schema.description or "").strip(), schema.node_id
        assert all((i.tooltip or "").strip() for i in schema.inputs), schema.node_id
        assert [o.io_type for o in schema.outputs] == ["CHUNKWISE_SCORER"]


def test_subject_consistency_on_a_comfy_dinov2_is_the_vbench_formula():
    import comfy.clip_vision

    # ComfyUI builds DINOv2 for 518 px input (37 x 37 patches) whatever the config says; hidden size 32 keeps it tiny.
    dino = comfy.clip_vision.ClipVisionModel(str(tiny.DATA / "tiny_dinov2.json"))
    tiny._randomize(dino.model.named_parameters(), 9)
    scorer = ChunkwiseScorerSubjectConsistency.execute(dino, use_guide=True, frame_stride=1, batch_size=2)[0]
    guide, preview = frames(1, seed=1), frames(4, seed=2)
    [result] = scorer.score(guide, [preview])
    f = torch.nn.functional.normalize(dino.encode_image(torch.cat([guide, preview])).image_embeds, dim=-1)
    assert f.shape == (5, 32)  # DINOv2's pooled class token
    terms = [(max(0.0, float(f[0] @ f[t])) + max(0.0, float(f[t - 1] @ f[t]))) / 2 for t in range(1, 5)]
    assert result.frame_scores == pytest.approx(terms, abs=1e-5)
    assert result.score == pytest.approx(sum(terms) / 4, abs=1e-5)
