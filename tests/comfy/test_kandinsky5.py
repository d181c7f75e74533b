"""Tier 2: the Kandinsky 5 I2V binding (nodes/families/kandinsky5.py) against the stock video_kandinsky5_i2v
graph (Kandinsky5ImageToVideo -> KSampler -> ReplaceVideoLatentFrames -> NormalizeVideoLatentStart -> VAEDecode)
on a tiny random Kandinsky 5 model and HunyuanVideo VAE, CPU.

ComfyUI 0.28.2 only: on 0.3.75 the model tests skip (the ``kandinsky5_parts`` fixture says why) and the
binding's refusal is tested instead. The family-independent behaviour runs for Kandinsky 5 through the
``family_name`` parameter of the shared tests.
"""

from __future__ import annotations

import json

import pytest
import torch
from chunkwise.nodes.chunk_nodes import ClipMinCosineScore, FullDenoise, KStepPreview, NoiseCandidates, SelectBestNoise
from chunkwise.nodes.families import I2VKandinsky5, Kandinsky5Family, kandinsky5
from chunkwise.nodes.host import count_nfe
from chunkwise.nodes.loop import ChunkLoop
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy.test_comfy_i2v import K5_SIZE, guide_image, spy_calls
from chunkwise.tests.comfy.tiny_kandinsky5 import KANDINSKY5_COMFY
from chunkwise.tests.comfy_host import comfy_version
from chunkwise.tests.pure.toys import MeanColourScorer

import nodes as comfy_nodes

SAMPLER = dict(steps=4, cfg=3.0, sampler_name="euler", scheduler="beta")


def bound(parts, **sampler):
    model, vae, positive, negative = parts
    return I2VKandinsky5.execute(model, positive, negative, vae, **K5_SIZE, **{**SAMPLER, **sampler})[0]


def stock(parts, guide):
    from comfy_extras.nodes_kandinsky5 import Kandinsky5ImageToVideo

    model, vae, positive, negative = parts
    return Kandinsky5ImageToVideo.execute(positive, negative, vae, batch_size=1, start_image=guide,
                                          **K5_SIZE).result


def stock_chunk(parts, made, seed):
    """The template's KSampler and its two latent nodes before VAEDecode."""
    from comfy_extras.nodes_kandinsky5 import NormalizeVideoLatentStart
    from comfy_extras.nodes_latent import ReplaceVideoLatentFrames

    positive, negative, latent, cond_latent = made
    sampled = comfy_nodes.KSampler().sample(parts[0], seed, SAMPLER["steps"], SAMPLER["cfg"], SAMPLER["sampler_name"],
                                            SAMPLER["scheduler"], positive, negative, latent, denoise=1.0)[0]
    replaced = ReplaceVideoLatentFrames.execute(sampled, 0, cond_latent).result[0]
    return NormalizeVideoLatentStart.execute(replaced, 4, 5).result[0]["samples"]


def test_the_first_chunk_is_the_stock_templates_chunk(kandinsky5_parts):
    i2v = bound(kandinsky5_parts)
    guide = guide_image(3)
    cond = i2v.condition(guide)
    made = stock(kandinsky5_parts, guide)
    assert "noise_mask" not in cond.latent and torch.equal(cond.latent["samples"], made[2]["samples"])
    assert sorted(cond.positive[0][1]) == ["concat_mask", "pooled_output", "time_dim_replace"]
    ours = i2v.sample(cond, make_noise(i2v.latent_template(cond), 42), steps=SAMPLER["steps"]).latent
    theirs = stock_chunk(kandinsky5_parts, made, 42)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[:, :, :1].mean(), theirs[:, :, :1].mean())
    torch.testing.assert_close(i2v.decode(ours), kandinsky5_parts[1].decode(theirs)[0], rtol=0, atol=1e-5)


