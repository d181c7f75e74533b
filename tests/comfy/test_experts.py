"""Tier 2: Wan 2.2 14B-style two experts (high-noise model, then low-noise model from switch_step) on tiny Wan
models: the bound I2V equals the stock two-KSamplerAdvanced chain, previews and resume across the switch."""

from __future__ import annotations

import pytest
import torch
from chunkwise.nodes.families.wan import I2VWan, WanFamily
from chunkwise.nodes.host import ComfyI2V
from chunkwise.search.engine import LoopSettings, SearchSettings, run_chunks
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy import tiny
from chunkwise.tests.comfy.test_comfy_i2v import WAN_SIZE, BrightnessScorer, guide_image

import nodes as comfy_nodes

STEPS, SWITCH, CFG = 6, 3, 2.0
TOL = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def experts():
    high, vae, positive, negative = tiny.tiny_wan(1)
    low = tiny.tiny_wan(11)[0]
    return high, low, vae, positive, negative


def bound(experts, switch=SWITCH, sampler="euler"):
    high, low, vae, positive, negative = experts
    return ComfyI2V(high, vae, WanFamily(positive, negative, **WAN_SIZE), sampler_name=sampler, scheduler="simple",
                    cfg=CFG, model_low_noise=low, switch_step=switch, schedule_steps=STEPS)


def stock_chain(experts, cond, seed, steps=STEPS, switch=SWITCH):
    """The stock Wan 2.2 workflow: KSamplerAdvanced on the high-noise model for steps [0, switch) with leftover
    noise, then KSamplerAdvanced on the low-noise model from switch with noise disabled."""
    high, low, *_ = experts
    ks = comfy_nodes.KSamplerAdvanced()
    first = ks.sample(high, "enable", seed, steps, CFG, "euler", "simple", cond.positive, cond.negative, cond.latent,
                      0, switch, "enable")[0]
    return ks.sample(low, "disable", seed, steps, CFG, "euler", "simple", cond.positive, cond.negative, first,
                     switch, 10000, "disable")[0]["samples"]


def test_two_experts_equal_the_stock_two_ksampler_chain_and_count_every_step(experts):
    i2v = bound(experts)
    cond = i2v.condition(guide_image(2))
    noise = make_noise(i2v.latent_template(cond), 17)
    before = i2v.nfe
    ours = i2v.sample(cond, noise, steps=STEPS)
    assert i2v.nfe - before == STEPS
    torch.testing.assert_close(ours.latent, stock_chain(experts, cond, 17), **TOL)
    # the second expert matters: the high-noise model alone gives another chunk
    single = ComfyI2V(experts[0], experts[2], WanFamily(experts[3], experts[4], **WAN_SIZE), sampler_name="euler",
                      scheduler="simple", cfg=CFG)
    assert not torch.allclose(single.sample(cond, noise, steps=STEPS).latent, ours.latent, **TOL)
    assert "two experts, switch at step 3 of 6" in i2v.describe()


def test_a_short_preview_switches_at_the_same_fraction_of_its_steps(experts):
    i2v = bound(experts)
    assert [i2v.switch_at(n) for n in (6, 4, 2, 1)] == [3, 2, 1, 1]
    cond = i2v.condition(guide_image(6))
    noise = make_noise(i2v.latent_template(cond), 9)
    preview = i2v.sample(cond, noise, steps=4)  # a complete 4-step run: experts hand over at step 2
    torch.testing.assert_close(preview.latent, stock_chain(experts, cond, 9, steps=4, switch=2), **TOL)


@pytest.mark.parametrize("k", [2, 4])  # a preview that stops before the switch, and one that crosses it
def test_truncated_previews_resume_to_the_full_two_expert_run(experts, k):
    i2v = bound(experts)
    cond = i2v.condition(guide_image(3))
    noise = make_noise(i2v.latent_template(cond), 5)
    full = i2v.sample(cond, noise, steps=STEPS)
    before = i2v.nfe
    part = i2v.sample(cond, noise, steps=STEPS, end_step=k)
    rest = i2v.sample(cond, noise, steps=STEPS, start_step=k, resume=part)
    assert i2v.nfe - before == STEPS
    torch.testing.assert_close(rest.latent, full.latent, **TOL)


