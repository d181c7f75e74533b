"""Tier 2: the toy world (an analytic I2V model, no weights) driven by ComfyUI's own sampler, in-process.

The toy world is a toy that demonstrates the mechanism; these tests check that it is what its
docstring says: a real ComfyUI model whose initial noise alone decides the drift, and that the
search with the weight-free colour scorer keeps the colours closer to the input image.
"""

from __future__ import annotations

import json

import comfy.model_base
import comfy.model_patcher
import comfy.sd
import folder_paths
import pytest
import torch
from chunkwise.nodes.loop import ChunkLoop
from chunkwise.nodes.scorer_nodes import ChunkwiseScorerColour
from chunkwise.nodes.toy_world import ChunkwiseToyWorld, read_codes, toy_video
from chunkwise.scorers.colour_match import ColourMatch
from chunkwise.scorers.evaluation_cli import evaluate_command
from chunkwise.search.colour import colour_drift
from chunkwise.search.noise import make_noise

W, H, T = 48, 32, 7


def bind(drift=1.0, pan=1, steps=6, sampler="euler"):
    return ChunkwiseToyWorld.execute(W, H, T, drift, pan, steps, sampler, "simple").result[0]


def guide(seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 1, W // 8, 3, generator=g).repeat_interleave(8, dim=2)  # vertical stripes
    return (base.expand(1, H, W, 3) * 0.6 + 0.2).contiguous()


def test_schema_is_labelled_a_toy_and_every_input_has_a_tooltip():
    schema = ChunkwiseToyWorld.define_schema()
    assert schema.node_id == "ChunkwiseToyWorld" and "TOY model" in schema.description
    assert "not a result about real models" in schema.description
    for item in schema.inputs + ChunkwiseScorerColour.define_schema().inputs:
        assert (item.tooltip or "").strip(), item.id
    assert ChunkwiseToyWorld.validate_inputs(width=50) != True  # noqa: E712 - a message, not True


def test_it_is_a_comfy_model_patcher_with_the_pixel_space_vae():
    i2v = bind()
    assert isinstance(i2v.model, comfy.model_patcher.ModelPatcher)
    assert isinstance(i2v.model.model, comfy.model_base.BaseModel)
    assert type(i2v.model.model.latent_format).__name__ == "ChromaRadiance"
    assert isinstance(i2v.vae, comfy.sd.VAE)
    assert "toy" in i2v.describe()


def test_the_sampled_chunk_is_the_worlds_video_for_the_code_in_the_initial_noise():
    i2v, image = bind(), guide()
    cond = i2v.condition(image)
    noise = make_noise(i2v.latent_template(cond), 11)
    frames = i2v.decode(i2v.sample(cond, noise, steps=6).latent)
    # The code the model reads is the initial noise's projection (sigma_max = 1 for this flow model).
    z = read_codes(noise.view(1, T, 3, H, W), torch.ones(1))[0]
    expected = (toy_video(image[0].movedim(-1, 0) * 2 - 1, z, T, 1, 1.0) + 1) / 2
    assert frames.shape == (T, H, W, 3)
    assert torch.allclose(frames, expected.movedim(1, -1).clamp(0, 1), atol=2e-3)
    assert torch.allclose(frames[0], image[0], atol=2e-3)  # the chunk starts at its guide


def test_without_drift_a_chunk_is_the_guide_panned_losslessly():
    i2v, image = bind(drift=0.0, pan=2), guide()
    cond = i2v.condition(image)
    frames = i2v.decode(i2v.sample(cond, make_noise(i2v.latent_template(cond), 3), steps=4).latent)
    for t in range(T):
        assert torch.allclose(frames[t], torch.roll(image[0], -2 * t, dims=1), atol=2e-3)


def test_the_noise_decides_the_drift_and_a_k_step_preview_shows_it():
    i2v, image = bind(), guide()
    cond = i2v.condition(image)
    template = i2v.latent_template(cond)
    drifts, previews = [], []
    for seed in range(4):
        noise = make_noise(template, seed)
        full = i2v.decode(i2v.sample(cond, noise, steps=6).latent)
        preview = i2v.decode(i2v.sample(cond, noise, steps=2).latent)
        drifts.append(colour_drift(full[-1:], image))
        previews.append(colour_drift(preview[-1:], image))
    assert len({round(d, 3) for d in drifts}) == 4  # four noises, four drifts
    assert previews == pytest.approx(drifts, abs=0.05)


def test_search_with_the_colour_scorer_drifts_less_than_naive_chaining():
    i2v, image = bind(), guide()
    finals = {}
    for m in (1, 4):
        video = ChunkLoop.execute(i2v, image, 4, m, 2, "short schedule", 0, m > 1, True,
                                  scorer=ColourMatch() if m > 1 else None).result[0]
        assert video.shape[0] == T + 3 * (T - 1)
        finals[m] = colour_drift(video[-1:], image)
    print(f"\ntoy world 48x32, 4 chunks: last-frame colour drift naive {finals[1]:.2f}, search {finals[4]:.2f}")
    assert finals[4] < finals[1]


def test_chunkwise_evaluate_reads_a_run_folder_written_by_chunkloop(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(folder_paths, "output_directory", str(tmp_path))
    out = ChunkLoop.execute(bind(), guide(), 3, 2, 1, "short schedule", 0, True, True, scorer=ColourMatch(),
                            run_name="toy run").result
    folder = out[3]
    assert folder.endswith("toy run")
    code = evaluate_command([folder, "--json", str(tmp_path / "eval.json"), "--plot", str(tmp_path / "eval.png")])
    assert code == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["source"]["kind"] == "run folder" and ev["label"] == "toy run"
    assert [c["frames"] for c in ev["chunks"]] == [T, T - 1, T - 1]
    assert ev["source"]["report"]["candidates"] == 2
    assert ev["whole_video"]["temporal_flickering"] is not None and "subject_consistency" in ev["left_out"]
    assert (tmp_path / "eval.png").stat().st_size > 1000
    assert "chunkwise evaluation 'toy run'" in capsys.readouterr().out
