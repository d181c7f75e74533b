"""Tier 1: the evaluator on tiny random encoders (DINO through timm and transformers, open_clip, transformers CLIP),
VBench's DINO preprocessing against torchvision's, and the ``chunkwise evaluate`` command line. No downloads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from chunkwise.scorers.dino import DinoEncoder
from chunkwise.scorers.evaluation import EvalModels, evaluate_video
from chunkwise.scorers.evaluation_cli import evaluate_command
from chunkwise.scorers.vbench import consistency_score, dino_preprocess
from chunkwise.scorers.verifiers import LinearHead
from chunkwise.search import ChunkwiseError

timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")
open_clip = pytest.importorskip("open_clip")
transforms = pytest.importorskip("torchvision.transforms")

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def video(t=6, h=24, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(t, 3, 4, 5, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return ((x * 255).round() / 255).movedim(1, -1).contiguous()


def tiny_vit(seed=1):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    return VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=1, num_classes=0).eval()


@pytest.fixture(scope="module")
def dino_file(tmp_path_factory):
    """A DINO-layout checkpoint (the key names of dino_vitbase16_pretrain.pth) with tiny random weights."""
    model = tiny_vit()
    path = tmp_path_factory.mktemp("dino") / "tiny_dino.pth"
    torch.save(model.state_dict(), path)
    return model, path


def vbench_dino_pixels(frames: torch.Tensor) -> torch.Tensor:
    """vbench/utils.py dino_transform(224), built from torchvision, on the frames' 8-bit values."""
    x = (frames * 255).round().movedim(-1, 1)
    pipeline = transforms.Compose([
        transforms.Resize(size=224),
        transforms.Lambda(lambda v: v.float().div(255.0)),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    return pipeline(x)


def test_dino_preprocessing_is_vbenchs_dino_transform():
    frames = video(h=30, w=50)
    ours = dino_preprocess(frames)
    reference = vbench_dino_pixels(frames)
    assert ours.shape == reference.shape == (6, 3, 224, 373)  # short side 224, no crop, int(224 * 50 / 30)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)
    tall = dino_preprocess(video(h=50, w=30))
    assert tall.shape[-2:] == (373, 224)


def test_dino_encoder_from_a_dino_checkpoint_gives_the_class_token(dino_file):
    model, path = dino_file
    enc = DinoEncoder(path)
    assert enc.name == "dino timm (tiny_dino.pth)"
    frames = video()
    pixels = vbench_dino_pixels(frames)
    pixels = pixels[..., : pixels.shape[-2] // 16 * 16, : pixels.shape[-1] // 16 * 16]
    model.set_input_size(img_size=pixels.shape[-2:])  # the reference resamples its position embeddings too
    with torch.no_grad():
        reference = torch.nn.functional.normalize(model(pixels), dim=-1)
    emb = enc.encode(frames)
    assert emb.shape == (6, 64)
    assert torch.nn.functional.cosine_similarity(emb, reference).min() > 0.9999
    # A safetensors copy of the same weights loads the same model.
    from safetensors.torch import save_file

    copy = path.with_name("tiny_dino.safetensors")
    save_file({k: v.contiguous() for k, v in torch.load(path, weights_only=True).items()}, str(copy))
    torch.testing.assert_close(DinoEncoder(copy).encode(frames), emb)


def test_dino_encoder_from_a_transformers_vit_folder(tmp_path):
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                 image_size=32, patch_size=16)
    torch.manual_seed(2)
    model = transformers.ViTModel(cfg, add_pooling_layer=False).eval()
    model.save_pretrained(str(tmp_path / "dino-vit"))
    enc = DinoEncoder(tmp_path / "dino-vit")
    frames = video()
    pixels = vbench_dino_pixels(frames)[..., :224, :368]
    with torch.no_grad():
        reference = model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state[:, 0]
    cos = torch.nn.functional.cosine_similarity(enc.encode(frames), reference)
    assert cos.min() > 0.9999


def test_dino_encoder_errors_name_the_file_to_provide(tmp_path):
    with pytest.raises(FileNotFoundError, match="put VBench's dino_vitbase16_pretrain.pth"):
        DinoEncoder(tmp_path / "missing.pth")
    torch.save({"weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ChunkwiseError, match="is not a DINO ViT checkpoint"):
        DinoEncoder(tmp_path / "other.pth")
    cfg = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                    image_size=28, patch_size=14)
    transformers.Dinov2Model(cfg).save_pretrained(str(tmp_path / "dinov2"))
    with pytest.raises(ChunkwiseError, match="holds a 'dinov2' model; a DINO folder is a 'vit' model"):
        DinoEncoder(tmp_path / "dinov2")


def test_frames_to_numbers_on_tiny_dino_and_open_clip(dino_file, tmp_path):
    from chunkwise.scorers.open_clip_encoder import OpenClipEncoder

    config = tmp_path / "chunkwise-eval-tiny-clip.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    dino = DinoEncoder(dino_file[1])
    clip = OpenClipEncoder(str(config))
    head = LinearHead({"weight": torch.randn(1, 16, generator=torch.Generator().manual_seed(3)), "bias": torch.ones(1)})
    frames = video(t=9)
    ev = evaluate_video(frames, 5, drop_first_frame=True,
                        models=EvalModels(subject=dino, background=clip, aesthetic=clip, aesthetic_head=head))
    assert ev["dimensions"]["subject_consistency"]["model"] == "dino timm (tiny_dino.pth)"
    assert ev["dimensions"]["background_consistency"]["model"].startswith("open_clip chunkwise-eval-tiny-clip")
    assert set(ev["left_out"]) == {"motion_smoothness"}
    assert ev["whole_video"]["subject_consistency"] == pytest.approx(consistency_score(dino.encode(frames)), abs=1e-5)
    assert ev["chunks"][1]["scores"]["background_consistency"] == pytest.approx(
        consistency_score(clip.encode(frames[5:])), abs=1e-5)
    emb = torch.nn.functional.normalize(clip.encode(frames), dim=-1)
    assert ev["whole_video"]["aesthetic_quality"] == pytest.approx(float(head(emb).mean() / 10), abs=1e-5)
    last = [0.0 if d is None else d for d in (c["drift"]["embedding"] for c in ev["chunks"])]
    expected = 1 - float(emb[4] @ emb[0])
    assert last[0] == pytest.approx(expected, abs=1e-5)


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A naive and a search run folder of the toy denoiser at the same seed."""
    from chunkwise.search import LoopSettings, SearchSettings, run_chunks
    from chunkwise.search.sinks import DiskSink
    from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image

    out = tmp_path_factory.mktemp("runs")
    for name, search in (("naive", False), ("search", True)):
        settings = LoopSettings(chunks=3, seed=7, drop_first_frame=True, search=SearchSettings(
            candidates=3, k=2, steps=4, enabled=search)).validate()
        run_chunks(ToyDenoiser(frames=5, drift=0.3), MeanColourScorer(), image(seed=1), settings,
                   sink=DiskSink(out, name))
    return out


def test_evaluate_command_compares_two_run_folders(runs, dino_file, tmp_path, capsys):
    out = tmp_path / "cmp" / "naive_vs_search.json"
    plot = tmp_path / "cmp" / "naive_vs_search.png"
    code = evaluate_command([str(runs / "naive"), "--compare", str(runs / "search"), "--json", str(out),
                             "--plot", str(plot), "--dino", str(dino_file[1]), "--device", "cpu"])
    assert code == 0
    cmp = json.loads(out.read_text())
    assert cmp["format"] == "chunkwise.eval-compare/1"
    assert (cmp["a"]["label"], cmp["b"]["label"]) == ("naive", "search")
    assert cmp["a"]["source"]["report"]["candidates"] == 1 and cmp["b"]["source"]["report"]["candidates"] == 3
    assert "subject_consistency" in cmp["metrics"] and "background_consistency" not in cmp["metrics"]
    a = json.loads(out.with_name("naive_vs_search.a.eval.json").read_text())
    b = json.loads(out.with_name("naive_vs_search.b.eval.json").read_text())
    assert cmp["chunks"][2]["difference"]["temporal_flickering"] == pytest.approx(
        b["chunks"][2]["scores"]["temporal_flickering"] - a["chunks"][2]["scores"]["temporal_flickering"])
    from PIL import Image

    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width == 960
    assert "chunkwise comparison: b = 'search' minus a = 'naive'" in capsys.readouterr().out
    # An evaluation JSON is read back as it is (no models needed): the same numbers, a new chart.
    again = tmp_path / "again.json"
    assert evaluate_command([str(out.with_name("naive_vs_search.a.eval.json")), "--json", str(again)]) == 0
    assert json.loads(again.read_text()) == a


def test_evaluate_command_on_frames_and_video_files_and_its_errors(runs, tmp_path, capsys):
    from chunkwise.scorers.evaluation import open_run_folder

    whole = open_run_folder(runs / "naive")[0].video()
    folder = tmp_path / "frames"
    folder.mkdir()
    from PIL import Image

    for i, f in enumerate((whole * 255).round().to(torch.uint8).numpy()):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    # No chunk length for a plain folder: a clear error, status 2.
    assert evaluate_command([str(folder), "--json", str(tmp_path / "x.json")]) == 2
    assert "pass --frames-per-chunk N" in capsys.readouterr().err
    out = tmp_path / "frames.json"
    missing = tmp_path / "nowhere" / "dino_vitbase16_pretrain.pth"
    assert evaluate_command([str(folder), "--frames-per-chunk", "5", "--drop-first-frame", "--json", str(out),
                             "--dino", str(missing), "--device", "cpu"]) == 0
    ev = json.loads(out.read_text())
    assert [c["frames"] for c in ev["chunks"]] == [5, 4, 4]
    assert str(missing) in ev["left_out"]["subject_consistency"]
    assert evaluate_command([str(runs / "naive"), "--json", str(tmp_path / "run.json")]) == 0
    run_ev = json.loads((tmp_path / "run.json").read_text())
    assert ev["whole_video"]["temporal_flickering"] == pytest.approx(run_ev["whole_video"]["temporal_flickering"])
    # A lossless video file (PyAV) gives the same numbers as its frames.
    av = pytest.importorskip("av")
    path = tmp_path / "video.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = whole.shape[2], whole.shape[1], "bgr0"
        for f in (whole * 255).round().to(torch.uint8).numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert evaluate_command([str(path), "--frames-per-chunk", "5", "--drop-first-frame",
                             "--json", str(tmp_path / "video.json")]) == 0
    video_ev = json.loads((tmp_path / "video.json").read_text())
    assert video_ev["source"]["kind"] == "video file"
    assert video_ev["whole_video"]["temporal_flickering"] == pytest.approx(ev["whole_video"]["temporal_flickering"])


def test_evaluate_command_loads_a_transformers_clip_folder_for_background(runs, tmp_path):
    cfg = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=28, patch_size=14, projection_dim=16)
    torch.manual_seed(4)
    transformers.CLIPVisionModelWithProjection(cfg).save_pretrained(str(tmp_path / "clip-b32"))
    out = tmp_path / "bg.json"
    assert evaluate_command([str(runs / "search"), "--json", str(out), "--clip-b32", str(tmp_path / "clip-b32"),
                             "--device", "cpu"]) == 0
    ev = json.loads(out.read_text())
    assert ev["dimensions"]["background_consistency"]["model"] == "transformers clip_vision_model (clip-b32)"
    assert 0.0 <= ev["whole_video"]["background_consistency"] <= 1.0
    assert ev["drift"]["embedding_model"] == "transformers clip_vision_model (clip-b32)"