def test_batched_candidates_cross_the_switch_like_sequential_ones(experts):
    i2v = bound(experts)
    cond = i2v.condition(guide_image(4))
    noises = [make_noise(i2v.latent_template(cond), s) for s in (1, 2, 3)]
    single = [i2v.sample(cond, n, steps=STEPS) for n in noises]
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=STEPS)
    assert i2v.nfe - before == 3 * STEPS
    for b, s in zip(batched, single, strict=True):
        torch.testing.assert_close(b.latent, s.latent, **TOL)


def test_the_engine_runs_two_experts_with_truncated_search(experts):
    settings = LoopSettings(chunks=2, seed=4, search=SearchSettings(candidates=2, k=2, steps=STEPS,
                                                                    preview_mode="truncated"))
    result = run_chunks(bound(experts), BrightnessScorer(), guide_image(5), settings)
    assert [c["nfe"] for c in result.report["chunks"]] == [{"preview": 2 * 2, "full": STEPS - 2}] * 2


def test_wan_binding_takes_the_low_noise_expert_and_checks_the_switch(experts):
    high, low, vae, positive, negative = experts
    args = dict(width=32, height=32, length=5, steps=STEPS, cfg=CFG, sampler_name="euler", scheduler="simple")
    i2v = I2VWan.execute(high, positive, negative, vae, **args, model_low_noise=low).result[0]
    assert i2v.switch_step == STEPS // 2 and i2v.model_low_noise is not None  # 0 = half the steps
    assert i2v.schedule_steps == STEPS
    assert I2VWan.execute(high, positive, negative, vae, **args, model_low_noise=low,
                          switch_step=2).result[0].switch_step == 2
    assert I2VWan.execute(high, positive, negative, vae, **args, switch_step=2).result[0].model_low_noise is None
    with pytest.raises(ChunkwiseError, match="switch_step must be between 1 and steps - 1.*switch_step=6, steps=6"):
        I2VWan.execute(high, positive, negative, vae, **args, model_low_noise=low, switch_step=STEPS)
    with pytest.raises(ChunkwiseError, match="switch_step must be an integer >= 1"):
        ComfyI2V(high, vae, WanFamily(positive, negative, **WAN_SIZE), model_low_noise=low)
    with pytest.raises(ChunkwiseError, match="switch_step=4, steps=4"):
        ComfyI2V(high, vae, WanFamily(positive, negative, **WAN_SIZE), model_low_noise=low, switch_step=4,
                 schedule_steps=4)


def test_bindings_refuse_impossible_sizes_and_switches_before_any_model_loads():
    from chunkwise.nodes.families.svd import I2VSVD

    assert I2VWan.validate_inputs(width=832, height=480, length=33, steps=20, switch_step=10) is True
    assert I2VWan.validate_inputs(width=830) == "width must be a multiple of 16, got 830; use 816"
    assert "length must be 4*n + 1 frames" in I2VWan.validate_inputs(length=32)
    assert "use 29 or 33" in I2VWan.validate_inputs(length=32)
    assert "switch_step must be smaller than steps, got switch_step=20, steps=20" in I2VWan.validate_inputs(
        steps=20, switch_step=20)
    assert I2VWan.validate_inputs(steps=0) == "steps must be between 1 and 10000, got 0"
    assert I2VSVD.validate_inputs(width=1024, height=576, video_frames=25, steps=20) is True
    assert I2VSVD.validate_inputs(height=570) == "height must be a multiple of 8, got 570; use 568"
    assert I2VSVD.validate_inputs(video_frames=0) == "video_frames must be between 1 and 4096, got 0"
