"""Encoder backends on tiny random models built from configs: shapes, caching, preprocessing, weights files.

open_clip from a custom model config, transformers from a ``CLIPVisionConfig``
saved to a temp folder. Each backend's preprocessing is compared with the
model's own reference path (open_clip's transform on a PIL image, the
folder's image processor on a PIL image). No downloads, no comfy.
"""

from __future__ import annotations

import builtins
import json
import logging

import pytest
import torch
from chunkwise.scorers import CallableEncoder, ClipMinCosine, OpenClipEncoder, TransformersEncoder, load_weights_file
from chunkwise.search import ChunkwiseError, SearchSettings
from chunkwise.search.engine import search_chunk
from chunkwise.tests.pure.toys import ToyDenoiser, image

open_clip = pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}
TINY_CLIP_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 28,
    "patch_size": 14,
    "projection_dim": 16,
}


def smooth_frames(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """``[n, h, w, 3]`` in 0..1, smooth (upsampled noise) and exactly representable in 8 bits."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, max(2, h // 8), max(2, w // 8), generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return ((x * 255).round() / 255).movedim(1, -1).contiguous()


def to_pil(frame: torch.Tensor):
    return Image.fromarray((frame * 255).round().to(torch.uint8).numpy())


def with_other_sides(frames: torch.Tensor, margin: int, seed: int) -> torch.Tensor:
    """The same frames with new random content in the outer ``margin`` columns of the long side."""
    out = frames.clone()
    other = smooth_frames(frames.shape[0], frames.shape[1], frames.shape[2], seed=seed)
    out[:, :, :margin] = other[:, :, :margin]
    out[:, :, -margin:] = other[:, :, -margin:]
    return out


# ---------------------------------------------------------------- open_clip


@pytest.fixture(scope="module")
def open_clip_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("open_clip") / "chunkwise-test-tiny-vit.json"
    path.write_text(json.dumps(TINY_OPEN_CLIP))
    return path


@pytest.fixture(scope="module")
def open_clip_files(open_clip_config, tmp_path_factory):
    """A seeded random full CLIP checkpoint (safetensors) and a visual-only one (torch pickle)."""
    from safetensors.torch import save_file

    open_clip.add_model_config(str(open_clip_config))
    torch.manual_seed(11)
    model = open_clip.create_model(open_clip_config.stem, pretrained=None).eval()
    folder = tmp_path_factory.mktemp("open_clip_weights")
    full = folder / "tiny_open_clip.safetensors"
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(full))
    visual_only = folder / "tiny_visual.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in model.visual.state_dict().items()}}, visual_only)
    return model, full, visual_only


def test_open_clip_encoder_shapes_batches_and_normalises(open_clip_config, open_clip_files):
    model, full, _ = open_clip_files
    enc = OpenClipEncoder(str(open_clip_config), full, batch_size=3)
    assert enc.model_name == open_clip_config.stem
    assert enc.name == f"open_clip {open_clip_config.stem} (tiny_open_clip.safetensors)"
    emb = enc.encode(smooth_frames(7, 24, 40))
    assert emb.shape == (7, TINY_OPEN_CLIP["embed_dim"]) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert (enc.calls, enc.images_encoded) == (1, 7)
    assert not any(p.requires_grad for p in enc.model.parameters())
    # Batching does not change the result.
    one_batch = OpenClipEncoder(str(open_clip_config), full, batch_size=16).encode(smooth_frames(7, 24, 40))
    assert torch.allclose(emb, one_batch, atol=1e-5)


def test_open_clip_weights_are_loaded_and_preprocessing_matches_open_clips_own(open_clip_config, open_clip_files):
    model, full, visual_only = open_clip_files
    frames = smooth_frames(3, 48, 64, seed=5)  # non-square, downscaled to the 32 px model size
    # Reference: open_clip's own eval transform on 8-bit PIL images, then the model's image tower.
    _, _, preprocess = open_clip.create_model_and_transforms(open_clip_config.stem, pretrained=None)
    pil_pixels = torch.stack([preprocess(to_pil(f)) for f in frames])
    with torch.no_grad():
        reference = torch.nn.functional.normalize(model.encode_image(pil_pixels), dim=-1)
    for weights in (full, visual_only):
        enc = OpenClipEncoder(str(open_clip_config), weights)
        ours = enc._preprocess(frames)
        assert ours.shape == pil_pixels.shape == (3, 3, 32, 32)
        # Tensor resize vs PIL resize: same bicubic antialiased filter up to rounding (normalised units).
        assert (ours - pil_pixels).abs().mean() < 0.01
        assert (ours - pil_pixels).abs().max() < 0.05
        emb = enc.encode(frames)
        assert torch.nn.functional.cosine_similarity(emb, reference).min() > 0.999
    random = OpenClipEncoder(str(open_clip_config))
    assert random.name.endswith("(random)")
    assert torch.nn.functional.cosine_similarity(random.encode(frames), reference).min() < 0.99


def test_open_clip_non_square_frames_are_centre_cropped(open_clip_config, open_clip_files):
    # A 32x48 frame is already 32 px on its short side: the centre 32x32 is all the model sees.
    enc = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    frames = smooth_frames(2, 32, 48, seed=1)
    changed_sides = with_other_sides(frames, 8, seed=9)
    changed_centre = frames.clone()
    changed_centre[:, 10:20, 20:28] = 1 - changed_centre[:, 10:20, 20:28]
    emb = enc.encode(torch.cat([frames, changed_sides, changed_centre]))
    assert torch.allclose(emb[:2], emb[2:4], atol=1e-4)
    assert (emb[:2] - emb[4:]).abs().max() > 1e-2


def test_open_clip_errors_name_the_fix(open_clip_config, open_clip_files, tmp_path):
    with pytest.raises(ChunkwiseError, match="open_clip has no model config 'ViT-Q-99'; pick one of"):
        OpenClipEncoder("ViT-Q-99")
    with pytest.raises(
        FileNotFoundError, match=r"weights file not found: .*put the file there \(ComfyUI: models/clip_vision/\)"
    ):
        OpenClipEncoder(str(open_clip_config), tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="open_clip config file not found"):
        OpenClipEncoder(str(tmp_path / "nope.json"))
    from safetensors.torch import save_file

    wrong = tmp_path / "vision_model.safetensors"
    save_file({"vision_model.embeddings.class_embedding": torch.zeros(4)}, str(wrong))
    with pytest.raises(ChunkwiseError, match="not an open_clip one; load it with ComfyUI's Load CLIP Vision"):
        OpenClipEncoder(str(open_clip_config), wrong)
    other = tmp_path / "other.safetensors"
    save_file({"visual.conv1.weight": torch.zeros(8, 3, 4, 4)}, str(other))
    with pytest.raises(ChunkwiseError, match="does not fit open_clip .*missing keys.*pick the model name"):
        OpenClipEncoder(str(open_clip_config), other)


# ---------------------------------------------------------------- open_clip: the checkpoint's own settings

SQUASH_TAG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bilinear", "resize_mode": "squash"}
OPENAI_TAG = {
    "mean": (0.48145466, 0.4578275, 0.40821073),
    "std": (0.26862954, 0.26130258, 0.27577711),
    "interpolation": "bicubic",
    "resize_mode": "shortest",
    "quick_gelu": True,
}


@pytest.fixture
def tagged(open_clip_config, open_clip_files, monkeypatch):
    """Pretrained tags for the tiny config, as open_clip/pretrained.py declares them; ``file`` lets open_clip's
    own create_model load the tiny checkpoint offline as the reference."""
    full = str(open_clip_files[1])
    tags = {"squashed": dict(SQUASH_TAG, file=full), "openai": dict(OPENAI_TAG, file=full)}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, open_clip_config.stem, tags)
    return tags


def has_quick_gelu(module) -> bool:
    return any(isinstance(m, open_clip.transformer.QuickGELU) for m in module.modules())


def open_clip_reference(name: str, tag: str, frames: torch.Tensor, **kwargs):
    """What open_clip itself does for ``name`` + ``tag``: its model, its transform on 8-bit PIL frames."""
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag, **kwargs)
    pixels = torch.stack([preprocess(to_pil(f)) for f in frames])
    with torch.no_grad():
        return pixels, torch.nn.functional.normalize(model.eval().encode_image(pixels), dim=-1)


@pytest.mark.parametrize("tag", ["squashed", "openai"])
def test_open_clip_pretrained_tag_sets_preprocessing_and_quick_gelu(tag, tagged, open_clip_config, open_clip_files):
    name = open_clip_config.stem
    enc = OpenClipEncoder(str(open_clip_config), open_clip_files[1], pretrained_tag=tag)
    want = {k: v for k, v in tagged[tag].items() if k in ("mean", "std", "interpolation", "resize_mode")}
    assert {k: enc.preprocess_cfg[k] for k in want} == want and enc.preprocess_cfg["size"] == (32, 32)
    assert enc.preprocess_source == f"pretrained tag {tag!r}"
    # OpenAI weights were trained with QuickGELU: the tag switches it on (open_clip only warns).
    assert has_quick_gelu(enc.model) == (tag == "openai") == enc.quick_gelu
    frames = smooth_frames(3, 48, 64, seed=5)
    pixels, reference = open_clip_reference(name, tag, frames, force_quick_gelu=tag == "openai")
    ours = enc._preprocess(frames)
    assert ours.shape == pixels.shape == (3, 3, 32, 32)
    assert (ours - pixels).abs().mean() < 0.01 and (ours - pixels).abs().max() < 0.05
    emb = enc.encode(frames)
    assert torch.nn.functional.cosine_similarity(emb, reference).min() > 0.999
    # Without the tag: OpenAI mean/std, shortest side + crop, GELU: other pixels, other embeddings.
    plain = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    assert not has_quick_gelu(plain.model)
    assert not torch.allclose(plain.encode(frames), emb, atol=1e-4)


def test_open_clip_squash_tag_sees_the_whole_non_square_frame(tagged, open_clip_config, open_clip_files):
    # shortest (the default) crops a 32x48 frame to its centre 32x32; squash keeps the outer columns.
    frames = smooth_frames(2, 32, 48, seed=1)
    batch = torch.cat([frames, with_other_sides(frames, 8, seed=9)])
    cropped = OpenClipEncoder(str(open_clip_config), open_clip_files[1], pretrained_tag="openai").encode(batch)
    assert torch.allclose(cropped[:2], cropped[2:], atol=1e-4)
    squashed = OpenClipEncoder(str(open_clip_config), open_clip_files[1], pretrained_tag="squashed").encode(batch)
    assert (squashed[:2] - squashed[2:]).abs().max() > 1e-3


def test_open_clip_unknown_tag_lists_the_models_tags(tagged, open_clip_config, open_clip_files, monkeypatch):
    with pytest.raises(
        ChunkwiseError, match=r"has no pretrained tag 'laion9'; set pretrained_tag to one of \['squashed', 'openai'\]"
    ):
        OpenClipEncoder(str(open_clip_config), open_clip_files[1], pretrained_tag="laion9")
    monkeypatch.delitem(open_clip.pretrained._PRETRAINED, open_clip_config.stem)
    with pytest.raises(
        ChunkwiseError, match=r"set pretrained_tag to empty .*open_clip_config.json next to the weights"
    ):
        OpenClipEncoder(str(open_clip_config), open_clip_files[1], pretrained_tag="openai")


def test_open_clip_config_json_next_to_the_weights_sets_preprocessing(
    open_clip_config, open_clip_files, tmp_path, caplog, monkeypatch
):
    import shutil

    weights = tmp_path / "open_clip_model.safetensors"
    shutil.copy(open_clip_files[1], weights)
    # A Hugging Face open_clip repository's open_clip_config.json (model_cfg + preprocess_cfg).
    hf_config = {"model_cfg": dict(TINY_OPEN_CLIP, quick_gelu=True), "preprocess_cfg": dict(SQUASH_TAG)}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(hf_config))
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = OpenClipEncoder(str(open_clip_config), weights)
    assert "pretrained_tag" not in caplog.text
    assert enc.preprocess_source == str(tmp_path / "open_clip_config.json")
    assert (enc.preprocess_cfg["resize_mode"], enc.preprocess_cfg["mean"]) == ("squash", [0.5, 0.5, 0.5])
    assert enc.quick_gelu and has_quick_gelu(enc.model)
    # An explicit tag wins over the file.
    monkeypatch.setitem(
        open_clip.pretrained._PRETRAINED, open_clip_config.stem, {"oa": dict(OPENAI_TAG, quick_gelu=False)}
    )
    tagged = OpenClipEncoder(str(open_clip_config), weights, pretrained_tag="oa")
    assert tagged.preprocess_cfg["resize_mode"] == "shortest" and not has_quick_gelu(tagged.model)
    # A config for another image tower (another folder's checkpoint) is ignored, with a warning.
    other = dict(TINY_OPEN_CLIP, vision_cfg=dict(TINY_OPEN_CLIP["vision_cfg"], width=64))
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": other, "preprocess_cfg": SQUASH_TAG}))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = OpenClipEncoder(str(open_clip_config), weights)
    assert "describes another image tower" in caplog.text and "pretrained_tag" in caplog.text
    assert enc.preprocess_cfg["resize_mode"] == "shortest" and not enc.quick_gelu


def test_open_clip_without_tag_or_config_uses_agreeing_tags_or_warns(
    open_clip_config, open_clip_files, monkeypatch, caplog
):
    name = open_clip_config.stem
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    assert enc.preprocess_source == "defaults" and enc.preprocess_cfg["resize_mode"] == "shortest"
    assert "no pretrained_tag and no open_clip_config.json next to tiny_open_clip.safetensors" in caplog.text
    # All of the model's tags agree (e.g. every SigLIP tag squashes): their settings need no tag.
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"a": dict(SQUASH_TAG), "b": dict(SQUASH_TAG)})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    assert enc.preprocess_cfg["resize_mode"] == "squash" and not caplog.text
    # Tags that disagree (ViT-L-14: openai, laion2b ...): defaults, and the warning lists the tags.
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"sq": dict(SQUASH_TAG), "oa": dict(OPENAI_TAG)})
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    assert (
        enc.preprocess_source == "defaults"
        and "set pretrained_tag to the checkpoint's tag (one of ['sq', 'oa'])" in caplog.text
    )


def no_text_towers(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the text tower was built")

    monkeypatch.setattr(open_clip.model, "_build_text_tower", refuse)
    monkeypatch.setattr(open_clip.coca_model, "_build_text_tower", refuse)


def test_open_clip_builds_only_the_image_tower(open_clip_config, open_clip_files, monkeypatch, tmp_path):
    from safetensors.torch import save_file

    no_text_towers(monkeypatch)
    model, full, visual_only = open_clip_files
    for weights in (full, visual_only):
        enc = OpenClipEncoder(str(open_clip_config), weights)
        assert sum(p.numel() for p in enc.model.parameters()) == sum(p.numel() for p in model.visual.parameters())
    # A Hugging Face text tower (xlm-roberta, mt5, nllb ...) is never built, so nothing is fetched.
    config = dict(
        TINY_OPEN_CLIP, text_cfg={"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name": "xlm-roberta-base"}
    )
    path = tmp_path / "chunkwise-test-tiny-xlmr.json"
    path.write_text(json.dumps(config))
    torch.manual_seed(2)
    tower = open_clip.model._build_vision_tower(16, TINY_OPEN_CLIP["vision_cfg"])
    sd = {"visual." + k: v.contiguous() for k, v in tower.state_dict().items()}
    sd["text.proj.0.weight"] = torch.zeros(8, 8)  # the text tower's tensors are left on disk
    save_file(sd, str(tmp_path / "xlmr.safetensors"))
    enc = OpenClipEncoder(str(path), tmp_path / "xlmr.safetensors")
    frames = smooth_frames(2, 32, 32)
    with torch.no_grad():
        reference = torch.nn.functional.normalize(tower.eval()(enc._preprocess(frames)), dim=-1)
    assert torch.allclose(enc.encode(frames), reference, atol=1e-5)


def test_open_clip_coca_tower_gives_its_pooled_embedding(tmp_path):
    config = {
        "embed_dim": 16,
        "vision_cfg": dict(
            TINY_OPEN_CLIP["vision_cfg"], attentional_pool=True, attn_pooler_heads=2, output_tokens=True
        ),
        "text_cfg": dict(TINY_OPEN_CLIP["text_cfg"], embed_cls=True, output_tokens=True),
        "multimodal_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
        "custom_text": True,
    }
    path = tmp_path / "chunkwise-test-tiny-coca.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(str(path))
    torch.manual_seed(4)
    coca = open_clip.create_model(path.stem, pretrained=None).eval()
    torch.save(coca.state_dict(), tmp_path / "coca.pt")
    enc = OpenClipEncoder(str(path), tmp_path / "coca.pt")
    frames = smooth_frames(3, 32, 32, seed=2)
    with torch.no_grad():
        reference = coca.encode_image(enc._preprocess(frames), normalize=True)
    emb = enc.encode(frames)
    assert emb.shape == (3, 16) and torch.allclose(emb, reference, atol=1e-5)


def test_open_clip_refuses_the_hub(open_clip_files):
    with pytest.raises(ChunkwiseError, match="fetched from the Hugging Face Hub, which this scorer never does"):
        OpenClipEncoder("hf-hub:timm/ViT-B-16-SigLIP", open_clip_files[1])


class NotATensor:
    """A class a pickle would have to import and build: weights_only refuses it."""


def test_weights_files_are_read_without_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": NotATensor()}, path)
    with pytest.raises(ChunkwiseError, match=r"torch.load\(weights_only=True\).*use a .safetensors file"):
        load_weights_file(path)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ChunkwiseError, match="does not hold a state dict of tensors"):
        load_weights_file(tmp_path / "list.pt")
    torch.save({"model": {"module.w": torch.ones(2)}}, tmp_path / "wrapped.pt")
    assert list(load_weights_file(tmp_path / "wrapped.pt")) == ["w"]


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_such(name, *args, **kwargs):
        if name.split(".")[0] in ("open_clip", "transformers"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_such)
    import importlib

    monkeypatch.setattr(importlib, "import_module", lambda name, *a: no_such(name))
    with pytest.raises(ImportError, match="pip install open_clip_torch"):
        OpenClipEncoder("ViT-B-32")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip_vision_model"}))
    with pytest.raises(ImportError, match="pip install transformers"):
        TransformersEncoder(tmp_path)


# ---------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_clip") / "tiny-clip-vision"
    torch.manual_seed(12)
    model = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**TINY_CLIP_VISION)).eval()
    model.save_pretrained(str(folder))
    size = TINY_CLIP_VISION["image_size"]
    transformers.CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    ).save_pretrained(str(folder))
    return folder, model


def test_transformers_encoder_shapes_and_processor_match(clip_folder):
    folder, model = clip_folder
    enc = TransformersEncoder(folder, batch_size=2)
    assert enc.name == "transformers clip_vision_model (tiny-clip-vision)"
    frames = smooth_frames(5, 42, 56, seed=3)  # non-square, downscaled to 28 px
    emb = enc.encode(frames)
    assert emb.shape == (5, TINY_CLIP_VISION["projection_dim"])
    assert torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert (enc.calls, enc.images_encoded) == (1, 5)
    # Reference: the folder's own image processor on 8-bit PIL images, then the model.
    processor = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    pixels = processor(images=[to_pil(f) for f in frames], return_tensors="pt")["pixel_values"]
    ours = enc.processor(images=frames.movedim(-1, 1), return_tensors="pt", do_rescale=False)["pixel_values"]
    assert ours.shape == pixels.shape == (5, 3, 28, 28)
    assert (ours - pixels).abs().mean() < 0.01 and (ours - pixels).abs().max() < 0.05
    with torch.no_grad():
        reference = torch.nn.functional.normalize(model(pixel_values=pixels).image_embeds, dim=-1)
    assert torch.nn.functional.cosine_similarity(emb, reference).min() > 0.999


def test_transformers_non_square_frames_are_centre_cropped(clip_folder):
    enc = TransformersEncoder(clip_folder[0])
    frames = smooth_frames(2, 28, 44, seed=2)  # short side already 28: the centre 28x28 is all that counts
    emb = enc.encode(torch.cat([frames, with_other_sides(frames, 8, seed=8)]))
    assert torch.allclose(emb[:2], emb[2:], atol=1e-4)


def test_transformers_folder_without_processor_falls_back_to_clip_preprocessing(clip_folder, tmp_path, caplog):
    folder, model = clip_folder
    bare = tmp_path / "bare"
    model.save_pretrained(str(bare))
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        enc = TransformersEncoder(bare)
    assert "no preprocessor_config.json" in caplog.text
    frames = smooth_frames(2, 28, 36, seed=4)
    assert torch.allclose(enc.encode(frames), TransformersEncoder(folder).encode(frames), atol=1e-4)


def test_transformers_full_clip_folder_keeps_its_projection(tmp_path):
    # A full CLIP folder (openai/clip-vit-large-patch14 style) has projection_dim at the top of its config.
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
    text.update(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = {k: v for k, v in TINY_CLIP_VISION.items() if k != "projection_dim"}
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
    torch.manual_seed(3)
    full = transformers.CLIPModel(cfg).eval()
    full.save_pretrained(str(tmp_path / "clip"))
    enc = TransformersEncoder(tmp_path / "clip")
    frames = smooth_frames(2, 28, 28, seed=6)
    emb = enc.encode(frames)
    assert emb.shape == (2, 24)
    pixels = enc.processor(images=frames.movedim(-1, 1), return_tensors="pt", do_rescale=False)["pixel_values"]
    with torch.no_grad():
        out = full.get_image_features(pixel_values=pixels)
    reference = torch.nn.functional.normalize(getattr(out, "pooler_output", out), dim=-1)
    assert torch.allclose(emb, reference, atol=1e-5)


def test_transformers_folder_missing_weights_is_refused(tmp_path):
    # A CLIPVisionModel folder has no visual projection: loaded as WithProjection it would be random.
    torch.manual_seed(4)
    transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**TINY_CLIP_VISION)).save_pretrained(str(tmp_path / "m"))
    with pytest.raises(
        ChunkwiseError, match=r"lacks 1 weights of its CLIPVisionModelWithProjection.*visual_projection"
    ):
        TransformersEncoder(tmp_path / "m")


def test_transformers_dinov2_folder_gives_pooled_features(tmp_path):
    cfg = transformers.Dinov2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=28, patch_size=14
    )
    torch.manual_seed(1)
    transformers.Dinov2Model(cfg).save_pretrained(str(tmp_path / "dino"))
    enc = TransformersEncoder(tmp_path / "dino")
    assert enc.model_type == "dinov2"
    emb = enc.encode(smooth_frames(3, 28, 28))
    assert emb.shape == (3, 32) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_transformers_errors_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json missing\); put the model folder .* models/clip_vision/"):
        TransformersEncoder(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ChunkwiseError, match="holds a 'bert' model; expected a CLIP vision"):
        TransformersEncoder(tmp_path)


# ---------------------------------------------------------------- caching across candidates in the engine


@pytest.mark.parametrize("backend", ["histogram", "open_clip"])
def test_search_chunk_encodes_guide_and_anchor_once(backend, open_clip_config, open_clip_files):
    if backend == "open_clip":
        encoder = OpenClipEncoder(str(open_clip_config), open_clip_files[1])
    else:
        encoder = CallableEncoder(lambda b: torch.cat([b.mean(dim=(1, 2)), b.std(dim=(1, 2))], dim=-1))
    seen = []
    inner = encoder._embed
    encoder._embed = lambda batch: (seen.append(batch.shape[0]), inner(batch))[1]
    frames, m = 6, 5
    scorer = ClipMinCosine(encoder, anchor_weight=0.4, frame_stride=2)
    outcome = search_chunk(
        ToyDenoiser(frames=frames, drift=0.1),
        scorer,
        image(16, 16, seed=1),
        SearchSettings(candidates=m, k=2, steps=4),
        seed=7,
        anchor=image(16, 16, seed=2),
    )
    # One call for guide + anchor together, then one per candidate with frames {0, 2, 4, 5}.
    assert seen == [2] + [4] * m
    assert (encoder.calls, encoder.images_encoded) == (1 + m, 2 + 4 * m)
    scores = [c["score"] for c in outcome.record.candidates]
    assert len(scores) == m and len(set(scores)) == m
    assert outcome.record.chosen == max(range(m), key=scores.__getitem__)
