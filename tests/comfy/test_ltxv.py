"""Tier 2: the LTX-Video binding (nodes/families/ltxv.py) against the stock ltxv_image_to_video graph
(LTXVImgToVideo -> LTXVConditioning -> KSampler) on a tiny random LTXV model and VAE, CPU.

The family-independent behaviour (shapes, NFE per step, resume, noise, previews, ChunkLoop) runs for
LTX-Video through the ``family_name`` / ``family`` parameters of the shared tests; here is what is
LTX-Video's own: the stock graph, the soft noise_mask of strength < 1, the size rule, the per-chunk nodes.
"""

from __future__ import annotations

import pytest
import torch
from chunkwise.nodes.chunk_nodes import FullDenoise, KStepPreview, NoiseCandidates, SelectBestNoise
from chunkwise.nodes.families import I2VLTXV, LTXVFamily, ltxv
from chunkwise.nodes.families.node import check_latent_format
from chunkwise.nodes.host import ComfyI2V, count_nfe
from chunkwise.search.engine import LoopSettings, SearchSettings, run_chunks
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy.test_comfy_i2v import LTXV_SIZE, BrightnessScorer, guide_image, spy_calls
from chunkwise.tests.pure.toys import MeanColourScorer
from comfy_extras.nodes_lt import LTXVConditioning, LTXVImgToVideo

import nodes as comfy_nodes

SAMPLER = dict(steps=4, cfg=3.0, sampler_name="euler", scheduler="simple")


def bound(parts, strength=1.0, **sampler):
    model, vae, positive, negative = parts
    settings = {**SAMPLER, **sampler}
    return I2VLTXV.execute(model, positive, negative, vae, strength=strength, frame_rate=24.0, **LTXV_SIZE,
                           **settings)[0]


def stock(parts, guide, strength=1.0, frame_rate=24.0):
    """The stock template's conditioning: LTXVImgToVideo, then LTXVConditioning."""
    model, vae, positive, negative = parts
    positive, negative, latent = LTXVImgToVideo.execute(positive, negative, guide, vae, batch_size=1,
                                                        strength=strength, **LTXV_SIZE).result
    positive, negative = LTXVConditioning.execute(positive, negative, frame_rate).result
    return positive, negative, latent


def ksampler(parts, cond, seed, **sampler):
    settings = {**SAMPLER, **sampler}
    positive, negative, latent = cond
    return comfy_nodes.KSampler().sample(parts[0], seed, settings["steps"], settings["cfg"], settings["sampler_name"],
                                         settings["scheduler"], positive, negative, latent, denoise=1.0)[0]["samples"]


