"""Tier 2: the ComfyUI denoiser (nodes/host/) with the family bindings (nodes/families/) on tiny random SVD and Wan models, CPU."""

from __future__ import annotations

import comfy.sample
import comfy.sd
import comfy.utils
import pytest
import torch
from chunkwise.nodes.families import (
    CosmosPredict2Family,
    Kandinsky5Family,
    LTXVFamily,
    SVDFamily,
    Wan22TI2VFamily,
    WanFamily,
)
from chunkwise.nodes.host import ComfyI2V, NFECounter, count_nfe, sample_window
from chunkwise.search.engine import LoopSettings, SearchSettings, run_chunks
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.search.protocols import CandidateScore, I2VDenoiser, Scorer
from chunkwise.tests.comfy import tiny

WAN_SIZE = {"width": 32, "height": 32, "length": 5}  # latent [1, 16, 2, 4, 4]
SVD_SIZE = {"width": 64, "height": 48, "video_frames": 4}  # latent [4, 4, 6, 8]
WAN22_5B_SIZE = {"width": 64, "height": 64, "length": 5}  # latent [1, 48, 2, 4, 4] + noise_mask
LTXV_SIZE = {"width": 64, "height": 64, "length": 9}  # latent [1, 128, 2, 2, 2] + noise_mask [1, 1, 2, 1, 1]
K5_SIZE = {"width": 32, "height": 32, "length": 17}  # latent [1, 16, 5, 4, 4]: 4 normalised + 1 reference frame
COSMOS_SIZE = {"width": 32, "height": 32, "length": 5}  # latent [1, 16, 2, 4, 4] + noise_mask


def guide_image(seed: int = 0, h: int = 40, w: int = 56) -> torch.Tensor:
    # Not the binding's size or aspect: the stock nodes resize and center-crop it.
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, h, w, 3), generator=g)


def make_i2v(family_name: str, parts, *, cfg: float = 3.0, sampler: str = "euler", family_wrapper=None) -> ComfyI2V:
    if family_name == "wan":
        model, vae, positive, negative = parts
        family = WanFamily(positive, negative, **WAN_SIZE)
        scheduler = "simple"
    elif family_name == "wan22_5b":
        model, vae, positive, negative = parts
        family = Wan22TI2VFamily(positive, negative, **WAN22_5B_SIZE)
        scheduler = "simple"
    elif family_name == "ltxv":
        model, vae, positive, negative = parts
        family = LTXVFamily(positive, negative, **LTXV_SIZE)
        scheduler = "simple"
    elif family_name == "kandinsky5":
        model, vae, positive, negative = parts
        family = Kandinsky5Family(positive, negative, **K5_SIZE)
        scheduler = "beta"
    elif family_name == "cosmos":
        model, vae, positive, negative = parts
        family = CosmosPredict2Family(positive, negative, **COSMOS_SIZE)
        scheduler = "karras"
    else:
        model, vae, clip_vision = parts
        family = SVDFamily(clip_vision, motion_bucket_id=127, fps=6, augmentation_level=0.0, min_cfg=1.0, **SVD_SIZE)
        scheduler = "karras"
    if family_wrapper is not None:
        family = family_wrapper(family)
    return ComfyI2V(model, vae, family, sampler_name=sampler, scheduler=scheduler, cfg=cfg)


def spy_calls(i2v, record) -> list:
    """What ``record(args)`` says about every model call of ``i2v`` from now on (behind its NFE counter)."""
    calls = []
    inner = i2v.model.model_options["model_function_wrapper"]

    def spy(apply_model, args):
        calls.append(record(args))
        return inner(apply_model, args)

    i2v.model.set_model_unet_function_wrapper(spy)
    return calls


EXPECTED_FRAMES = {"wan": (5, 32, 32, 3), "svd": (4, 48, 64, 3), "wan22_5b": (5, 64, 64, 3), "ltxv": (9, 64, 64, 3),
                   "kandinsky5": (17, 32, 32, 3), "cosmos": (5, 32, 32, 3)}
EXPECTED_LATENT = {"wan": (1, 16, 2, 4, 4), "svd": (4, 4, 6, 8), "wan22_5b": (1, 48, 2, 4, 4), "ltxv": (1, 128, 2, 2, 2),
                   "kandinsky5": (1, 16, 5, 4, 4), "cosmos": (1, 16, 2, 4, 4)}


