"""Tier 2: the HunyuanVideo bindings (nodes/families/hunyuan15.py, hunyuan.py) on tiny random models, CPU.

Each case is one binding against its stock workflow: the stock conditioning node (with CLIPVisionEncode where the
template has it) and a stock KSampler at the same seed. The shared parametrized tests (test_comfy_i2v.py,
test_batched.py, ...) dispatch on the SVD and Wan families by name; these cases run the same checks through the
binding nodes, so a new family needs no edit to those modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import comfy.sample
import pytest
import torch
from chunkwise.nodes.chunk_nodes import ClipMinCosineScore, FullDenoise, KStepPreview, NoiseCandidates, SelectBestNoise
from chunkwise.nodes.families import hunyuan, hunyuan15
from chunkwise.nodes.host import count_nfe, sample_window
from chunkwise.nodes.loop import ChunkLoop
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy import tiny_hunyuan, tiny_hunyuan15
from chunkwise.tests.comfy.test_comfy_i2v import guide_image, spy_calls
from chunkwise.tests.pure.toys import MeanColourScorer

import nodes as comfy_nodes

STEPS, M, K = 3, 2, 1
TOL = {"rtol": 1e-4, "atol": 1e-4}  # batched kernels and latent round trips: float32 rounding (see test_batched.py)


@dataclass
class Case:
    """One binding: its node, its size, how to build it, and the stock graph it stands for."""

    name: str
    module: object
    node: object
    size: dict
    latent: tuple
    build: Callable  # parts -> the binding node's execute() keyword arguments (model and conditioning inputs)
    stock: Callable  # (parts, guide) -> (positive, negative, latent) from the stock nodes
    cfg: float = 3.0
    scheduler: str = "simple"
    negative_optional: bool = False  # the node samples without a negative at cfg 1 (the stock BasicGuider graph)
    replay: Callable = None  # (parts, conditioning, seed, steps) -> the stock sampler's latent; None: KSampler

    @property
    def frames(self) -> int:
        return self.size[self.module.SPEC.sizes.frames]


def _hunyuan15_stock(parts, guide, size):
    from comfy_extras.nodes_hunyuan import HunyuanVideo15ImageToVideo

    _, vae, positive, negative, clip_vision = parts
    # The template: CLIPVisionEncode(crop="center") -> HunyuanVideo15ImageToVideo(clip_vision_output=...).
    clip_vision_output = clip_vision.encode_image(guide, crop=True)
    return HunyuanVideo15ImageToVideo.execute(positive, negative, vae, size["width"], size["height"], size["length"],
                                              1, start_image=guide, clip_vision_output=clip_vision_output).result


def _hunyuan_stock(parts, guide, size, guidance_type):
    from comfy_extras.nodes_hunyuan import HunyuanImageToVideo

    positive, latent = HunyuanImageToVideo.execute(parts[2], parts[1], size["width"], size["height"], size["length"],
                                                   1, guidance_type, start_image=guide).result
    return positive, [], latent


def _basic_guider(parts, conditioning, seed, steps):
    """The stock HunyuanVideo graph: BasicGuider (no negative, no cfg) + euler + simple + SamplerCustomAdvanced."""
    from comfy_extras.nodes_custom_sampler import (
        BasicGuider,
        BasicScheduler,
        KSamplerSelect,
        RandomNoise,
        SamplerCustomAdvanced,
    )

    positive, _, latent = conditioning
    guider = BasicGuider.execute(parts[0], positive)[0]
    sigmas = BasicScheduler.execute(parts[0], "simple", steps, 1.0)[0]
    return SamplerCustomAdvanced.execute(RandomNoise.execute(seed)[0], guider, KSamplerSelect.execute("euler")[0],
                                         sigmas, latent)[0]["samples"]


HUNYUAN15_SIZE = {"width": 48, "height": 32, "length": 5}
HUNYUAN_SIZE = {"width": 48, "height": 32, "length": 5}

CASES = {
    "hunyuan15": Case(
        name="hunyuan15", module=hunyuan15, node=hunyuan15.I2VHunyuanVideo15, size=HUNYUAN15_SIZE, latent=(1, 32, 2, 2, 3),
        build=lambda p: dict(model=p[0], positive=p[2], negative=p[3], vae=p[1], clip_vision=p[4]),
        stock=lambda p, g: _hunyuan15_stock(p, g, HUNYUAN15_SIZE),
    ),
    **{name: Case(
        name=name, module=hunyuan, node=hunyuan.I2VHunyuanVideo, size=HUNYUAN_SIZE, latent=(1, 16, 2, 4, 6),
        build=lambda p, gt=gt: dict(model=p[0], positive=p[2], vae=p[1], guidance_type=gt),
        stock=lambda p, g, gt=gt: _hunyuan_stock(p, g, HUNYUAN_SIZE, gt),
        cfg=1.0, negative_optional=True, replay=_basic_guider,
    ) for name, gt in (("hunyuan_v1", hunyuan.V1), ("hunyuan_v2", hunyuan.V2))},
}


@pytest.fixture(scope="module")
def hunyuan15_parts():
    return tiny_hunyuan15.tiny_hunyuan15()


@pytest.fixture(scope="module")
def hunyuan_v1_parts():
    return tiny_hunyuan.tiny_hunyuan(guidance_type=hunyuan.V1)


@pytest.fixture(scope="module")
def hunyuan_v2_parts():
    return tiny_hunyuan.tiny_hunyuan(guidance_type=hunyuan.V2)


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


@pytest.fixture
def parts(case, request):
    return request.getfixturevalue(f"{case.name}_parts")


def bind(case, parts, *, cfg=None, sampler_name="euler", steps=STEPS):
    cfg = case.cfg if cfg is None else cfg
    extra = {"negative": parts[3]} if case.negative_optional and cfg != 1.0 else {}
    return case.node.execute(**case.build(parts), **case.size, steps=steps, cfg=cfg, sampler_name=sampler_name,
                             scheduler=case.scheduler, **extra)[0]


def ksampler(case, parts, conditioning, seed, *, steps=STEPS, cfg=None):
    """The stock sampler on the stock node's outputs: KSampler, or the family's stock graph (``case.replay``)."""
    if case.replay is not None:
        return case.replay(parts, conditioning, seed, steps)
    positive, negative, latent = conditioning
    return comfy_nodes.KSampler().sample(parts[0], seed, steps, case.cfg if cfg is None else cfg, "euler",
                                         case.scheduler, positive, negative, latent, denoise=1.0)[0]["samples"]


def run_loop(i2v, image, **kw):
    args = dict(chunks=2, candidates=M, k=K, preview_mode="short schedule", seed=5, search=True,
                drop_first_frame=True)
    args.update(kw)
    return ChunkLoop.execute(i2v, image, scorer=MeanColourScorer(), **args).result


# --- the binding node ------------------------------------------------------------------------------


def test_validation_refuses_what_the_stock_node_cannot_take_before_any_model_loads(case, parts):
    node, sizes = case.node, case.module.SPEC.sizes
    assert node.validate_inputs(**case.size, steps=STEPS) is True
    bad_width = node.validate_inputs(width=sizes.multiple + 8, height=case.size["height"])
    assert f"multiple of {sizes.multiple}, got {sizes.multiple + 8}" in bad_width
    bad_length = node.validate_inputs(**{sizes.frames: 6})
    assert "4*n + 1" in bad_length and "use 5 or 9" in bad_length
    with pytest.raises(ChunkwiseError, match="4\\*n \\+ 1"):
        case.node.execute(**case.build(parts), **{**case.size, sizes.frames: 6}, steps=STEPS, cfg=1.0,
                          sampler_name="euler", scheduler=case.scheduler)


def test_the_node_schema_carries_the_template_defaults(case):
    inputs = {i.id: i for i in case.node.define_schema().inputs}
    defaults = case.module.SPEC.defaults
    assert [inputs[k].default for k in ("steps", "cfg", "sampler_name", "scheduler")] == [
        defaults.steps, defaults.cfg, defaults.sampler_name, defaults.scheduler]
    assert inputs["width"].step == inputs["height"].step == case.module.SPEC.sizes.multiple
    assert all(i.tooltip for i in inputs.values())


def test_the_first_chunk_is_the_stock_workflows_chunk_at_the_winning_seed(case, parts):
    """ChunkLoop's first chunk (search on) is what the stock conditioning node + KSampler + VAEDecode make
    from the start image at the winner's seed."""
    i2v = bind(case, parts)
    image = guide_image(1)
    video, report, *_ = run_loop(i2v, image, chunks=1)
    seed = json.loads(report)["chunks"][0]["chosen_seed"]
    stock = case.stock(parts, image)
    assert tuple(stock[2]["samples"].shape) == case.latent
    frames = parts[1].decode(ksampler(case, parts, stock, seed))
    frames = frames.reshape((-1,) + tuple(frames.shape[-3:]))
    assert video.shape == frames.shape == (case.frames, case.size["height"], case.size["width"], 3)
    torch.testing.assert_close(video, frames, rtol=0, atol=1e-5)


