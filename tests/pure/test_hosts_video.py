"""Tier 1: the diffusers host on tiny random LTX-Video, HunyuanVideo 1.5 and Kandinsky 5 image-to-video pipelines.

As for SVD, CogVideoX and Wan (test_hosts.py): every check compares against diffusers' own pipeline call, an
uninterrupted run, or counts real component calls; nothing here imports ComfyUI.
"""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chunkwise.cli import main  # noqa: E402
from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks  # noqa: E402
from chunkwise.search.hosts import (  # noqa: E402
    PIPELINE_FAMILIES,
    DiffusersDenoiser,
    from_pipeline,
    load_denoiser,
    pipeline_class_name,
)
from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402
from chunkwise.tests.pure import tiny_diffusers_video as tv  # noqa: E402
from chunkwise.tests.pure.toys import MeanColourScorer  # noqa: E402

SIZE = 32
FRAMES = {"ltx": 9, "hunyuan15": 9, "kandinsky5": 17}  # Kandinsky 5 needs 5 latent frames (see its host)
FAMILIES = ["ltx", "hunyuan15", "kandinsky5"]

_CACHE: dict = {}


def pipeline(family: str, variant: str = "default"):
    key = (family, variant)
    if key not in _CACHE:
        if family == "ltx":
            _CACHE[key] = tv.tiny_ltx(timestep_conditioning=variant == "timestep-vae")
        elif family == "kandinsky5":
            _CACHE[key] = tv.tiny_kandinsky5()
        else:
            _CACHE[key] = tv.tiny_hunyuan15(use_meanflow=variant == "meanflow",
                                            guidance_scale=1.0 if variant == "no-cfg" else 6.0)
    return _CACHE[key]


def text(family: str) -> dict:
    return {"ltx": tv.ltx_text, "hunyuan15": tv.hunyuan15_text, "kandinsky5": tv.kandinsky5_text}[family]()


def denoiser(family: str, pipe, seed: int = 5, **kw):
    return from_pipeline(pipe, **{**options_for(family, seed), **kw})


def options_for(family: str, seed: int = 5) -> dict:
    options = dict(num_frames=FRAMES[family], seed=seed, **text(family))
    if family != "hunyuan15":  # HunyuanVideo 1.5 sizes the frame from the guide, as its stock call does
        options.update(width=SIZE, height=SIZE, guidance_scale=3.0 if family == "ltx" else 5.0)
    return options


def stock_call(family: str, pipe, pil, seed: int, steps: int, output_type: str, den, noise=None, **extra):
    """diffusers' own ``pipe(...)``. LTX and Kandinsky 5 draw their noise from the generator (with the guide's VAE
    sample), so they get no latents; HunyuanVideo 1.5 gets ``latents=noise``."""
    kw = dict(num_frames=FRAMES[family], num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
              output_type=output_type, **extra)
    if family == "kandinsky5":
        kw.update(height=SIZE, width=SIZE, guidance_scale=den.guidance_scale, **tv.kandinsky5_stock_text())
        return pipe(image=pil, **kw).frames
    kw.update(text(family))
    if family == "ltx":
        kw.update(height=SIZE, width=SIZE, guidance_scale=den.guidance_scale, frame_rate=den.fps)
        out = pipe(image=pil, **kw).frames
        if output_type == "latent":  # packed tokens -> [1, C, F, h, w]
            out = pipe._unpack_latents(out, *den._latent_size, 1, 1)
        return out
    return pipe(image=pil, latents=noise.clone(), **kw).frames


def stock_noise(family: str, cond, seed: int):
    """The noise the stock call draws: LTX's is the generator's draw after the guide's VAE sample, Kandinsky 5's its
    first draw."""
    if family == "ltx":
        return torch.randn(cond.latent_shape, generator=DiffusersDenoiser._run_generator(cond, seed))
    if family == "kandinsky5":
        return torch.randn(cond.latent_shape, generator=torch.Generator().manual_seed(seed))
    return torch.randn(cond.latent_shape, generator=torch.Generator().manual_seed(seed + 100))


def noise_for(cond, seed: int = 1):
    return torch.randn(cond.latent_shape, generator=torch.Generator().manual_seed(seed)).to(cond.latent_dtype)


# -------------------------------------------------------------------------- equivalence with the stock call