@pytest.mark.parametrize("strength", [1.0, 0.15])
def test_the_first_chunk_is_the_stock_workflows_ksampler_chunk(ltxv_parts, strength):
    i2v = bound(ltxv_parts, strength)
    guide = guide_image(3)
    cond = i2v.condition(guide)
    made = stock(ltxv_parts, guide, strength)
    assert torch.equal(cond.latent["samples"], made[2]["samples"])
    assert torch.equal(cond.latent["noise_mask"], made[2]["noise_mask"])
    assert cond.latent["noise_mask"].flatten().tolist() == pytest.approx([1.0 - strength, 1.0])
    assert cond.positive[0][1]["frame_rate"] == 24.0 and "attention_mask" in cond.positive[0][1]
    ours = i2v.sample(cond, make_noise(i2v.latent_template(cond), 42), steps=SAMPLER["steps"]).latent
    theirs = ksampler(ltxv_parts, made, 42)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(i2v.decode(ours), ltxv_parts[1].decode(theirs)[0], rtol=0, atol=1e-6)
    if strength == 1.0:  # the start frame is pinned: the first latent frame is the encoded guide
        torch.testing.assert_close(ours[:, :, :1], made[2]["samples"][:, :, :1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("strength", [1.0, 0.15])
def test_truncated_and_resumed_equals_the_full_run_under_a_hard_and_a_soft_noise_mask(ltxv_parts, strength):
    """LTXV's inpaint blend uses the clean latent only (no noise term), so the corrected-noise resume is
    exact for the soft mask of strength < 1 too."""
    i2v = bound(ltxv_parts, strength)
    cond = i2v.condition(guide_image(5))
    noise = make_noise(i2v.latent_template(cond), 9)
    full = i2v.sample(cond, noise, steps=6)
    for k in (1, 3):
        part = i2v.sample(cond, noise, steps=6, end_step=k)
        before = i2v.nfe
        rest = i2v.sample(cond, noise, steps=6, start_step=k, resume=part)
        assert i2v.nfe - before == 6 - k
        torch.testing.assert_close(rest.latent, full.latent, rtol=1e-4, atol=1e-4)


def test_candidates_batch_along_the_batch_dimension_and_equal_one_by_one(ltxv_parts):
    i2v = bound(ltxv_parts, 0.15)
    assert i2v.can_batch()
    cond = i2v.condition(guide_image(6))
    noises = [make_noise(i2v.latent_template(cond), s) for s in (1, 2, 3)]
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=4, end_step=2)
    assert calls == [3 * 2] * 2  # three candidates, cond and uncond, in one call per step
    assert i2v.nfe - before == 3 * 2
    one_by_one = [i2v.sample(cond, n, steps=4, end_step=2) for n in noises]
    for a, b in zip(batched, one_by_one, strict=True):
        torch.testing.assert_close(a.latent, b.latent, rtol=1e-4, atol=1e-5)
    resumed = i2v.sample_batch(cond, noises, steps=4, start_step=2, resumes=batched)
    for r, n in zip(resumed, noises, strict=True):
        torch.testing.assert_close(r.latent, i2v.sample(cond, n, steps=4).latent, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode, full_nfe", [("short", 4), ("truncated", 4 - 2)])
def test_a_chunk_costs_m_k_plus_s_and_m_k_plus_s_minus_k_when_the_winner_resumes(ltxv_parts, mode, full_nfe):
    i2v = bound(ltxv_parts)
    settings = LoopSettings(chunks=2, seed=4, search=SearchSettings(candidates=3, k=2, steps=4, preview_mode=mode),
                            drop_first_frame=True)
    result = run_chunks(i2v, BrightnessScorer(), guide_image(7), settings)
    assert tuple(result.video().shape) == (2 * 9 - 1, 64, 64, 3)
    for chunk in result.report["chunks"]:
        assert chunk["nfe"] == {"preview": 3 * 2, "full": full_nfe}
        scores = [c["score"] for c in chunk["candidates"]]
        assert chunk["chosen"] == max(range(3), key=lambda j: (scores[j], -j))
    assert i2v.nfe == 2 * (3 * 2 + full_nfe)
    again = run_chunks(bound(ltxv_parts), BrightnessScorer(), guide_image(7), settings)
    assert torch.equal(again.video(), result.video())
    assert [c["chosen_seed"] for c in again.report["chunks"]] == [c["chosen_seed"] for c in result.report["chunks"]]


def test_the_hand_wired_per_chunk_nodes_work_after_the_stock_nodes_and_the_winner_replays_in_ksampler(ltxv_parts):
    model, vae = ltxv_parts[0], ltxv_parts[1]
    guide = guide_image(8)
    positive, negative, latent = stock(ltxv_parts, guide, strength=1.0)
    counted, counter = count_nfe(model)
    candidates = NoiseCandidates.execute(latent, 3, 60)[0]
    previews = KStepPreview.execute(counted, positive, negative, latent, candidates, vae, 2, mode="truncated",
                                    **SAMPLER)[0]
    assert counter.count == 3 * 2
    from chunkwise.nodes.chunk_nodes import ClipMinCosineScore

    scores = ClipMinCosineScore.execute(guide, previews, scorer=MeanColourScorer())[0]
    noise, seed, index = SelectBestNoise.execute(candidates, scores).args
    assert index == max(range(3), key=lambda j: (scores.values[j], -j)) and seed == 60 + index
    before = counter.count
    chunk = FullDenoise.execute(counted, positive, negative, latent, noise, previews=previews,
                                **SAMPLER)[0]["samples"]
    assert counter.count - before == SAMPLER["steps"] - 2  # resumed under the noise_mask: k evaluations saved
    torch.testing.assert_close(chunk, ksampler(ltxv_parts, (positive, negative, latent), seed), rtol=1e-4,
                               atol=1e-4)


SIZES = [32, 48, 64, 80, 96, 128]
LENGTHS = [1, 5, 8, 9, 10, 16, 17, 33]


def test_construction_refuses_what_validate_inputs_refuses_and_the_schema_follows_the_spec(ltxv_parts):
    _, _, positive, negative = ltxv_parts
    checked = 0
    for width in SIZES:
        for length in LENGTHS:
            verdict = I2VLTXV.validate_inputs(width=width, height=64, length=length)
            if verdict is True:
                assert LTXVFamily(positive, negative, width=width, height=64, length=length).frames == length
                continue
            checked += 1
            with pytest.raises(ChunkwiseError) as refused:
                LTXVFamily(positive, negative, width=width, height=64, length=length)
            # The widget range message (ComfyUI's limits) or the size rule's, both naming the value.
            assert str(width) in str(refused.value) or str(length) in str(refused.value)
            assert str(width) in verdict or str(length) in verdict
    assert checked > 20
    assert "multiple of 32, got 80" in I2VLTXV.validate_inputs(width=80, height=64, length=9)
    assert "8*n + 1 frames" in I2VLTXV.validate_inputs(width=64, height=64, length=10)
    assert "between 9 and" in I2VLTXV.validate_inputs(width=64, height=64, length=1)
    with pytest.raises(ChunkwiseError, match="at least 9"):
        LTXVFamily(positive, negative, width=64, height=64, length=1)
    with pytest.raises(ChunkwiseError, match="strength must be between 0 and 1"):
        LTXVFamily(positive, negative, strength=1.5, **LTXV_SIZE)
    with pytest.raises(ChunkwiseError, match="positive and negative CONDITIONING"):
        LTXVFamily([], negative, **LTXV_SIZE)
    inputs = {i.id: i for i in I2VLTXV.define_schema().inputs}
    assert inputs["width"].step == inputs["height"].step == ltxv.SPEC.sizes.multiple == 32
    assert inputs["length"].step == ltxv.SPEC.sizes.frames_step == 8
    assert [inputs[k].default for k in ("width", "height", "length", "frame_rate")] == [768, 512, 97, 25.0]
    assert [inputs[k].default for k in ("steps", "cfg", "sampler_name", "scheduler")] == [
        ltxv.SPEC.defaults.steps, ltxv.SPEC.defaults.cfg, ltxv.SPEC.defaults.sampler_name,
        ltxv.SPEC.defaults.scheduler]


def test_the_model_has_the_familys_latent_format_and_a_noise_mask_refuses_two_experts(ltxv_parts, caplog):
    model, vae, positive, negative = ltxv_parts
    assert type(model.model.latent_format).__name__ == ltxv.SPEC.latent_format == "LTXV"
    with caplog.at_level("WARNING", logger="chunkwise"):
        check_latent_format(model, ltxv.SPEC)
    assert not caplog.records
    family = LTXVFamily(positive, negative, **LTXV_SIZE)
    assert family.describe() == "LTX-Video 64x64, 9 frames, strength 1.0, 25 fps"
    with pytest.raises(ChunkwiseError, match="two experts need a latent without a noise_mask"):
        ComfyI2V(model, vae, family, model_low_noise=model, switch_step=1, schedule_steps=2)