def test_chunk_loop_end_to_end_counts_nfe_and_picks_the_argmax(case, parts):
    i2v = bind(case, parts)
    before = i2v.nfe
    video, report_text, *_ = run_loop(i2v, guide_image(2), chunks=3)
    report = json.loads(report_text)
    assert video.shape == (3 * case.frames - 2, case.size["height"], case.size["width"], 3)
    assert torch.isfinite(video).all() and report["totals"]["frames"] == video.shape[0]
    for chunk in report["chunks"]:
        scores = [c["score"] for c in chunk["candidates"]]
        assert len(scores) == M and chunk["chosen"] == max(range(M), key=lambda j: (scores[j], -j))
        assert chunk["chosen_seed"] == chunk["candidates"][chunk["chosen"]]["seed"]
        assert chunk["nfe"] == {"preview": M * K, "full": STEPS}  # m*k + s
    assert i2v.nfe - before == 3 * (M * K + STEPS)

    # Truncated previews: the winner resumes at step k, m*k + s - k.
    truncated = json.loads(run_loop(bind(case, parts), guide_image(2), preview_mode="truncated", k=2)[1])
    assert [c["nfe"] for c in truncated["chunks"]] == [{"preview": M * 2, "full": STEPS - 2}] * 2


def test_same_seed_twice_gives_identical_frames_and_another_seed_does_not(case, parts):
    first = run_loop(bind(case, parts), guide_image(3), seed=11)[0]
    again = run_loop(bind(case, parts), guide_image(3), seed=11)[0]
    other = run_loop(bind(case, parts), guide_image(3), seed=31, chunks=1)[0]
    assert torch.equal(first, again)
    assert not torch.equal(first[:case.frames], other)


