"""Tier 2: the families whose stock node pins the start image in the latent under a ``noise_mask`` and takes no
conditioning (the text goes straight to the sampler): Wan 2.2 5B TI2V (``Wan22ImageToVideoLatent``) and Cosmos
Predict2 I2V (``CosmosPredict2ImageToVideoLatent``), on tiny random models, CPU, both ComfyUI hosts.

Each family against its stock workflow (the stock node, then KSampler at the same seed); the corrected-noise
resume under the stock node's own mask against the uninterrupted run; candidates batched along B against one
by one; the search loop's NFE, argmax and reproducibility; the hand-wired per-chunk nodes after the stock
node, with the winner replayed in a stock KSampler; validation before any model loads; the preview format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from chunkwise.nodes.chunk_nodes import ClipMinCosineScore, FullDenoise, KStepPreview, NoiseCandidates, SelectBestNoise
from chunkwise.nodes.families import cosmos, wan22_5b
from chunkwise.nodes.host import count_nfe, sample_window
from chunkwise.search.engine import LoopSettings, SearchSettings, run_chunks
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy import tiny
from chunkwise.tests.comfy.test_comfy_i2v import COSMOS_SIZE, WAN22_5B_SIZE, BrightnessScorer, guide_image, spy_calls

import nodes as comfy_nodes

TOL = {"rtol": 1e-4, "atol": 1e-4}


def _wan22_stock(vae, size, guide):
    from comfy_extras.nodes_wan import Wan22ImageToVideoLatent

    return Wan22ImageToVideoLatent.execute(vae, size["width"], size["height"], size["length"], 1,
                                           start_image=guide).result[0]


def _cosmos_stock(vae, size, guide):
    from comfy_extras.nodes_cosmos import CosmosPredict2ImageToVideoLatent

    return CosmosPredict2ImageToVideoLatent.execute(vae, size["width"], size["height"], size["length"], 1,
                                                    start_image=guide).result[0]


@dataclass(frozen=True)
class Masked:
    """One family of this file: its module, binding node, size, stock node call and refused sizes."""

    module: object
    node: type  # the binding node
    size: dict
    stock_latent: Callable  # (vae, size, guide) -> the stock node's LATENT dict
    bad_width: int  # a width the stock node cannot take (not a multiple of the family's size rule)

    @property
    def spec(self):
        return self.module.SPEC


FAMILIES = {
    "wan22_5b": Masked(wan22_5b, wan22_5b.I2VWan22TI2V, WAN22_5B_SIZE, _wan22_stock, bad_width=48),
    "cosmos": Masked(cosmos, cosmos.I2VCosmosPredict2, COSMOS_SIZE, _cosmos_stock, bad_width=40),
}


@pytest.fixture(params=sorted(FAMILIES))
def masked(request):
    """(family name, its Masked entry, its tiny parts)."""
    return request.param, FAMILIES[request.param], request.getfixturevalue(f"{request.param}_parts")


def bound(masked, *, cfg=2.0, steps=4):
    """The binding node's output for the tiny parts, euler / simple."""
    _, fam, (model, vae, positive, negative) = masked
    return fam.node.execute(model, positive, negative, vae, steps=steps, cfg=cfg, sampler_name="euler",
                            scheduler="simple", **fam.size)[0]


def stock_ksampler(model, positive, negative, latent, seed, *, steps, cfg):
    return comfy_nodes.KSampler().sample(model, seed, steps, cfg, "euler", "simple", positive, negative, latent,
                                         denoise=1.0)[0]["samples"]


