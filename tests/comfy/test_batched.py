"""Tier 2: several candidates in one sampler call (ComfyI2V.sample_batch) on tiny Wan and SVD models, CPU."""

from __future__ import annotations

import pytest
import torch
from chunkwise.nodes.families import WanFamily
from chunkwise.nodes.host import ComfyI2V, draws_noise, is_out_of_memory
from chunkwise.search.engine import LoopSettings, SearchSettings, run_chunks
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy.test_comfy_i2v import (
    WAN_SIZE,
    BrightnessScorer,
    MaskedWanFamily,
    guide_image,
    make_i2v,
    spy_calls,
)

# Batched kernels may sum in another order than single ones: float32 rounding, amplified a little
# by a random network over a few steps (observed differences ~1e-6).
TOL = {"rtol": 1e-4, "atol": 1e-4}


def noises_for(i2v, cond, seeds):
    template = i2v.latent_template(cond)
    return [make_noise(template, s) for s in seeds]


def sequential(i2v, cond, noises, **kw):
    resumes = kw.pop("resumes", None) or [None] * len(noises)
    return [i2v.sample(cond, n, resume=r, **kw) for n, r in zip(noises, resumes, strict=True)]


def assert_same(batched, single):
    assert len(batched) == len(single)
    for b, s in zip(batched, single, strict=True):
        assert (b.steps, b.start_step, b.end_step) == (s.steps, s.start_step, s.end_step)
        assert b.latent.shape == s.latent.shape
        torch.testing.assert_close(b.latent, s.latent, **TOL)
        torch.testing.assert_close(b.x0, s.x0, **TOL)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_wan_batch_equals_sequential_runs_and_counts_nfe_per_candidate(wan_parts, cfg):
    i2v = make_i2v("wan", wan_parts, cfg=cfg)
    assert i2v.can_batch()
    cond = i2v.condition(guide_image())
    noises = noises_for(i2v, cond, [3, 4, 5])
    single = sequential(i2v, cond, noises, steps=4)
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=4, seeds=[3, 4, 5])
    assert i2v.nfe - before == 3 * 4
    assert calls == [3 * (1 if cfg == 1.0 else 2)] * 4  # one call per step for all three candidates
    assert_same(batched, single)
    assert not torch.allclose(batched[0].latent, batched[1].latent)


def test_wan_batched_windows_resume_like_sequential_ones(wan_parts):
    i2v = make_i2v("wan", wan_parts)
    cond = i2v.condition(guide_image(1))
    noises = noises_for(i2v, cond, [7, 8, 9, 10])
    part_single = sequential(i2v, cond, noises, steps=6, end_step=2)
    part_batched = i2v.sample_batch(cond, noises, steps=6, end_step=2)
    assert_same(part_batched, part_single)
    rest_single = sequential(i2v, cond, noises, steps=6, start_step=2, end_step=4, resumes=part_single)
    rest_batched = i2v.sample_batch(cond, noises, steps=6, start_step=2, end_step=4, resumes=part_batched)
    assert_same(rest_batched, rest_single)


def test_masked_latent_batch_resumes_with_each_candidates_corrected_noise(wan_parts):
    i2v = make_i2v("wan", wan_parts, family_wrapper=MaskedWanFamily)
    cond = i2v.condition(guide_image(2))
    noises = noises_for(i2v, cond, [1, 2, 3])
    full = sequential(i2v, cond, noises, steps=6)
    part = i2v.sample_batch(cond, noises, steps=6, end_step=2)
    rest = i2v.sample_batch(cond, noises, steps=6, start_step=2, resumes=part)
    for r, f in zip(rest, full, strict=True):
        torch.testing.assert_close(r.latent, f.latent, **TOL)
    clean = cond.latent["samples"]
    for r in rest:
        torch.testing.assert_close(r.latent[:, :, :1], clean[:, :, :1], **TOL)


@pytest.mark.parametrize("cfg", [1.0, 2.5])
def test_svd_batch_stacks_videos_frame_major_and_equals_sequential_runs(svd_parts, cfg):
    # min_cfg=1.0: VideoLinearCFGGuidance's per-frame cfg ramp is on the model, as in the stock workflow
    i2v = make_i2v("svd", svd_parts, cfg=cfg)
    assert i2v.family.spec.batch == "frames" and i2v.can_batch()
    assert "sampler_cfg_function" in i2v.model.model_options
    cond = i2v.condition(guide_image())
    frames = cond.latent["samples"].shape[0]
    noises = noises_for(i2v, cond, [0, 1, 2])
    single = sequential(i2v, cond, noises, steps=3)
    calls = spy_calls(i2v, lambda args: (int(args["input"].shape[0]), args["c"]["num_video_frames"]))
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=3, seeds=[0, 1, 2])
    assert i2v.nfe - before == 3 * 3
    # one UNet call per step for all three videos, each still seen as a video of `frames` frames
    assert calls == [(3 * frames * (1 if cfg == 1.0 else 2), frames)] * 3
    assert_same(batched, single)
    assert all(b.latent.shape[0] == frames for b in batched)
    assert not torch.allclose(batched[0].latent, batched[1].latent)