# --- the denoiser: batching and resume -----------------------------------------------------------


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_candidates_batch_along_the_batch_dimension_and_equal_one_by_one(case, parts, cfg):
    i2v = bind(case, parts, cfg=cfg)
    batches = i2v.family.spec.batch == "batch"
    assert i2v.can_batch() == batches
    cond = i2v.condition(guide_image(4))
    noises = [make_noise(i2v.latent_template(cond), s) for s in (3, 4, 5)]
    single = [i2v.sample(cond, n, steps=STEPS) for n in noises]
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=STEPS, seeds=[3, 4, 5])
    assert i2v.nfe - before == 3 * STEPS
    per_call = 1 if cfg == 1.0 else 2
    # One call per step for the three candidates, or (HunyuanVideo v2 replace: see hunyuan.SPEC_V2) one each.
    if batches:
        assert calls == [3 * per_call] * STEPS
    else:  # cond and uncond may also go one by one (v2's positive carries guiding_frame_index, the negative not)
        assert sum(calls) == 3 * STEPS * per_call and max(calls) <= per_call
    for b, s in zip(batched, single, strict=True):
        torch.testing.assert_close(b.latent, s.latent, **TOL)
    assert not torch.allclose(batched[0].latent, batched[1].latent)


def test_truncated_and_resumed_equals_the_uninterrupted_run(case, parts):
    i2v = bind(case, parts)
    cond = i2v.condition(guide_image(5))
    noise = make_noise(i2v.latent_template(cond), 11)
    full = i2v.sample(cond, noise, steps=6)
    part = i2v.sample(cond, noise, steps=6, end_step=2)
    before = i2v.nfe
    rest = i2v.sample(cond, noise, steps=6, start_step=2, resume=part)
    assert i2v.nfe - before == 4
    torch.testing.assert_close(rest.latent, full.latent, **TOL)
    assert not torch.allclose(part.latent, full.latent, rtol=1e-2, atol=1e-2)
    # Batched resumes continue each candidate's own state.
    noises = [noise, make_noise(i2v.latent_template(cond), 12)]
    parts_ = i2v.sample_batch(cond, noises, steps=6, end_step=2)
    rests = i2v.sample_batch(cond, noises, steps=6, start_step=2, resumes=parts_)
    torch.testing.assert_close(rests[0].latent, full.latent, **TOL)
    torch.testing.assert_close(rests[1].latent, i2v.sample(cond, noises[1], steps=6).latent, **TOL)
    masked = "noise_mask" in cond.latent
    assert masked == i2v.family.spec.noise_mask
    if masked:  # v2 replace: the guide is pinned in the first latent frame, kept through the resume
        clean = cond.latent["samples"][:, :, :1]
        torch.testing.assert_close(full.latent[:, :, :1], clean, **TOL)
        torch.testing.assert_close(rest.latent[:, :, :1], clean, **TOL)
        # The plain disable-noise continuation would take the partial latent as the clean reference.
        naive, _ = sample_window(i2v.model, noise, cond.positive, cond.negative, cond.latent, steps=6, cfg=i2v.cfg,
                                 sampler_name="euler", scheduler=case.scheduler, start_step=2, end_step=6,
                                 resume_latent=part.latent)
        assert (naive[:, :, :1] - clean).abs().max() > 1e-2