def test_the_first_chunk_is_the_stock_workflows_chunk(masked):
    _, fam, (model, vae, positive, negative) = masked
    i2v = bound(masked, cfg=2.0, steps=4)
    guide = guide_image(3)
    cond = i2v.condition(guide)
    stock = fam.stock_latent(vae, fam.size, guide)
    assert set(cond.latent) == set(stock) == {"samples", "noise_mask"}
    assert torch.equal(cond.latent["samples"], stock["samples"])
    assert torch.equal(cond.latent["noise_mask"], stock["noise_mask"])
    assert cond.positive is positive and cond.negative is negative  # the text goes straight to the sampler
    chunk = i2v.sample(cond, make_noise(i2v.latent_template(cond), 17), steps=4).latent
    theirs = stock_ksampler(model, positive, negative, stock, 17, steps=4, cfg=2.0)
    torch.testing.assert_close(chunk, theirs, rtol=0, atol=1e-6)
    # The start image stays pinned in the first latent frame.
    pinned = stock["noise_mask"][0, 0, :, 0, 0] == 0
    assert pinned.tolist() == [True] + [False] * (pinned.numel() - 1)
    torch.testing.assert_close(chunk[:, :, :1], stock["samples"][:, :, :1], **TOL)
    assert torch.equal(i2v.decode(chunk), vae.decode(theirs).reshape(i2v.decode(chunk).shape))


def test_a_truncated_window_resumes_exactly_under_the_stock_nodes_mask(masked):
    i2v = bound(masked)
    cond = i2v.condition(guide_image(2))
    noise = make_noise(i2v.latent_template(cond), 5)
    full = i2v.sample(cond, noise, steps=6)
    part = i2v.sample(cond, noise, steps=6, end_step=2)
    before = i2v.nfe
    rest = i2v.sample(cond, noise, steps=6, start_step=2, resume=part)
    assert i2v.nfe - before == 4
    torch.testing.assert_close(rest.latent, full.latent, **TOL)
    # A plain continuation takes the partial latent for the clean reference: the pinned frame drifts.
    naive, _ = sample_window(i2v.model, noise, cond.positive, cond.negative, cond.latent, steps=6, cfg=i2v.cfg,
                             sampler_name="euler", scheduler="simple", start_step=2, end_step=6,
                             resume_latent=part.latent)
    clean = cond.latent["samples"][:, :, :1]
    assert (naive[:, :, :1] - clean).abs().max() > 1e-2
    torch.testing.assert_close(rest.latent[:, :, :1], clean, **TOL)


def test_candidates_batch_along_b_and_resume_each_with_its_corrected_noise(masked):
    i2v = bound(masked, cfg=2.0)
    assert i2v.family.spec.batch == "batch" and i2v.can_batch()
    cond = i2v.condition(guide_image(1))
    noises = [make_noise(i2v.latent_template(cond), s) for s in (3, 4, 5)]
    single = [i2v.sample(cond, n, steps=4) for n in noises]
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    before = i2v.nfe
    batched = i2v.sample_batch(cond, noises, steps=4)
    assert i2v.nfe - before == 3 * 4
    assert calls == [3 * 2] * 4  # one call per step: three candidates, cond and uncond
    for b, s in zip(batched, single, strict=True):
        torch.testing.assert_close(b.latent, s.latent, **TOL)
    part = i2v.sample_batch(cond, noises, steps=4, end_step=2)
    rest = i2v.sample_batch(cond, noises, steps=4, start_step=2, resumes=part)
    for r, s in zip(rest, single, strict=True):
        torch.testing.assert_close(r.latent, s.latent, **TOL)


@pytest.mark.parametrize("mode", ["short", "truncated"])
def test_the_search_costs_m_k_plus_s_picks_the_argmax_and_reproduces(masked, mode):
    m, k, s = 2, 2, 4
    settings = LoopSettings(chunks=2, seed=3, drop_first_frame=False,
                            search=SearchSettings(candidates=m, k=k, steps=s, preview_mode=mode))
    i2v = bound(masked, steps=s)
    result = run_chunks(i2v, BrightnessScorer(), guide_image(4), settings)
    full = s - k if mode == "truncated" else s
    for chunk in result.report["chunks"]:
        assert chunk["nfe"] == {"preview": m * k, "full": full}
        scores = [c["score"] for c in chunk["candidates"]]
        assert chunk["chosen"] == max(range(m), key=lambda j: (scores[j], -j))
    assert result.report["totals"]["nfe"] == 2 * (m * k + full) == i2v.nfe
    length = masked[1].size["length"]
    assert result.video().shape == (2 * length, masked[1].size["height"], masked[1].size["width"], 3)
    if mode == "truncated":  # the same seed twice: identical frames (resumed winners included)
        again = run_chunks(bound(masked, steps=s), BrightnessScorer(), guide_image(4), settings)
        assert torch.equal(again.video(), result.video())


