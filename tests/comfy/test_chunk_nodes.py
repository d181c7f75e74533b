"""Tier 2: the five per-chunk nodes wired by hand after a stock SVD_img2vid_Conditioning, on tiny SVD.

The contract users rely on: candidate j is the noise a stock KSampler draws
for seed + j, the winner is the argmax, and its NOISE / seed outputs give the
same chunk in FullDenoise, KSampler and SamplerCustomAdvanced.
"""

from __future__ import annotations

import pytest
import torch
from chunkwise.nodes.chunk_nodes import (
    ClipMinCosineScore,
    FullDenoise,
    KStepPreview,
    NoiseCandidates,
    SelectBestNoise,
    candidate_noise,
)
from chunkwise.nodes.host import count_nfe
from chunkwise.search.errors import ChunkwiseError
from chunkwise.tests.comfy import tiny
from comfy_extras.nodes_custom_sampler import BasicScheduler, CFGGuider, KSamplerSelect, SamplerCustomAdvanced
from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

import nodes as comfy_nodes

SIZE = dict(width=64, height=48, video_frames=4)
SAMPLER = dict(steps=4, cfg=2.0, sampler_name="euler", scheduler="karras")


@pytest.fixture(scope="module")
def svd():
    model, vae, clip_vision = tiny.tiny_svd()
    g = torch.Generator().manual_seed(3)
    image = torch.rand((1, 40, 56, 3), generator=g)
    positive, negative, latent = SVD_img2vid_Conditioning().encode(
        clip_vision, image, vae, SIZE["width"], SIZE["height"], SIZE["video_frames"], 127, 6, 0.0
    )
    return dict(model=model, vae=vae, clip_vision=clip_vision, image=image, positive=positive, negative=negative,
                latent=latent)


def ksampler(svd, seed: int, **overrides):
    settings = {**SAMPLER, **overrides}
    return comfy_nodes.KSampler().sample(
        svd["model"], seed, settings["steps"], settings["cfg"], settings["sampler_name"], settings["scheduler"],
        svd["positive"], svd["negative"], svd["latent"], denoise=1.0,
    )[0]["samples"]


def previews_for(svd, candidates, k: int, mode: str, model=None):
    return KStepPreview.execute(model or svd["model"], svd["positive"], svd["negative"], svd["latent"], candidates,
                                svd["vae"], k, mode=mode, **SAMPLER)


def test_candidate_j_is_the_noise_ksampler_draws_for_seed_plus_j(svd):
    candidates = NoiseCandidates.execute(svd["latent"], 3, 41)[0]
    assert candidates.seeds == [41, 42, 43]
    for j, seed in enumerate(candidates.seeds):
        noise = candidate_noise(svd["model"], svd["latent"], seed)
        # KSampler's own noise: common_ksampler -> prepare_noise(latent, seed, batch_index).
        reference = comfy_nodes.comfy.sample.prepare_noise(svd["latent"]["samples"], 41 + j, None)
        assert torch.equal(noise, reference)


def test_six_steps_by_hand_give_the_ksampler_chunk_of_the_winning_seed(svd):
    candidates = NoiseCandidates.execute(svd["latent"], 3, 7)[0]
    out = previews_for(svd, candidates, k=2, mode="short schedule")
    previews, images = out[0], out[1]
    assert len(previews.frames) == 3 and images.shape == (3 * 4, 48, 64, 3)
    assert out.ui is not None  # candidates' previews are shown in the UI

    # A preview is exactly a complete k-step KSampler run of seed + j, decoded.
    decoded = svd["vae"].decode(ksampler(svd, 8, steps=2))
    assert torch.allclose(previews.frames[1], decoded, atol=1e-5)

    scored = ClipMinCosineScore.execute(svd["image"], previews, clip_vision=svd["clip_vision"])
    scores = scored[0]
    assert len(scores.values) == 3 and all(-1.0 <= v <= 1.0 for v in scores.values)
    best = max(range(3), key=lambda j: (scores.values[j], -j))
    assert "*" in scored[1].splitlines()[best]

    noise, seed, index = SelectBestNoise.execute(candidates, scores).args
    assert index == best and seed == 7 + best and noise.seed == seed

    chunk = FullDenoise.execute(svd["model"], svd["positive"], svd["negative"], svd["latent"], noise, **SAMPLER)[0]
    assert torch.allclose(chunk["samples"], ksampler(svd, seed), atol=1e-5)

    # The same NOISE in SamplerCustomAdvanced (CFG guider, euler, karras sigmas).
    guider = CFGGuider.execute(svd["model"], svd["positive"], svd["negative"], SAMPLER["cfg"])[0]
    sampler = KSamplerSelect.execute("euler")[0]
    sigmas = BasicScheduler.execute(svd["model"], "karras", SAMPLER["steps"], 1.0)[0]
    custom = SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, svd["latent"])[0]
    assert torch.allclose(custom["samples"], chunk["samples"], atol=1e-4)