# --- the hand-wired per-chunk nodes --------------------------------------------------------------


def test_per_chunk_nodes_after_the_stock_node_and_the_winner_replays_in_a_stock_ksampler(case, parts):
    image = guide_image(6)
    positive, negative, latent = case.stock(parts, image)
    model, vae = parts[0], parts[1]
    sampler = dict(steps=4, cfg=case.cfg, sampler_name="euler", scheduler=case.scheduler)
    counted, counter = count_nfe(model)
    candidates = NoiseCandidates.execute(latent, 3, 40)[0]
    previews = KStepPreview.execute(counted, positive, negative, latent, candidates, vae, 2, mode="truncated",
                                    **sampler)[0]
    assert counter.count == 3 * 2 and len(previews.frames) == 3
    scores = ClipMinCosineScore.execute(image, previews, clip_vision=tiny_clip_vision())[0]
    noise, seed, index = SelectBestNoise.execute(candidates, scores).args
    assert index == max(range(3), key=lambda j: (scores.values[j], -j)) and seed == 40 + index
    before = counter.count
    resumed = FullDenoise.execute(counted, positive, negative, latent, noise, previews=previews,
                                  **sampler)[0]["samples"]
    assert counter.count - before == 4 - 2
    replay = ksampler(case, parts, (positive, negative, latent), seed, steps=4)
    torch.testing.assert_close(resumed, replay, **TOL)
    fresh = FullDenoise.execute(model, positive, negative, latent, noise, **sampler)[0]["samples"]
    torch.testing.assert_close(fresh, replay, rtol=0, atol=1e-5)


def tiny_clip_vision():
    from chunkwise.tests.comfy import tiny

    return tiny.tiny_clip_vision(3)


# --- the approximate preview ---------------------------------------------------------------------