def test_svd_batched_windows_resume_like_sequential_ones(svd_parts):
    i2v = make_i2v("svd", svd_parts)
    cond = i2v.condition(guide_image(4))
    noises = noises_for(i2v, cond, [3, 4])
    part_single = sequential(i2v, cond, noises, steps=4, end_step=2)
    part_batched = i2v.sample_batch(cond, noises, steps=4, end_step=2)
    assert_same(part_batched, part_single)
    rest_single = sequential(i2v, cond, noises, steps=4, start_step=2, resumes=part_single)
    rest_batched = i2v.sample_batch(cond, noises, steps=4, start_step=2, resumes=part_batched)
    assert_same(rest_batched, rest_single)


def test_svd_with_a_post_cfg_function_samples_one_by_one(svd_parts):
    # A post-cfg function sees the whole batch and may depend on a frame's place in it: not stacked.
    i2v = make_i2v("svd", svd_parts)
    i2v.model.set_model_sampler_post_cfg_function(lambda args: args["denoised"])
    assert not i2v.can_batch()
    cond = i2v.condition(guide_image())
    noises = noises_for(i2v, cond, [0, 1])
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=3, seeds=[0, 1])
    assert i2v.nfe - before == 2 * 3
    single = sequential(i2v, cond, noises, steps=3)
    for b, s in zip(batched, single, strict=True):
        assert torch.equal(b.latent, s.latent)


def test_noise_drawing_samplers_are_not_batched_and_keep_their_per_candidate_seed(wan_parts):
    assert draws_noise("euler_ancestral") and draws_noise("dpmpp_2m_sde") and not draws_noise("euler")
    i2v = make_i2v("wan", wan_parts, sampler="euler_ancestral")
    assert not i2v.can_batch()
    cond = i2v.condition(guide_image())
    noises = noises_for(i2v, cond, [5, 6])
    batched = i2v.sample_batch(cond, noises, steps=3, seeds=[5, 6])
    single = [i2v.sample(cond, n, steps=3, seed=s) for n, s in zip(noises, [5, 6], strict=True)]
    for b, s in zip(batched, single, strict=True):
        assert torch.equal(b.latent, s.latent)


def fragile_model(model, limit: int, seen: list):
    """A model clone that raises out-of-memory when a call holds more than ``limit`` candidates (cfg 1)."""
    patched = model.clone()

    def wrapper(apply_model, args):
        seen.append(int(args["input"].shape[0]))
        if args["input"].shape[0] > limit:
            raise torch.OutOfMemoryError(f"fake: batch {args['input'].shape[0]} > {limit}")
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched.set_model_unet_function_wrapper(wrapper)
    return patched


def test_out_of_memory_halves_the_batch_and_remembers_the_size_that_fit(wan_parts):
    model, vae, positive, negative = wan_parts
    seen: list[int] = []
    i2v = ComfyI2V(fragile_model(model, 2, seen), vae, WanFamily(positive, negative, **WAN_SIZE), cfg=1.0)
    reference = make_i2v("wan", wan_parts, cfg=1.0)
    cond = i2v.condition(guide_image(3))
    noises = noises_for(i2v, cond, [11, 12, 13, 14, 15])
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=3)
    assert i2v.batch_limit == 2
    assert i2v.nfe - before == 5 * 3  # the failed attempts are not counted
    # 5 fails at the first step; then batches of 2, 2 and a single candidate, 3 steps each.
    assert seen == [5] + [2] * 3 + [2] * 3 + [1] * 3
    ref_cond = reference.condition(guide_image(3))
    assert_same(batched, sequential(reference, ref_cond, noises, steps=3))
    # Later calls start at the size that fit: no second failure.
    seen.clear()
    i2v.sample_batch(cond, noises[:4], steps=2)
    assert seen == [2, 2, 2, 2]


def test_other_errors_are_not_mistaken_for_out_of_memory(wan_parts):
    model, vae, positive, negative = wan_parts
    broken = model.clone()

    def wrapper(apply_model, args):
        raise RuntimeError("shape mismatch in a custom node")

    broken.set_model_unet_function_wrapper(wrapper)
    i2v = ComfyI2V(broken, vae, WanFamily(positive, negative, **WAN_SIZE), cfg=1.0)
    cond = i2v.condition(guide_image())
    with pytest.raises(RuntimeError, match="shape mismatch"):
        i2v.sample_batch(cond, noises_for(i2v, cond, [0, 1, 2]), steps=2)
    assert i2v.batch_limit is None
    assert is_out_of_memory(torch.OutOfMemoryError("x")) and not is_out_of_memory(RuntimeError("x"))


@pytest.mark.parametrize("mode", ["short", "truncated"])
def test_engine_with_candidate_batch_picks_the_same_winners_as_one_by_one(wan_parts, mode):
    search = SearchSettings(candidates=4, k=2, steps=4, preview_mode=mode)
    results = []
    for batch in (1, 4):
        i2v = make_i2v("wan", wan_parts)
        settings = LoopSettings(chunks=2, seed=6, search=SearchSettings(**{**search.__dict__, "candidate_batch": batch}))
        results.append(run_chunks(i2v, BrightnessScorer(), guide_image(6), settings))
    one, many = results
    assert [c["chosen_seed"] for c in one.report["chunks"]] == [c["chosen_seed"] for c in many.report["chunks"]]
    for a, b in zip(one.report["chunks"], many.report["chunks"], strict=True):
        assert a["nfe"] == b["nfe"]
        assert b["cost"]["preview_calls"] == 1
        for ca, cb in zip(a["candidates"], b["candidates"], strict=True):
            assert ca["score"] == pytest.approx(cb["score"], abs=1e-4)
    torch.testing.assert_close(one.video(), many.video(), **TOL)
