"""Tier 1: the diffusers host (search/hosts) on tiny random SVD, CogVideoX-I2V and Wan-I2V pipelines.

Every check compares against diffusers' own pipeline call or counts real
component calls; nothing here imports ComfyUI.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks  # noqa: E402
from chunkwise.search.hosts import (  # noqa: E402
    DiffusersDenoiser,
    from_pipeline,
    load_denoiser,
    pipeline_class_name,
    resolve_dtype,
)
from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402
from chunkwise.tests.pure.toys import MeanColourScorer  # noqa: E402

SIZE = {"svd": 32, "cogvideox": 16, "wan": 16}
FRAMES = {"svd": 3, "cogvideox": 9, "wan": 9}
GUIDANCE = {"svd": {}, "cogvideox": {"guidance_scale": 6.0}, "wan": {"guidance_scale": 5.0}}


def build(family: str, scheduler: str = "default"):
    if family == "svd":
        return tiny.tiny_svd("euler" if scheduler == "default" else scheduler)
    if family == "cogvideox":
        return tiny.tiny_cogvideox("ddim" if scheduler == "ddim" else "dpm")
    return tiny.tiny_wan22() if scheduler == "wan22" else tiny.tiny_wan()


_CACHE: dict = {}


def pipeline(family: str, scheduler: str = "default"):
    key = (family, scheduler)
    if key not in _CACHE:
        _CACHE[key] = build(family, scheduler)
    return _CACHE[key]


def denoiser(family: str, pipe, seed: int = 5, **kw):
    size = SIZE[family]
    options = dict(width=size, height=size, num_frames=FRAMES[family], seed=seed, **GUIDANCE[family])
    if family != "svd":
        pe, ne = tiny.text_embeds()
        options.update(prompt_embeds=pe, negative_prompt_embeds=ne)
    options.update(kw)
    return from_pipeline(pipe, **options)


def options_for(scheduler: str) -> dict:
    return {"use_dynamic_cfg": True} if scheduler == "dynamic-cfg" else {}


def stock_call(family: str, pipe, pil, noise, seed: int, steps: int, output_type: str, cond, **extra):
    """diffusers' own ``pipe(...)`` for the same noise and seed.

    The stock SVD and Wan loops pass no generator to ``scheduler.step``, so a
    noise-injecting scheduler (EulerAncestral) draws from torch's global
    generator there; the host uses the run's own seeded generator instead
    (reproducible). The global generator is set to that state for the call.
    """
    size = SIZE[family]
    kw = dict(height=size, width=size, num_frames=FRAMES[family], num_inference_steps=steps, latents=noise.clone(),
              generator=torch.Generator().manual_seed(seed), output_type=output_type, **GUIDANCE[family], **extra)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(DiffusersDenoiser._run_generator(cond, seed).get_state())
        if family == "svd":
            return pipe(pil, decode_chunk_size=FRAMES[family], **kw).frames
        pe, ne = tiny.text_embeds()
        return pipe(image=pil, prompt_embeds=pe, negative_prompt_embeds=ne, **kw).frames


def noise_for(cond, seed: int = 1):
    return torch.randn(cond.latent_shape, generator=torch.Generator().manual_seed(seed))


# -------------------------------------------------------------------------- equivalence with the stock call

EQUIVALENCE = [("svd", "euler"), ("svd", "ancestral"), ("cogvideox", "dpm"), ("cogvideox", "ddim"),
               ("cogvideox", "dynamic-cfg"), ("wan", "default"), ("wan", "wan22")]


@pytest.mark.parametrize("family,scheduler", EQUIVALENCE)
def test_one_chunk_matches_the_stock_pipeline_call(family, scheduler):
    pipe = pipeline(family, scheduler)
    guide, pil = tiny.guide_image(SIZE[family], SIZE[family])
    extra = options_for(scheduler)
    den = denoiser(family, pipe, seed=11, **extra)
    cond = den.condition(guide)
    noise = noise_for(cond)
    experts = [m for m in (getattr(pipe, "transformer_2", None), getattr(pipe, "transformer", None)) if m is not None]
    calls = {id(m): 0 for m in experts}
    hooks = [m.register_forward_hook(lambda mod, *_: calls.__setitem__(id(mod), calls[id(mod)] + 1)) for m in experts]
    try:
        result = den.sample(cond, noise, steps=3, seed=11)
    finally:
        for h in hooks:
            h.remove()
    frames = den.decode(result.latent)

    assert result.finished and result.state is None
    if scheduler == "wan22":  # both experts ran: the high-noise one first, then the low-noise one
        assert all(n > 0 for n in calls.values()) and sum(calls.values()) == 2 * 3
    want_latent = stock_call(family, pipe, pil, noise, 11, 3, "latent", cond, **extra)
    torch.testing.assert_close(result.latent, want_latent, rtol=1e-5, atol=1e-5)
    want_frames = stock_call(family, pipe, pil, noise, 11, 3, "pt", cond, **extra)[0].permute(0, 2, 3, 1)
    assert frames.shape == (FRAMES[family], SIZE[family], SIZE[family], 3)
    torch.testing.assert_close(frames, want_frames, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family,scheduler", [("svd", "euler"), ("cogvideox", "dpm"), ("wan", "default"),
                                              ("wan", "wan22")])
def test_a_guide_of_another_size_is_conditioned_like_the_stock_call(family, scheduler):
    # Neither the model's size nor its aspect ratio: the image encoder sees the guide as it came, the VAE the guide
    # resized by the pipeline's video_processor, as in the stock call given that image.
    pipe = pipeline(family, scheduler)
    guide, pil = tiny.guide_image(SIZE[family] + 4, SIZE[family] + 12, seed=3)
    den = denoiser(family, pipe, seed=11)
    cond = den.condition(guide)
    assert cond.height == cond.width == SIZE[family]
    noise = noise_for(cond)
    result = den.sample(cond, noise, steps=2, seed=11)
    want = stock_call(family, pipe, pil, noise, 11, 2, "latent", cond)
    torch.testing.assert_close(result.latent, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family,scheduler", [("svd", "ancestral"), ("cogvideox", "dpm")])
def test_the_run_seed_drives_the_step_noise_of_stochastic_schedulers(family, scheduler):
    pipe = pipeline(family, scheduler)
    guide, pil = tiny.guide_image(SIZE[family], SIZE[family])
    den = denoiser(family, pipe, seed=3)
    cond = den.condition(guide)
    noise = noise_for(cond)
    a = den.sample(cond, noise, steps=3, seed=21).latent
    b = den.sample(cond, noise, steps=3, seed=22).latent
    again = den.sample(cond, noise, steps=3, seed=21).latent
    assert not torch.allclose(a, b, atol=1e-4), "the step noise ignores the seed"
    torch.testing.assert_close(a, again, rtol=0, atol=0)
    # With no seed the run continues the conditioning's generator: the stock call with the denoiser's seed.
    default = den.sample(cond, noise, steps=3).latent
    torch.testing.assert_close(default, stock_call(family, pipe, pil, noise, 3, 3, "latent", cond), rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------- stop at k and resume

RESUME = [("svd", "euler"), ("svd", "ancestral"), ("cogvideox", "dpm"), ("wan", "default")]


@pytest.mark.parametrize("family,scheduler", RESUME)
def test_k_steps_then_resume_equals_the_full_run(family, scheduler):
    pipe = pipeline(family, scheduler)
    guide, _ = tiny.guide_image(SIZE[family], SIZE[family])
    den = denoiser(family, pipe)
    cond = den.condition(guide)
    noise = noise_for(cond)
    full = den.sample(cond, noise, steps=4, seed=9)
    seen = []
    part = den.sample(cond, noise, steps=4, end_step=2, seed=9, callback=lambda i, x0: seen.append(i))
    assert seen == [0, 1] and not part.finished
    assert part.x0.shape == part.latent.shape and not torch.allclose(part.x0, part.latent)
    # The resume continues the generator and solver state it stopped with, not a fresh seed.
    rest = den.sample(cond, noise, steps=4, start_step=2, resume=part, seed=12345,
                      callback=lambda i, x0: seen.append(i))
    assert seen == [0, 1, 2, 3]
    torch.testing.assert_close(rest.latent, full.latent, rtol=1e-5, atol=1e-5)
    # Resuming the same state twice gives the same result: the state is not consumed.
    torch.testing.assert_close(den.sample(cond, noise, steps=4, start_step=2, resume=part).latent, rest.latent,
                               rtol=0, atol=0)


@pytest.mark.parametrize("family", ["svd", "wan"])
def test_x0_of_the_last_euler_step_is_the_result(family):
    # Euler's last step jumps to sigma 0, i.e. to its x0 prediction: for SVD the scheduler's
    # pred_original_sample, for Wan's flow matching x - sigma * v computed by the host.
    pipe = pipeline(family)
    guide, _ = tiny.guide_image(SIZE[family], SIZE[family])
    den = denoiser(family, pipe)
    cond = den.condition(guide)
    x0s = []
    result = den.sample(cond, noise_for(cond), steps=3, callback=lambda i, x0: x0s.append(x0))
    assert len(x0s) == 3
    torch.testing.assert_close(x0s[-1].to(result.latent.dtype), result.latent, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(x0s[0], result.latent, atol=1e-3)


def perfect_unet(pipe, target: torch.Tensor, prediction: str):
    """A UNet forward that denoises perfectly on a variance-preserving schedule with integer timesteps: from any
    noisy latent x at timestep t its output (epsilon or v) means the clean latent ``target``."""
    alphas = pipe.scheduler.alphas_cumprod
    channels = target.shape[2]

    def forward(sample, timestep, *_args, **_kwargs):
        a = alphas[int(timestep)]
        eps = (sample[:, :, :channels].float() - a.sqrt() * target) / (1 - a).sqrt()
        return (eps if prediction == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * target,)

    return forward


def _schedulers_without_x0_output():
    from diffusers import DPMSolverMultistepScheduler, TCDScheduler, UniPCMultistepScheduler

    return {
        "dpmsolver++": (DPMSolverMultistepScheduler, dict(prediction_type="v_prediction")),
        "dpmsolver-epsilon": (DPMSolverMultistepScheduler, dict(prediction_type="epsilon")),
        "unipc": (UniPCMultistepScheduler, dict(prediction_type="v_prediction")),
        "unipc-epsilon": (UniPCMultistepScheduler, dict(prediction_type="epsilon", predict_x0=False,
                                                          final_sigmas_type="sigma_min")),
        "tcd": (TCDScheduler, dict(prediction_type="v_prediction")),
    }


@pytest.mark.parametrize("name", ["dpmsolver++", "dpmsolver-epsilon", "unipc", "unipc-epsilon", "tcd"])
def test_truncated_previews_show_x0_for_schedulers_whose_step_returns_none(name, monkeypatch):
    # DPM-Solver and UniPC return no x0 from step() and TCD returns the re-noised pred_noised_sample in its place;
    # the preview must still be the model's x0 prediction, not the noisy latent (nor TCD's second output).
    cls, config = _schedulers_without_x0_output()[name]
    pipe = build("svd")
    monkeypatch.setattr(pipe, "scheduler", cls(**config))
    den = denoiser("svd", pipe)
    guide, _ = tiny.guide_image(32, 32)
    cond = den.condition(guide)
    target = torch.randn(cond.latent_shape, generator=torch.Generator().manual_seed(7))
    monkeypatch.setattr(pipe.unet, "forward", perfect_unet(pipe, target, config["prediction_type"]))
    noise = noise_for(cond)

    part = den.sample(cond, noise, steps=4, end_step=3)
    full = den.sample(cond, noise, steps=4)
    torch.testing.assert_close(part.x0, target, rtol=1e-3, atol=1e-3)
    assert (part.latent - target).abs().max() > 0.05  # the noisy latent is still visibly noisy
    assert (part.x0 - full.latent).norm() < (part.latent - full.latent).norm()


# -------------------------------------------------------------------------- NFE and conditioning counts


class Counter:
    def __init__(self):
        self.calls = 0

    def wrap(self, fn):
        def counted(*args, **kwargs):
            self.calls += 1
            return fn(*args, **kwargs)

        return counted


def _count(monkeypatch, obj, name):
    counter = Counter()
    monkeypatch.setattr(obj, name, counter.wrap(getattr(obj, name)))
    return counter


@pytest.mark.parametrize("mode", ["short", "truncated"])
@pytest.mark.parametrize("family", ["svd", "cogvideox", "wan"])
def test_nfe_and_conditioning_once_per_chunk(family, mode, monkeypatch):
    pipe = pipeline(family)
    den = denoiser(family, pipe)
    model = pipe.unet if family == "svd" else pipe.transformer
    model_calls = Counter()
    handle = model.register_forward_hook(lambda *_: setattr(model_calls, "calls", model_calls.calls + 1))
    vae_encodes = _count(monkeypatch, pipe.vae, "encode")
    prompts = _count(monkeypatch, pipe, "encode_prompt") if family != "svd" else Counter()
    image_encodes = Counter()
    encoder = getattr(pipe, "image_encoder", None)
    if encoder is not None:
        h2 = encoder.register_forward_hook(lambda *_: setattr(image_encodes, "calls", image_encodes.calls + 1))
    chunks, m, k, s = 2, 2, 1, 3
    settings = LoopSettings(chunks=chunks, seed=4, search=SearchSettings(candidates=m, k=k, steps=s, preview_mode=mode),
                            drop_first_frame=False)
    guide, _ = tiny.guide_image(SIZE[family], SIZE[family])
    try:
        result = run_chunks(den, MeanColourScorer(), guide, settings)
    finally:
        handle.remove()
        if encoder is not None:
            h2.remove()

    per_chunk = m * k + s - (k if mode == "truncated" else 0)
    report = result.report
    assert [c["nfe"]["preview"] + c["nfe"]["full"] for c in report["chunks"]] == [per_chunk] * chunks
    assert report["totals"]["nfe"] == den.nfe == chunks * per_chunk
    # Guided steps: SVD/CogVideoX batch cond+uncond in one pass, Wan runs two passes per step.
    passes = 2 if family == "wan" else 1
    assert model_calls.calls == den.network_calls == passes * den.nfe
    # Image conditioning once per chunk, text once per run, whatever the number of candidates.
    assert vae_encodes.calls == chunks
    if encoder is not None:
        assert image_encodes.calls == chunks
    assert prompts.calls == (0 if family == "svd" else 1)
    assert result.video().shape == (chunks * FRAMES[family], SIZE[family], SIZE[family], 3)


# -------------------------------------------------------------------------- loading and errors


def test_load_denoiser_from_a_saved_folder_matches_the_in_memory_pipeline(tmp_path):
    pipe = pipeline("svd")
    pipe.save_pretrained(tmp_path / "svd")
    assert pipeline_class_name(tmp_path / "svd") == "StableVideoDiffusionPipeline"
    loaded = load_denoiser(tmp_path / "svd", device="cpu", dtype="auto", width=32, height=32, num_frames=3, seed=5)
    assert loaded.family == "svd" and loaded.pipe.unet.dtype == torch.float32
    ref = denoiser("svd", pipe, seed=5)
    guide, _ = tiny.guide_image(32, 32)
    a, b = loaded.condition(guide), ref.condition(guide)
    noise = noise_for(a)
    # Reloaded weights are bit-identical; kernels chosen at load time may round differently (~1e-7).
    torch.testing.assert_close(loaded.sample(a, noise, steps=2).latent, ref.sample(b, noise, steps=2).latent,
                               rtol=1e-3, atol=1e-3)


def test_missing_folder_file_and_index_are_named(tmp_path):
    with pytest.raises(ChunkwiseError, match="does not exist.*model_index.json"):
        load_denoiser(tmp_path / "nope")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ChunkwiseError, match="is a file"):
        load_denoiser(tmp_path / "file.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChunkwiseError, match="no model_index.json"):
        load_denoiser(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    with pytest.raises(ChunkwiseError, match="cannot read"):
        load_denoiser(tmp_path / "broken")


def test_unknown_pipeline_type_names_the_supported_ones(tmp_path):
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ChunkwiseError, match="unknown pipeline type 'StableDiffusionPipeline'.*CogVideoX"):
        load_denoiser(tmp_path / "sd")
    with pytest.raises(ChunkwiseError, match="unknown pipeline type 'Counter'"):
        from_pipeline(Counter())


def test_missing_diffusers_package_says_what_to_install(tmp_path, monkeypatch):
    pipeline("svd").save_pretrained(tmp_path / "svd")
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ChunkwiseError, match="pip install diffusers"):
        load_denoiser(tmp_path / "svd", device="cpu")


def test_component_package_missing_at_load_says_what_to_install(tmp_path, monkeypatch):
    import diffusers

    pipeline("svd").save_pretrained(tmp_path / "svd")

    def fail(*_a, **_k):
        raise ImportError("No module named 'sentencepiece'")

    monkeypatch.setattr(diffusers.StableVideoDiffusionPipeline, "from_pretrained", fail)
    with pytest.raises(ChunkwiseError, match="sentencepiece.*pip install"):
        load_denoiser(tmp_path / "svd", device="cpu")


def test_bad_dtype_window_noise_and_resume_are_refused():
    with pytest.raises(ChunkwiseError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "svd", "cpu")
    assert resolve_dtype("bf16", "svd", "cpu") == torch.bfloat16
    assert resolve_dtype(None, "wan", "cuda") == torch.bfloat16
    den = denoiser("svd", pipeline("svd"))
    guide, _ = tiny.guide_image(32, 32)
    cond = den.condition(guide)
    noise = noise_for(cond)
    with pytest.raises(ChunkwiseError, match="start_step < end_step"):
        den.sample(cond, noise, steps=3, end_step=5)
    with pytest.raises(ChunkwiseError, match="needs the result of the run"):
        den.sample(cond, noise, steps=3, start_step=1)
    with pytest.raises(ChunkwiseError, match=r"noise must have the latent shape \[1, 3, 4, 4, 4\]|latent shape"):
        den.sample(cond, noise[:, :2], steps=3)
    part = den.sample(cond, noise, steps=3, end_step=1)
    with pytest.raises(ChunkwiseError, match="cannot resume a run of 3 steps that stopped at step 1"):
        den.sample(cond, noise, steps=4, start_step=1, resume=part)
    with pytest.raises(ChunkwiseError, match="multiples of 2, got 31 x 32"):
        denoiser("svd", pipeline("svd"), width=31)


def test_family_specific_settings_are_checked():
    with pytest.raises(ChunkwiseError, match="num_frames - 1 must be a multiple of 4, got num_frames=8; use 5 or 9"):
        denoiser("wan", pipeline("wan"), num_frames=8)
    # CogVideoX would silently make 9 frames of 10: refused with the nearest counts that work.
    with pytest.raises(ChunkwiseError, match="num_frames - 1 must be a multiple of 4, got num_frames=10; use 9 or 13"):
        denoiser("cogvideox", pipeline("cogvideox"), num_frames=10)
    with pytest.raises(ChunkwiseError, match="got num_frames=0; use 1 or 5"):
        denoiser("cogvideox", pipeline("cogvideox"), num_frames=0)
    # A prompt needs the tokenizer the tiny pipelines leave out; embeddings do not.
    den = from_pipeline(pipeline("cogvideox"), width=16, height=16, num_frames=9, prompt="a cat")
    guide, _ = tiny.guide_image(16, 16)
    with pytest.raises(ChunkwiseError, match="tokenizer and text encoder.*tokenizer=NoneType"):
        den.condition(guide)


# -------------------------------------------------------------------------- candidates in one batch

BATCH = [("svd", "ancestral"), ("cogvideox", "dpm"), ("wan", "default")]


@pytest.mark.parametrize("family,scheduler", BATCH)
def test_a_batch_of_candidates_equals_one_by_one_including_resume(family, scheduler):
    pipe = pipeline(family, scheduler)
    guide, _ = tiny.guide_image(SIZE[family], SIZE[family])
    den = denoiser(family, pipe)
    cond = den.condition(guide)
    seeds = [21, 22, 23]
    noises = [noise_for(cond, s) for s in seeds]
    one_by_one = [den.sample(cond, n, steps=3, seed=s) for n, s in zip(noises, seeds, strict=True)]

    nfe, calls = den.nfe, den.network_calls
    part = den.sample_batch(cond, noises, steps=3, end_step=2, seeds=seeds)
    rest = den.sample_batch(cond, noises, steps=3, start_step=2, resumes=part, seeds=seeds)
    assert den.nfe - nfe == 3 * 3  # counted per candidate, as sequential calls would
    passes = 2 if family == "wan" else 1
    assert den.network_calls - calls == passes * 3  # one batched forward per step for all candidates
    for got, want in zip(rest, one_by_one, strict=True):
        assert got.latent.shape == want.latent.shape == (1, *cond.latent_shape[1:])
        torch.testing.assert_close(got.latent, want.latent, rtol=1e-4, atol=1e-4)
    # Each candidate's truncated state resumes alone too: the split state is its own.
    alone = den.sample(cond, noises[1], steps=3, start_step=2, resume=part[1])
    torch.testing.assert_close(alone.latent, one_by_one[1].latent, rtol=1e-4, atol=1e-4)


def test_batched_search_picks_the_same_winners(monkeypatch):
    pipe = pipeline("svd", "ancestral")
    guide, _ = tiny.guide_image(32, 32)
    reports = []
    for batch in (1, 3):
        den = denoiser("svd", pipe)
        search = SearchSettings(candidates=3, k=1, steps=3, preview_mode="truncated", candidate_batch=batch)
        result = run_chunks(den, MeanColourScorer(), guide, LoopSettings(chunks=2, seed=5, search=search))
        reports.append((result.report, den.network_calls, result.video()))
    (one, calls_one, video_one), (batched, calls_batched, video_batched) = reports
    assert [c["chosen_seed"] for c in one["chunks"]] == [c["chosen_seed"] for c in batched["chunks"]]
    for a, b in zip(one["chunks"], batched["chunks"], strict=True):
        assert [x["score"] for x in a["candidates"]] == pytest.approx([x["score"] for x in b["candidates"]], abs=1e-4)
    assert one["totals"]["nfe"] == batched["totals"]["nfe"] == 2 * (3 * 1 + 3 - 1)
    assert calls_batched == calls_one - 2 * 2  # per chunk, one preview pass instead of three
    torch.testing.assert_close(video_one, video_batched, rtol=1e-3, atol=1e-3)


def test_out_of_memory_halves_the_batch_and_retries(monkeypatch):
    den = denoiser("svd", pipeline("svd"))
    guide, _ = tiny.guide_image(32, 32)
    cond = den.condition(guide)
    noises = [noise_for(cond, s) for s in (1, 2, 3)]
    want = [den.sample(cond, n, steps=2, seed=s) for n, s in zip(noises, (1, 2, 3), strict=True)]
    step = den._step

    def tight_memory(c, scheduler, timesteps, i, latents, *rest):
        if latents.shape[0] > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(c, scheduler, timesteps, i, latents, *rest)

    monkeypatch.setattr(den, "_step", tight_memory)
    nfe = den.nfe
    got = den.sample_batch(cond, noises, steps=2, seeds=[1, 2, 3])
    assert den.batch_limit == 1 and den.nfe - nfe == 3 * 2
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.latent, w.latent)

    def broken(*_a, **_k):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(den, "_step", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        den.sample_batch(cond, noises, steps=2, seeds=[1, 2, 3])


def test_multistep_schedulers_sample_candidates_one_at_a_time(monkeypatch):
    from diffusers import DPMSolverMultistepScheduler

    pipe = pipeline("svd")
    monkeypatch.setattr(pipe, "scheduler", DPMSolverMultistepScheduler(prediction_type="v_prediction"))
    den = denoiser("svd", pipe)
    guide, _ = tiny.guide_image(32, 32)
    cond = den.condition(guide)
    noises = [noise_for(cond, s) for s in (1, 2)]
    calls = den.network_calls
    got = den.sample_batch(cond, noises, steps=3, seeds=[1, 2])
    assert den.network_calls - calls == 2 * 3
    for g, n, s in zip(got, noises, (1, 2), strict=True):
        torch.testing.assert_close(g.latent, den.sample(cond, n, steps=3, seed=s).latent)
    with pytest.raises(ChunkwiseError, match="one seed and one resume"):
        den.sample_batch(cond, noises, steps=3, seeds=[1])


def test_second_order_schedulers_are_refused(monkeypatch):
    from diffusers import HeunDiscreteScheduler

    pipe = pipeline("svd")
    monkeypatch.setattr(pipe, "scheduler", HeunDiscreteScheduler(prediction_type="v_prediction"))
    den = denoiser("svd", pipe)
    guide, _ = tiny.guide_image(32, 32)
    cond = den.condition(guide)
    with pytest.raises(ChunkwiseError, match="HeunDiscreteScheduler makes 5 model evaluations for 3 steps"):
        den.sample(cond, noise_for(cond), steps=3)