def test_truncated_and_resumed_equals_the_full_run_and_candidates_batch(kandinsky5_parts):
    i2v = bound(kandinsky5_parts)
    cond = i2v.condition(guide_image(5))
    noises = [make_noise(i2v.latent_template(cond), s) for s in (7, 8, 9)]
    full = [i2v.sample(cond, n, steps=6) for n in noises]
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    parts = i2v.sample_batch(cond, noises, steps=6, end_step=2)
    assert calls == [3 * 2] * 2  # three candidates, cond and uncond, in one call per step
    before = i2v.nfe
    rest = i2v.sample_batch(cond, noises, steps=6, start_step=2, resumes=parts)
    assert i2v.nfe - before == 3 * (6 - 2)
    for r, f in zip(rest, full, strict=True):
        torch.testing.assert_close(r.latent, f.latent, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode, full_nfe", [("short schedule", 4), ("truncated", 4 - 2)])
def test_chunk_loop_runs_it_end_to_end_at_m_k_plus_s(kandinsky5_parts, mode, full_nfe):
    def run():
        return ChunkLoop.execute(bound(kandinsky5_parts), guide_image(6), chunks=2, candidates=3, k=2,
                                 preview_mode=mode, seed=5, search=True, drop_first_frame=True,
                                 scorer=MeanColourScorer())

    out = run()
    video, report = out.result[0], json.loads(out.result[1])
    assert tuple(video.shape) == (2 * 17 - 1, 32, 32, 3) and torch.isfinite(video).all()
    for chunk in report["chunks"]:
        assert chunk["nfe"] == {"preview": 3 * 2, "full": full_nfe}
        scores = [c["score"] for c in chunk["candidates"]]
        assert chunk["chosen"] == max(range(3), key=lambda j: (scores[j], -j))
    assert torch.equal(run().result[0], video)  # the same seed twice


def test_the_per_chunk_nodes_work_after_the_stock_node_and_the_winner_replays_in_ksampler(kandinsky5_parts):
    model, vae = kandinsky5_parts[0], kandinsky5_parts[1]
    guide = guide_image(8)
    positive, negative, latent, _ = stock(kandinsky5_parts, guide)
    counted, counter = count_nfe(model)
    candidates = NoiseCandidates.execute(latent, 3, 70)[0]
    previews = KStepPreview.execute(counted, positive, negative, latent, candidates, vae, 2, mode="truncated",
                                    **SAMPLER)[0]
    scores = ClipMinCosineScore.execute(guide, previews, scorer=MeanColourScorer())[0]
    noise, seed, index = SelectBestNoise.execute(candidates, scores).args
    assert index == max(range(3), key=lambda j: (scores.values[j], -j)) and seed == 70 + index
    before = counter.count
    chunk = FullDenoise.execute(counted, positive, negative, latent, noise, previews=previews, **SAMPLER)[0]
    assert counter.count - before == SAMPLER["steps"] - 2
    replay = comfy_nodes.KSampler().sample(model, seed, SAMPLER["steps"], SAMPLER["cfg"], SAMPLER["sampler_name"],
                                           SAMPLER["scheduler"], positive, negative, latent, denoise=1.0)[0]
    torch.testing.assert_close(chunk["samples"], replay["samples"], rtol=1e-4, atol=1e-4)


def test_construction_refuses_what_validate_inputs_refuses(kandinsky5_parts):
    _, _, positive, negative = kandinsky5_parts
    checked = 0
    for width in (16, 24, 32, 40, 48):
        for length in (1, 2, 4, 5, 6, 17, 18):
            verdict = I2VKandinsky5.validate_inputs(width=width, height=32, length=length)
            if verdict is True:
                assert Kandinsky5Family(positive, negative, width=width, height=32, length=length).frames == length
                continue
            checked += 1
            with pytest.raises(ChunkwiseError) as refused:
                Kandinsky5Family(positive, negative, width=width, height=32, length=length)
            assert verdict in str(refused.value)
    assert checked > 10
    inputs = {i.id: i for i in I2VKandinsky5.define_schema().inputs}
    assert inputs["width"].step == 16 and inputs["length"].step == 4
    assert [inputs[k].default for k in ("width", "height", "length", "steps", "cfg", "scheduler")] == [
        768, 512, 121, 50, 5.0, "beta"]
    assert type(kandinsky5_parts[0].model.latent_format).__name__ == kandinsky5.SPEC.latent_format


def test_an_older_comfyui_gets_a_clear_refusal_before_any_model_loads():
    if comfy_version() >= KANDINSKY5_COMFY:
        pytest.skip(f"this ComfyUI ({'.'.join(map(str, comfy_version()))}) has Kandinsky5ImageToVideo: the "
                    "refusal is for older ones (tested on 0.3.75)")
    verdict = I2VKandinsky5.validate_inputs(width=768, height=512, length=121, steps=50)
    assert isinstance(verdict, str) and "Kandinsky5ImageToVideo" in verdict and "0.3.75" in verdict
    assert "update ComfyUI" in verdict
    assert "ChunkwiseI2VKandinsky5" == I2VKandinsky5.define_schema().node_id  # still listed: the message shows
    with pytest.raises(ChunkwiseError, match="update ComfyUI"):
        I2VKandinsky5.execute(None, [[torch.zeros(1, 8, 16), {}]], [[torch.zeros(1, 8, 16), {}]], None, 32, 32, 17,
                              4, 3.0, "euler", "beta")