class CountingFamily:
    """Wraps a family adapter and counts condition() calls."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def condition(self, vae, guide):
        self.calls += 1
        return self.inner.condition(vae, guide)


class MaskedWanFamily(CountingFamily):
    """Wan conditioning plus a latent noise_mask pinning the first latent frame to the encoded guide.

    Stands in for the families that write the start image into the latent
    (LTX, Cosmos, Wan 2.2 5B): the clean latent is ``samples``, mask 0 = keep.
    """

    def condition(self, vae, guide):
        positive, negative, latent = super().condition(vae, guide)
        clean = positive[0][1]["concat_latent_image"].clone()
        mask = torch.ones((1, 1) + tuple(clean.shape[2:]))
        mask[:, :, 0] = 0.0
        return positive, negative, {"samples": clean, "noise_mask": mask}


class BrightnessScorer(Scorer):
    """Trivial verifier: minus the mean brightness gap to the guide, min over frames."""

    name = "test-brightness"

    def prepare(self, guide, anchor=None):
        ref = float(guide.mean())

        class _Ctx:
            def score(self, previews):
                out = []
                for p in previews:
                    per_frame = [-abs(float(f.mean()) - ref) for f in p]
                    out.append(CandidateScore(min(per_frame), per_frame))
                return out

        return _Ctx()


# --- shapes and protocol ---------------------------------------------------


def test_both_families_give_finite_frames_of_the_chunk_shape(family_name, parts):
    i2v = make_i2v(family_name, parts)
    assert isinstance(i2v, I2VDenoiser)
    cond = i2v.condition(guide_image())
    template = i2v.latent_template(cond)
    assert tuple(template.shape) == EXPECTED_LATENT[family_name]
    result = i2v.sample(cond, make_noise(template, 7), steps=3)
    assert result.finished and result.steps == 3 and (result.start_step, result.end_step) == (0, 3)
    assert tuple(result.latent.shape) == EXPECTED_LATENT[family_name]
    frames = i2v.decode(result.latent)
    assert tuple(frames.shape) == EXPECTED_FRAMES[family_name]
    assert torch.isfinite(frames).all() and frames.min() >= 0.0 and frames.max() <= 1.0
    # The sampler did something: the result depends on the noise.
    other = i2v.sample(cond, make_noise(template, 8), steps=3)
    assert not torch.allclose(other.latent, result.latent)


def test_preview_x0_is_in_the_latent_scale_and_decodes(family_name, parts):
    i2v = make_i2v(family_name, parts)
    cond = i2v.condition(guide_image())
    noise = make_noise(i2v.latent_template(cond), 3)
    steps_seen = []
    part = i2v.sample(cond, noise, steps=6, end_step=2, callback=lambda i, x0: steps_seen.append((i, x0)))
    assert not part.finished and steps_seen[-1][0] == 1 and [i for i, _ in steps_seen] == [0, 1]
    torch.testing.assert_close(steps_seen[-1][1], part.x0)
    # At sigma -> 0 the x0 prediction is the result itself: the last callback of a full run equals its latent
    # (after the family's post-sampling step, which only Kandinsky 5 has).
    seen_full = []
    full = i2v.sample(cond, noise, steps=4, callback=lambda i, x0: seen_full.append(x0))
    torch.testing.assert_close(i2v.family.finish_latent(cond.positive, seen_full[-1]), full.latent, rtol=1e-4,
                               atol=1e-4)
    assert tuple(i2v.decode(part.x0).shape) == EXPECTED_FRAMES[family_name]


# --- NFE ---------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_nfe_counts_one_per_euler_step_with_and_without_cfg(family_name, parts, cfg):
    i2v = make_i2v(family_name, parts, cfg=cfg)
    cond = i2v.condition(guide_image())
    noise = make_noise(i2v.latent_template(cond), 0)
    calls = spy_calls(i2v, lambda args: list(args["cond_or_uncond"]))
    before = i2v.nfe
    i2v.sample(cond, noise, steps=4)
    assert i2v.nfe - before == 4
    # cfg 1 skips the uncond pass; cfg > 1 batches cond and uncond in one call.
    assert all(sorted(c) == ([0] if cfg == 1.0 else [0, 1]) for c in calls), calls
    before = i2v.nfe
    i2v.sample(cond, noise, steps=5, start_step=2, end_step=4)
    assert i2v.nfe - before == 2


def test_split_cond_and_uncond_calls_at_one_sigma_count_once():
    counter = NFECounter()
    sigma = torch.tensor([5.0])
    counter.observe(sigma, [0])
    counter.observe(sigma, [1])  # the uncond half of the same evaluation
    assert counter.count == 1
    counter.observe(torch.tensor([3.0]), [1, 0])
    assert counter.count == 2
    counter.observe(torch.tensor([3.0]), [1, 0])  # Heun: a second evaluation at the same sigma
    assert counter.count == 3
    counter.new_window()
    counter.observe(torch.tensor([3.0]), [0])  # a new sampler run starting at the last sigma
    assert counter.count == 4


def test_count_nfe_chains_an_existing_wrapper_and_leaves_the_original_model_alone(wan_parts):
    model, vae, positive, negative = wan_parts
    seen = []

    def existing(apply_model, args):
        seen.append(float(args["timestep"][0]))
        return apply_model(args["input"], args["timestep"], **args["c"])

    wrapped = model.clone()
    wrapped.set_model_unet_function_wrapper(existing)
    counted, counter = count_nfe(wrapped)
    assert "model_function_wrapper" not in model.model_options
    assert wrapped.model_options["model_function_wrapper"] is existing
    i2v = ComfyI2V(counted, vae, WanFamily(positive, negative, **WAN_SIZE), cfg=2.0)
    cond = i2v.condition(guide_image())
    i2v.sample(cond, make_noise(i2v.latent_template(cond), 1), steps=3)
    assert len(seen) == 3 and counter.count == 3


# --- resume ------------------------------------------------------------------


def test_stop_at_k_and_resume_equals_the_full_euler_run(family_name, parts):
    """Tolerance 1e-4 (relative and absolute) on latents of magnitude ~1-10.

    The resumed window starts from the returned latent, which went through
    ``process_latent_out`` -> ``process_latent_in`` (SD scale factor, Wan
    mean/std) and, for flow models, ``inverse_noise_scaling`` (/(1 - sigma))
    -> ``noise_scaling`` (*(1 - sigma)): float32 round trips of ~1e-7 relative,
    amplified a little by the remaining steps of a random network.
    """
    i2v = make_i2v(family_name, parts)
    cond = i2v.condition(guide_image(1))
    noise = make_noise(i2v.latent_template(cond), 11)
    full = i2v.sample(cond, noise, steps=6)
    part = i2v.sample(cond, noise, steps=6, end_step=2)
    before = i2v.nfe
    rest = i2v.sample(cond, noise, steps=6, start_step=2, resume=part)
    assert i2v.nfe - before == 4
    assert rest.finished and (rest.start_step, rest.end_step) == (2, 6)
    torch.testing.assert_close(rest.latent, full.latent, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(part.latent, full.latent, rtol=1e-2, atol=1e-2)


def test_resume_is_refused_from_another_schedule(wan_parts):
    i2v = make_i2v("wan", wan_parts)
    cond = i2v.condition(guide_image())
    noise = make_noise(i2v.latent_template(cond), 0)
    part = i2v.sample(cond, noise, steps=6, end_step=2)
    with pytest.raises(ChunkwiseError, match="same 8-step schedule"):
        i2v.sample(cond, noise, steps=8, start_step=2, resume=part)
    with pytest.raises(ChunkwiseError, match="end at step 3"):
        i2v.sample(cond, noise, steps=6, start_step=3, resume=part)
    with pytest.raises(ChunkwiseError, match="start_step < end_step"):
        i2v.sample(cond, noise, steps=6, start_step=4, end_step=4)


def test_masked_latent_resumes_exactly_with_the_corrected_noise(wan_parts):
    """A latent with a noise_mask (the LTX / Cosmos / Wan 2.2 5B pattern): the plain
    disable-noise continuation corrupts the pinned frame, the corrected noise does not."""
    i2v = make_i2v("wan", wan_parts, family_wrapper=MaskedWanFamily)
    cond = i2v.condition(guide_image(2))
    clean = cond.latent["samples"]
    noise = make_noise(i2v.latent_template(cond), 5)
    full = i2v.sample(cond, noise, steps=6)
    torch.testing.assert_close(full.latent[:, :, :1], clean[:, :, :1], rtol=1e-4, atol=1e-4)
    part = i2v.sample(cond, noise, steps=6, end_step=2)
    rest = i2v.sample(cond, noise, steps=6, start_step=2, resume=part)
    torch.testing.assert_close(rest.latent, full.latent, rtol=1e-4, atol=1e-4)
    # The naive continuation treats the partial latent as the clean reference.
    naive, _ = sample_window(
        i2v.model, noise, cond.positive, cond.negative, cond.latent, steps=6, cfg=i2v.cfg,
        sampler_name="euler", scheduler="simple", start_step=2, end_step=6, resume_latent=part.latent,
    )
    assert (naive[:, :, :1] - clean[:, :, :1]).abs().max() > 1e-2


# --- noise and conditioning reuse --------------------------------------------


@pytest.mark.parametrize("seed", [0, 12345, 2**63 + 17])
def test_engine_noise_equals_comfy_prepare_noise(family_name, parts, seed):
    i2v = make_i2v(family_name, parts)
    template = i2v.latent_template(i2v.condition(guide_image()))
    ours = make_noise(template, seed)
    theirs = comfy.sample.prepare_noise(template, seed)
    assert ours.dtype == theirs.dtype and ours.device == theirs.device
    assert torch.equal(ours, theirs)


def test_run_chunks_conditions_once_per_chunk_and_reports(wan_parts):
    i2v = make_i2v("wan", wan_parts, family_wrapper=CountingFamily)
    settings = LoopSettings(chunks=2, seed=3, search=SearchSettings(candidates=2, k=2, steps=4), drop_first_frame=False)
    result = run_chunks(i2v, BrightnessScorer(), guide_image(4), settings)
    video = result.video()
    assert tuple(video.shape) == (2 * 5, 32, 32, 3) and torch.isfinite(video).all()
    assert i2v.family.calls == 2  # one per chunk, shared by 2 previews and the full run
    report = result.report
    assert report["totals"]["frames"] == 10 and len(report["chunks"]) == 2
    for chunk in report["chunks"]:
        assert chunk["nfe"] == {"preview": 2 * 2, "full": 4}
        assert len(chunk["candidates"]) == 2 and all(c["score"] is not None for c in chunk["candidates"])
    assert report["totals"]["nfe"] == 2 * (2 * 2 + 4) == i2v.nfe
    torch.testing.assert_close(result.last_frame, video[-1:])


def test_run_chunks_truncated_mode_resumes_the_winner_on_svd(svd_parts):
    i2v = make_i2v("svd", svd_parts, family_wrapper=CountingFamily)
    settings = LoopSettings(
        chunks=2, seed=0, search=SearchSettings(candidates=2, k=2, steps=4, preview_mode="truncated"),
        drop_first_frame=False,
    )
    result = run_chunks(i2v, BrightnessScorer(), guide_image(5), settings)
    assert tuple(result.video().shape) == (2 * 4, 48, 64, 3)
    assert i2v.family.calls == 2
    assert [c["nfe"] for c in result.report["chunks"]] == [{"preview": 4, "full": 2}] * 2


def test_bad_bindings_are_refused(wan_parts):
    model, vae, positive, negative = wan_parts
    with pytest.raises(ChunkwiseError, match="4\\*n \\+ 1"):
        WanFamily(positive, negative, width=32, height=32, length=6)
    with pytest.raises(ChunkwiseError, match="multiple of 16, got 40"):
        WanFamily(positive, negative, width=40, height=32, length=5)
    with pytest.raises(ChunkwiseError, match="unknown sampler 'eulr'"):
        ComfyI2V(model, vae, WanFamily(positive, negative, **WAN_SIZE), sampler_name="eulr")


# --- loadable files ----------------------------------------------------------


def test_tiny_wan_files_load_through_comfy_loaders(tmp_path):
    paths = tiny.save_tiny_wan_files(tmp_path)
    assert paths["unet"].stat().st_size < 8_000_000
    model = comfy.sd.load_diffusion_model(str(paths["unet"]))  # what UNETLoader calls
    assert type(model.model.model_config).__name__ == "WAN21_T2V"
    assert model.model.diffusion_model.patch_embedding.weight.shape[1] == 36
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(paths["vae"])))  # what VAELoader calls
    vae.throw_exception_if_invalid()
    assert vae.latent_channels == 16 and vae.latent_dim == 3
    frames = vae.decode(torch.randn(1, 16, 2, 4, 4))
    assert tuple(frames.shape) == (1, 5, 32, 32, 3)


def test_tiny_svd_and_clip_vision_files_are_refused_by_comfy_loaders(tmp_path):
    import comfy.clip_vision

    with pytest.raises(NotImplementedError, match="ImageOnlyCheckpointLoader"):
        tiny.save_tiny_svd_files(tmp_path)
    sd = tiny.svd_checkpoint_state_dict()
    assert comfy.sd.load_state_dict_guess_config(sd, output_vae=False, output_clip=False) is None
    path = tmp_path / "tiny_clip_vision.safetensors"
    clip_vision = tiny.tiny_clip_vision()
    comfy.utils.save_torch_file({k: v.contiguous() for k, v in clip_vision.get_sd().items()}, str(path))
    assert comfy.clip_vision.load(str(path)) is None  # what CLIPVisionLoader calls


def test_nothing_is_left_on_the_model_after_sampling(wan_parts):
    model = wan_parts[0]
    options_before = dict(model.model_options)
    i2v = make_i2v("wan", wan_parts)
    cond = i2v.condition(guide_image())
    i2v.sample(cond, make_noise(i2v.latent_template(cond), 0), steps=2)
    assert model.model_options == options_before