def test_the_per_chunk_nodes_follow_the_stock_node_and_the_winner_replays_in_ksampler(masked):
    _, fam, (model, vae, positive, negative) = masked
    latent = fam.stock_latent(vae, fam.size, guide_image(6))
    sampler = dict(steps=4, cfg=2.0, sampler_name="euler", scheduler="simple")
    counted, counter = count_nfe(model)
    candidates = NoiseCandidates.execute(latent, 3, 40)[0]
    previews = KStepPreview.execute(counted, positive, negative, latent, candidates, vae, 2, mode="truncated",
                                    **sampler)[0]
    assert counter.count == 3 * 2
    scores = ClipMinCosineScore.execute(guide_image(6), previews, clip_vision=tiny.tiny_clip_vision())[0]
    noise, seed, index = SelectBestNoise.execute(candidates, scores).args
    assert index == scores.best() and seed == 40 + index
    before = counter.count
    resumed = FullDenoise.execute(counted, positive, negative, latent, noise, previews=previews,
                                  **sampler)[0]["samples"]
    assert counter.count - before == 4 - 2  # the winner resumes at step k
    replay = stock_ksampler(model, positive, negative, latent, seed, steps=4, cfg=2.0)
    torch.testing.assert_close(resumed, replay, **TOL)
    fresh = FullDenoise.execute(counted, positive, negative, latent, noise, **sampler)[0]["samples"]
    torch.testing.assert_close(fresh, replay, rtol=0, atol=1e-6)


def test_sizes_the_stock_node_cannot_take_are_refused_before_any_model_loads(masked):
    name, fam, (model, vae, positive, negative) = masked
    node, rule = fam.node, fam.spec.sizes
    good = dict(fam.size)
    assert node.validate_inputs(**good, steps=4) is True
    width = node.validate_inputs(**{**good, "width": fam.bad_width})
    assert isinstance(width, str) and f"multiple of {rule.multiple}" in width
    length = node.validate_inputs(**{**good, "length": 6})
    assert isinstance(length, str) and "got 6" in length and f"{rule.frames_step}*n + 1" in length
    for bad, message in (({"width": fam.bad_width}, width), ({"length": 6}, length)):
        with pytest.raises(ChunkwiseError) as refused:
            node.execute(model, positive, negative, vae, steps=4, cfg=1.0, sampler_name="euler", scheduler="simple",
                         **{**good, **bad})
        assert message in str(refused.value)
    with pytest.raises(ChunkwiseError, match="positive and negative CONDITIONING"):
        node.execute(model, [], negative, vae, steps=4, cfg=1.0, sampler_name="euler", scheduler="simple", **good)


def test_previews_use_the_familys_latent_format(masked, caplog):
    _, fam, (model, _, _, _) = masked
    assert type(model.model.latent_format).__name__ == fam.spec.latent_format
    i2v = bound(masked)
    with caplog.at_level("WARNING", logger="chunkwise"):
        bound(masked)
    assert "latent format" not in caplog.text
    previewer = i2v._approximate.previewer(i2v.model)
    factors = torch.tensor(model.model.latent_format.latent_rgb_factors)  # [channels, 3]
    assert factors.shape[0] == model.model.latent_format.latent_channels
    assert torch.equal(previewer.latent_rgb_factors.cpu().float(), factors.transpose(0, 1))
    assert fam.spec.noise_mask


def test_vaeloader_cannot_load_a_tiny_wan22_vae_file():
    """Why tier 3 swaps VAELoader for an in-process stand-in (tiny_wan22_5b.VAE_FILE_NOT_FEASIBLE)."""
    import comfy.sd
    from chunkwise.tests.comfy import tiny_wan22_5b

    sd = tiny_wan22_5b.wan22_vae_state_dict(2)
    with pytest.raises(RuntimeError, match="size mismatch"):
        comfy.sd.VAE(sd=sd)  # what VAELoader calls on the file's state dict
    vae = tiny_wan22_5b.vae_from_state_dict(sd)
    assert vae.latent_channels == 48 and vae.spacial_compression_decode() == 16