def test_the_approximate_preview_is_comfyuis_previewer_for_the_familys_latent_format(case, parts):
    import numpy as np
    from latent_preview import Latent2RGBPreviewer

    i2v = bind(case, parts)
    fmt = i2v.model.model.latent_format
    assert type(fmt).__name__ == case.module.SPEC.latent_format
    cond = i2v.condition(guide_image(7))
    x0 = i2v.sample(cond, make_noise(i2v.latent_template(cond), 1), steps=6, end_step=2).x0
    before = i2v.frames_decoded
    small = i2v.approximate_decode(x0, upscale=False)
    assert i2v.frames_decoded == before  # no VAE work
    assert tuple(small.shape) == (case.latent[2], case.latent[3], case.latent[4], 3)
    previewer = Latent2RGBPreviewer(fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias)
    theirs = previewer.decode_latent_to_preview(i2v.model.model.process_latent_in(x0))
    theirs = torch.from_numpy(np.array(theirs)).float() / 255.0
    assert theirs.shape == small[0].shape
    assert (small[0] - theirs).abs().max() <= 1.0 / 255.0 + 1e-6
    big = i2v.preview_decode(x0, approximate=True)
    assert tuple(big.shape) == (case.latent[2], case.size["height"], case.size["width"], 3)


def test_a_model_of_another_family_is_named_in_a_warning(case, parts, caplog):
    import logging

    from chunkwise.tests.comfy import tiny

    wan_model = tiny.tiny_wan()[0]
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        case.node.execute(**{**case.build(parts), "model": wan_model}, **case.size, steps=STEPS, cfg=1.0,
                          sampler_name="euler", scheduler=case.scheduler)
    assert f"the {case.module.SPEC.name} family's models use {case.module.SPEC.latent_format}" in caplog.text


def test_the_noise_is_what_a_stock_ksampler_draws(case, parts):
    i2v = bind(case, parts)
    template = i2v.latent_template(i2v.condition(guide_image()))
    assert torch.equal(make_noise(template, 77), comfy.sample.prepare_noise(template, 77))


# --- HunyuanVideo I2V: its guidance types and its missing negative --------------------------------


def test_hunyuan_guidance_types_follow_the_stock_node_and_cfg_needs_a_negative(hunyuan_v1_parts):
    model, vae, positive, negative, _ = hunyuan_v1_parts
    args = dict(model=model, positive=positive, vae=vae, **HUNYUAN_SIZE, steps=STEPS, sampler_name="euler",
                scheduler="simple")
    assert hunyuan.I2VHunyuanVideo.validate_inputs(guidance_type="custom").startswith("guidance_type must be one of")
    with pytest.raises(ChunkwiseError, match="guidance_type must be one of"):
        hunyuan.HunyuanVideoFamily(positive, **HUNYUAN_SIZE, guidance_type="custom")
    with pytest.raises(ChunkwiseError, match="cfg must be 1.0 without a negative"):
        hunyuan.I2VHunyuanVideo.execute(**args, guidance_type=hunyuan.V1, cfg=3.0)
    # With a negative, cfg > 1 runs the uncond pass on it (the stock node conditions only positive).
    i2v = hunyuan.I2VHunyuanVideo.execute(**args, guidance_type=hunyuan.V1, cfg=3.0, negative=negative)[0]
    cond = i2v.condition(guide_image(8))
    assert cond.negative is negative and "concat_latent_image" in cond.positive[0][1]
    calls = spy_calls(i2v, lambda a: sorted(a["cond_or_uncond"]))
    i2v.sample(cond, make_noise(i2v.latent_template(cond), 0), steps=2)
    assert calls == [[0, 1]] * 2
    v2 = hunyuan.I2VHunyuanVideo.execute(**args, guidance_type=hunyuan.V2, cfg=1.0)[0]
    assert v2.family.spec.noise_mask and not i2v.family.spec.noise_mask
    assert "v2 (replace)" in v2.describe() and "no negative" in v2.describe()