EQUIVALENCE = [("ltx", "default", {}), ("ltx", "default", {"guidance_rescale": 0.7}), ("ltx", "timestep-vae", {}),
               ("hunyuan15", "default", {}), ("hunyuan15", "meanflow", {}), ("hunyuan15", "no-cfg", {}),
               ("kandinsky5", "default", {}), ("kandinsky5", "default", {"guidance_scale": 1.0})]


@pytest.mark.parametrize("family,variant,extra", EQUIVALENCE)
def test_one_chunk_matches_the_stock_pipeline_call(family, variant, extra):
    pipe = pipeline(family, variant)
    guide, pil = tiny.guide_image(SIZE, SIZE)
    den = denoiser(family, pipe, seed=11, **extra)
    cond = den.condition(guide)
    noise = stock_noise(family, cond, 11)
    calls = den.network_calls
    result = den.sample(cond, noise, steps=3, seed=11)
    frames = den.decode(result.latent)

    assert result.finished and result.state is None
    # LTX batches the guided pair into one pass; HunyuanVideo 1.5 and Kandinsky 5 run one pass per prediction.
    passes = 1 if family == "ltx" or variant == "no-cfg" or extra.get("guidance_scale") == 1.0 else 2
    assert den.network_calls - calls == passes * 3
    want = stock_call(family, pipe, pil, 11, 3, "latent", den, noise, **extra)
    torch.testing.assert_close(result.latent, want, rtol=1e-5, atol=1e-5)
    want_frames = stock_call(family, pipe, pil, 11, 3, "pt", den, noise, **extra)[0].permute(0, 2, 3, 1)
    assert frames.shape == (FRAMES[family], SIZE, SIZE, 3)
    torch.testing.assert_close(frames, want_frames, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_guide_of_another_size_is_conditioned_like_the_stock_call(family):
    # LTX and Kandinsky 5 stretch the guide to width x height; HunyuanVideo 1.5 takes the bucket of the guide's aspect ratio and
    # resizes and centre-crops the guide to it: here 28 x 32 for a 36 x 44 guide.
    pipe = pipeline(family)
    guide, pil = tiny.guide_image(SIZE + 4, SIZE + 12, seed=3)
    den = denoiser(family, pipe, seed=11)
    cond = den.condition(guide)
    assert (cond.height, cond.width) == ((28, 32) if family == "hunyuan15" else (SIZE, SIZE))
    noise = stock_noise(family, cond, 11)
    result = den.sample(cond, noise, steps=2, seed=11)
    torch.testing.assert_close(result.latent, stock_call(family, pipe, pil, 11, 2, "latent", den, noise),
                               rtol=1e-5, atol=1e-5)


def test_ltx_keeps_the_guide_latent_in_the_first_frame_and_previews_x0():
    den = denoiser("ltx", pipeline("ltx"))
    guide, _ = tiny.guide_image(SIZE, SIZE)
    cond = den.condition(guide)
    x0s = []
    result = den.sample(cond, noise_for(cond), steps=3, callback=lambda i, x0: x0s.append(x0))
    image_latent = cond.tensors["image_latent"]
    torch.testing.assert_close(result.latent[:, :, :1], image_latent, rtol=0, atol=0)
    assert all(torch.equal(x0[:, :, :1], image_latent) for x0 in x0s)
    # Euler's last step lands on the last sigma's x0 prediction; earlier ones differ from the result.
    assert not torch.allclose(x0s[0], result.latent, atol=1e-3)


def test_ltx_size_frames_and_a_prompt_without_encoder_are_refused():
    pipe = pipeline("ltx")
    with pytest.raises(ChunkwiseError, match="num_frames - 1 must be a multiple of 4, got num_frames=8; use 5 or 9"):
        denoiser("ltx", pipe, num_frames=8)
    with pytest.raises(ChunkwiseError, match="multiples of 4, got 30 x 32"):
        denoiser("ltx", pipe, width=30)
    den = from_pipeline(pipe, width=SIZE, height=SIZE, num_frames=FRAMES["ltx"], prompt="a cat")
    with pytest.raises(ChunkwiseError, match="tokenizer and text encoder.*tokenizer=NoneType"):
        den.condition(tiny.guide_image(SIZE, SIZE)[0])
    # LTX's shift_terminal stretch divides by zero on a one-step schedule (a one-step short preview).
    den = denoiser("ltx", pipe)
    cond = den.condition(tiny.guide_image(SIZE, SIZE)[0])
    with pytest.raises(ChunkwiseError, match="1-step schedule cannot be stretched.*at least 2 steps"):
        den.sample(cond, noise_for(cond), steps=1)


def test_hunyuan15_settings_are_checked():
    pipe = pipeline("hunyuan15")
    with pytest.raises(ChunkwiseError, match="num_frames - 1 must be a multiple of 4, got num_frames=10; use 9 or 13"):
        denoiser("hunyuan15", pipe, num_frames=10)
    with pytest.raises(ChunkwiseError, match="both width and height or neither"):
        denoiser("hunyuan15", pipe, width=32)
    with pytest.raises(ChunkwiseError, match="unknown options .'prompt_attention_mask'."):
        denoiser("hunyuan15", pipe, prompt_attention_mask=torch.ones(1, 10))
    den = from_pipeline(pipe, num_frames=FRAMES["hunyuan15"], prompt="a cat")
    with pytest.raises(ChunkwiseError, match="tokenizer and text encoder.*tokenizer_2=NoneType"):
        den.condition(tiny.guide_image(SIZE, SIZE)[0])


def test_kandinsky5_settings_are_checked_and_the_first_frames_are_normalised_at_the_end(monkeypatch):
    pipe = pipeline("kandinsky5")
    with pytest.raises(ChunkwiseError, match="num_frames must be at least 17, got 9.*NaN"):
        denoiser("kandinsky5", pipe, num_frames=9)
    with pytest.raises(ChunkwiseError, match="multiples of 16, got 24 x 32"):
        denoiser("kandinsky5", pipe, width=24)
    den = denoiser("kandinsky5", pipe)
    cond = den.condition(tiny.guide_image(SIZE, SIZE)[0])
    noise = noise_for(cond)
    normalised = []
    normalize = pipe.normalize_first_frame
    monkeypatch.setattr(pipe, "normalize_first_frame", lambda x: normalised.append(x.shape[0]) or normalize(x))
    part = den.sample(cond, noise, steps=3, end_step=2)
    # Until the last step the guide's latent stays in the first frame, and nothing is normalised.
    torch.testing.assert_close(part.latent[:, :1], cond.tensors["image_latent"], rtol=0, atol=0)
    assert normalised == []
    # The last step matches the first four latent frames to the statistics of the ones after them, as the stock call
    # does after its loop: once per candidate (the stock statistics span the whole batch).
    full = den.sample(cond, noise, steps=3, start_step=2, resume=part)
    assert normalised == [1] and not torch.allclose(full.latent[:, :1], cond.tensors["image_latent"], atol=1e-4)
    den.sample_batch(cond, [noise, noise_for(cond, 2)], steps=3, start_step=2, resumes=[part, part])
    assert normalised == [1, 1, 1]


# -------------------------------------------------------------------------- stop at k and resume


@pytest.mark.parametrize("family,variant", [("ltx", "default"), ("hunyuan15", "default"), ("hunyuan15", "meanflow"),
                                            ("kandinsky5", "default")])
def test_k_steps_then_resume_equals_the_full_run(family, variant):
    pipe = pipeline(family, variant)
    den = denoiser(family, pipe)
    cond = den.condition(tiny.guide_image(SIZE, SIZE)[0])
    noise = noise_for(cond)
    full = den.sample(cond, noise, steps=4, seed=9)
    seen = []
    part = den.sample(cond, noise, steps=4, end_step=2, seed=9, callback=lambda i, x0: seen.append(i))
    assert seen == [0, 1] and not part.finished
    assert part.x0.shape == part.latent.shape and not torch.allclose(part.x0, part.latent)
    rest = den.sample(cond, noise, steps=4, start_step=2, resume=part, callback=lambda i, x0: seen.append(i))
    assert seen == [0, 1, 2, 3]
    torch.testing.assert_close(rest.latent, full.latent, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------- candidates in one batch


@pytest.mark.parametrize("family", FAMILIES)
def test_a_batch_of_candidates_equals_one_by_one_including_resume(family):
    den = denoiser(family, pipeline(family))
    cond = den.condition(tiny.guide_image(SIZE, SIZE)[0])
    seeds = [21, 22, 23]
    noises = [noise_for(cond, s) for s in seeds]
    one_by_one = [den.sample(cond, n, steps=3, seed=s) for n, s in zip(noises, seeds, strict=True)]

    nfe, calls = den.nfe, den.network_calls
    part = den.sample_batch(cond, noises, steps=3, end_step=2, seeds=seeds)
    rest = den.sample_batch(cond, noises, steps=3, start_step=2, resumes=part, seeds=seeds)
    assert den.nfe - nfe == 3 * 3
    passes = 1 if family == "ltx" else 2
    assert den.network_calls - calls == passes * 3  # one batched pass per prediction and step for all candidates
    for got, want in zip(rest, one_by_one, strict=True):
        assert got.latent.shape == (1, *cond.latent_shape[1:])
        torch.testing.assert_close(got.latent, want.latent, rtol=1e-4, atol=1e-4)
    alone = den.sample(cond, noises[1], steps=3, start_step=2, resume=part[1])
    torch.testing.assert_close(alone.latent, one_by_one[1].latent, rtol=1e-4, atol=1e-4)


# -------------------------------------------------------------------------- the chunk loop, folders, the CLI


@pytest.mark.parametrize("mode", ["short", "truncated"])
@pytest.mark.parametrize("family", FAMILIES)
def test_the_chunk_loop_counts_m_k_plus_s_and_conditions_once_per_chunk(family, mode, monkeypatch):
    pipe = pipeline(family)
    den = denoiser(family, pipe)
    encodes = []
    encode = pipe.vae.encode
    monkeypatch.setattr(pipe.vae, "encode", lambda *a, **k: encodes.append(1) or encode(*a, **k))
    chunks, m, k, s = 2, 2, 2, 3
    search = SearchSettings(candidates=m, k=k, steps=s, preview_mode=mode, candidate_batch=2)
    result = run_chunks(den, MeanColourScorer(), tiny.guide_image(SIZE, SIZE)[0],
                        LoopSettings(chunks=chunks, seed=4, search=search, drop_first_frame=False))
    per_chunk = m * k + s - (k if mode == "truncated" else 0)
    assert [c["nfe"]["preview"] + c["nfe"]["full"] for c in result.report["chunks"]] == [per_chunk] * chunks
    assert den.nfe == chunks * per_chunk and len(encodes) == chunks
    for c in result.report["chunks"]:
        assert c["chosen"] == max(range(m), key=lambda j: c["candidates"][j]["score"])
    assert result.video().shape == (chunks * FRAMES[family], SIZE, SIZE, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_saved_folder_is_picked_by_its_model_index_and_loads_the_same(family, tmp_path):
    pipe = pipeline(family)
    pipe.save_pretrained(tmp_path / family)
    name = json.loads((tmp_path / family / "model_index.json").read_text())["_class_name"]
    assert pipeline_class_name(tmp_path / family) == name and PIPELINE_FAMILIES[name] == family
    loaded = load_denoiser(tmp_path / family, device="cpu", dtype="auto", **options_for(family))
    assert loaded.family == family and loaded.pipe.transformer.dtype == torch.float32
    ref = denoiser(family, pipe)
    guide = tiny.guide_image(SIZE, SIZE)[0]
    a, b = loaded.condition(guide), ref.condition(guide)
    noise = noise_for(a)
    torch.testing.assert_close(loaded.sample(a, noise, steps=2).latent, ref.sample(b, noise, steps=2).latent,
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_chunkwise_generate_runs_a_two_chunk_video(family, tmp_path, capsys):
    pytest.importorskip("av")
    from safetensors.torch import save_file

    pipeline(family).save_pretrained(tmp_path / "model")
    _, pil = tiny.guide_image(SIZE, SIZE, seed=2)
    pil.save(tmp_path / "first.png")
    embeds = {k: v.clone() for k, v in text(family).items()}
    save_file(embeds, str(tmp_path / "text.safetensors"))
    out = tmp_path / "video.mp4"
    rc = main(["generate", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "first.png"),
               "--out", str(out), "--frames", str(FRAMES[family]), "--width", str(SIZE), "--height", str(SIZE),
               "--prompt-embeds", str(tmp_path / "text.safetensors"), "--device", "cpu", "--seed", "3",
               "--chunks", "2", "--candidates", "2", "--k", "1", "--steps", "2", "--preview-mode", "truncated",
               "--scorer", "flicker", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    import av

    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2 * FRAMES[family] - 1
    report = json.loads((tmp_path / "video.report.json").read_text())
    assert report["run"]["pipeline"].startswith(family)
    assert [c["nfe"] for c in report["chunks"]] == [{"preview": 2, "full": 1}] * 2