def test_truncated_previews_resume_the_winner_at_step_k(svd):
    counted, counter = count_nfe(svd["model"])
    candidates = NoiseCandidates.execute(svd["latent"], 2, 100)[0]
    previews = previews_for(svd, candidates, k=2, mode="truncated", model=counted)[0]
    assert counter.count == 2 * 2
    assert all(r is not None and r.end_step == 2 for r in previews.results)
    scores = ClipMinCosineScore.execute(svd["image"], previews, clip_vision=svd["clip_vision"])[0]
    noise, seed, _ = SelectBestNoise.execute(candidates, scores).args

    before = counter.count
    resumed = FullDenoise.execute(counted, svd["positive"], svd["negative"], svd["latent"], noise,
                                  previews=previews, **SAMPLER)[0]["samples"]
    assert counter.count - before == SAMPLER["steps"] - 2  # k evaluations saved
    # euler is a one-step sampler: continuing from step k is the full run's trajectory.
    assert torch.allclose(resumed, ksampler(svd, seed), atol=1e-4)

    # Previews of another schedule are ignored: a full run from scratch.
    before = counter.count
    fresh = FullDenoise.execute(counted, svd["positive"], svd["negative"], svd["latent"], noise, previews=previews,
                                **{**SAMPLER, "steps": 5})[0]["samples"]
    assert counter.count - before == 5
    assert torch.allclose(fresh, ksampler(svd, seed, steps=5), atol=1e-5)


def test_select_best_noise_refuses_scores_of_other_candidates(svd):
    candidates = NoiseCandidates.execute(svd["latent"], 2, 0)[0]
    other = NoiseCandidates.execute(svd["latent"], 2, 50)[0]
    previews = previews_for(svd, other, k=1, mode="short schedule")[0]
    scores = ClipMinCosineScore.execute(svd["image"], previews, clip_vision=svd["clip_vision"])[0]
    with pytest.raises(ChunkwiseError, match="score the previews of these same candidates"):
        SelectBestNoise.execute(candidates, scores)


def test_score_needs_a_verifier(svd):
    previews = previews_for(svd, NoiseCandidates.execute(svd["latent"], 1, 0)[0], k=1, mode="short schedule")[0]
    with pytest.raises(ChunkwiseError, match="clip_vision nor scorer"):
        ClipMinCosineScore.execute(svd["image"], previews)


def test_impossible_settings_are_rejected_before_running():
    message = KStepPreview.validate_inputs(k=8, steps=8, mode="truncated")
    assert isinstance(message, str) and "k=8" in message and "steps=8" in message
    assert KStepPreview.validate_inputs(k=8, steps=8, mode="short schedule") is True
    assert KStepPreview.validate_inputs(k=2, steps=8, mode="truncated") is True
    # Linked inputs are absent at validation time.
    assert KStepPreview.validate_inputs(k=None, steps=8, mode="truncated") is True


def test_full_denoise_resumes_a_noise_mask_latent_with_the_corrected_noise():
    # The LTX / Cosmos / Wan 2.2 5B pattern: the guide is pinned in the latent under a noise_mask.
    from chunkwise.tests.comfy.test_comfy_i2v import MaskedWanFamily, guide_image, make_i2v
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    parts = tiny.tiny_wan()
    cond = make_i2v("wan", parts, family_wrapper=MaskedWanFamily).condition(guide_image(4))
    assert "noise_mask" in cond.latent
    settings = dict(steps=4, cfg=1.0, sampler_name="euler", scheduler="simple")
    counted, counter = count_nfe(parts[0])
    candidates = NoiseCandidates.execute(cond.latent, 2, 30)[0]
    previews = KStepPreview.execute(counted, cond.positive, cond.negative, cond.latent, candidates, parts[1], 2,
                                    mode="truncated", **settings)[0]
    noise = Noise_RandomNoise(31)
    before = counter.count
    resumed = FullDenoise.execute(counted, cond.positive, cond.negative, cond.latent, noise, previews=previews,
                                  **settings)[0]["samples"]
    assert counter.count - before == settings["steps"] - 2  # k evaluations saved under the mask too
    fresh = FullDenoise.execute(counted, cond.positive, cond.negative, cond.latent, noise, **settings)[0]["samples"]
    torch.testing.assert_close(resumed, fresh, rtol=1e-4, atol=1e-4)
