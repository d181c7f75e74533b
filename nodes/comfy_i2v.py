"""The ComfyUI side of the denoiser protocol: MODEL + VAE + family conditioning -> I2VDenoiser.

Imported only inside ComfyUI (or tier-2 tests), so comfy is imported at module level.

Two layers:

- low-level helpers the per-chunk nodes reuse: :func:`sample_window` (one window
  ``[start_step, end_step)`` of a stock KSampler schedule, optionally resumed),
  :func:`count_nfe` (a model clone that counts evaluations) and :func:`decode`;
- :class:`ComfyI2V`, the object the chunk engine drives, with one family adapter
  per model family (:class:`SVDFamily`, :class:`WanFamily`). The adapters call
  ComfyUI's own conditioning nodes, so family logic is never rewritten here.

Nothing here names a device or a dtype or draws noise: ComfyUI's sampler and
VAE load, cast and offload their own models, and the noise comes from the
caller (the engine draws it on the CPU exactly as ``comfy.sample.prepare_noise``).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any, Optional

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import torch

from ..search.adaptive import frame_indices
from ..search.batching import is_out_of_memory as is_torch_out_of_memory
from ..search.batching import run_in_batches
from ..search.errors import ChunkwiseError, check_image
from ..search.protocols import SampleResult, StepCallback

log = logging.getLogger("chunkwise")

SEED_MODULUS = 2**64

EXACT_RESUME_SAMPLERS = frozenset({"euler", "heun", "dpm_2"})
"""Samplers whose steps depend only on the current state and sigma: a resumed
window continues the same trajectory. Multistep samplers lose their history at
the seam; ancestral and SDE samplers draw fresh noise per call."""


# ---------------------------------------------------------------------------
# Low-level helpers
# ---------------------------------------------------------------------------


def sample_window(
    model,
    noise: torch.Tensor,
    positive,
    negative,
    latent: dict,
    *,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    start_step: int,
    end_step: int,
    resume_latent: Optional[torch.Tensor] = None,
    callback: Optional[StepCallback] = None,
    seed: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run steps ``[start_step, end_step)`` of a ``steps``-step KSampler schedule.

    This is ``KSamplerAdvanced`` without its own noise: ``last_step=end_step``,
    ``force_full_denoise=(end_step >= steps)``. From ``noise`` the run starts on
    ``latent["samples"]`` (noised at the window's first sigma); with
    ``resume_latent`` (the latent an earlier window of the same schedule returned
    at ``start_step``) it continues from that latent with zero noise
    (``disable_noise``). ``latent["noise_mask"]`` is passed on when present.
    ``seed`` only feeds samplers that draw noise during sampling (ancestral, SDE).

    ``callback(step, x0)`` gets the absolute step index and the x0 prediction in
    the scale of the returned latent; it also lets ComfyUI's cancel button stop
    the window between steps.

    Returns ``(latent, x0)``: the sampler state after the last step (in the
    LATENT scale, like KSampler's output) and the x0 prediction at that step
    (``model.model.process_latent_out`` applied, same scale). An empty window
    returns the starting latent twice.
    """
    latent_image = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    if resume_latent is not None:
        latent_image = resume_latent
        noise = torch.zeros(latent_image.shape, dtype=latent_image.dtype, layout=latent_image.layout, device="cpu")
    if tuple(noise.shape) != tuple(latent_image.shape):
        raise ChunkwiseError(
            f"noise shape {list(noise.shape)} does not match the latent shape {list(latent_image.shape)}; "
            "draw the noise from latent_template(cond) of the same conditioning"
        )
    inner = model.model
    last: dict[str, Any] = {"x0": None}

    def on_step(i: int, denoised: torch.Tensor, _x: torch.Tensor, _total: int) -> None:
        last["x0"] = denoised
        comfy.model_management.throw_exception_if_processing_interrupted()
        if callback is not None:
            callback(start_step + i, inner.process_latent_out(denoised.to(torch.float32)))

    samples = comfy.sample.sample(
        model,
        noise,
        steps,
        cfg,
        sampler_name,
        scheduler,
        positive,
        negative,
        latent_image,
        start_step=start_step,
        last_step=end_step,
        force_full_denoise=end_step >= steps,
        noise_mask=latent.get("noise_mask"),
        callback=on_step,
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
        seed=seed,
    )
    if last["x0"] is None:  # nothing sampled: KSampler handed the latent back
        return samples, samples
    x0 = inner.process_latent_out(last["x0"].to(torch.float32)).to(samples.device)
    return samples, x0


class NFECounter:
    """Counts model evaluations seen by a unet function wrapper.

    One sampler evaluation is one call when cond and uncond are batched. When
    ComfyUI splits them (low memory) the calls share the sigma and cover
    disjoint cond indices, so they are merged into one evaluation. A call at a
    new sigma, or one repeating a cond index already seen at this sigma (Heun's
    second evaluation meets the next step's first at the same sigma), starts a
    new evaluation. Known over-count: several area conds of the same kind split
    over calls at one sigma count once per call.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sigma: Optional[float] = None
        self._seen: set = set()

    def new_window(self) -> None:
        """Forget the last sigma: the next call is a new evaluation (a new sampler run)."""
        self._sigma = None
        self._seen = set()

    def observe(self, timestep, cond_or_uncond) -> None:
        sigma = float(timestep.reshape(-1)[0]) if isinstance(timestep, torch.Tensor) else float(timestep)
        indices = set(cond_or_uncond or ())
        if self._sigma is None or sigma != self._sigma or (indices & self._seen):
            self.count += 1
            self._sigma = sigma
            self._seen = indices
        else:
            self._seen |= indices


def count_nfe(model, counter: Optional[NFECounter] = None) -> tuple[Any, NFECounter]:
    """A clone of ``model`` whose evaluations are counted (the original is untouched).

    Uses ``set_model_unet_function_wrapper``; a wrapper already on the model
    keeps working: the counter observes the call and hands it on to it. Pass
    ``counter`` to count several models (two experts) on one counter.
    """
    patched = model.clone()
    counter = counter if counter is not None else NFECounter()
    previous = patched.model_options.get("model_function_wrapper")

    def counting_wrapper(apply_model, args):
        counter.observe(args["timestep"], args.get("cond_or_uncond"))
        if previous is not None:
            return previous(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched.set_model_unet_function_wrapper(counting_wrapper)
    return patched, counter


def schedule_sigmas(model, steps: int, sampler_name: str, scheduler: str) -> torch.Tensor:
    """The stock KSampler's sigma schedule (``steps + 1`` values) for ``model``."""
    sampler = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler_name, scheduler=scheduler,
                                      denoise=1.0, model_options=model.model_options)
    return sampler.sigmas.to("cpu", torch.float32)


def masked_resume_noise(model, latent: dict, resumed: torch.Tensor, noise: torch.Tensor,
                        sigma: torch.Tensor) -> torch.Tensor:
    """Noise that restarts a ``noise_mask`` latent at ``sigma`` (the schedule's sigma at step k) exactly
    where a window that stopped at step k left it (``resumed``, in the LATENT scale).

    The sampler starts a window at ``x = noise_scaling(sigma_k, eps, clean)``
    (inner scale), affine in ``eps``, so ``eps = (x_k - a) / b`` with
    ``a = noise_scaling(sigma_k, 0, clean)`` and ``b`` its slope; ``x_k`` is
    the resumed state, ``noise_scaling(sigma_k, 0, latent_in)`` (this undoes
    ``inverse_noise_scaling``, e.g. the flow models' ``/(1 - sigma)``). In the
    pinned region (mask 0) the original ``noise`` is kept, because the
    sampler re-noises that region from its noise before every evaluation.
    Exact (to float rounding) for binary masks and single-step samplers;
    for soft masks the partly pinned region starts from ``x_k``.
    """
    sigma = sigma.reshape(1)
    inner = model.model
    sampling = model.get_model_object("model_sampling")
    clean = latent["samples"].to("cpu", torch.float32)
    clean_in = inner.process_latent_in(clean) if torch.count_nonzero(clean) > 0 else clean
    state = inner.process_latent_in(resumed.to("cpu", torch.float32))
    x_k = sampling.noise_scaling(sigma, torch.zeros_like(state), state)
    a = sampling.noise_scaling(sigma, torch.zeros_like(clean_in), clean_in)
    b = sampling.noise_scaling(sigma, torch.ones_like(clean_in), clean_in) - a
    eps = (x_k - a) / b
    mask = comfy.utils.reshape_mask(latent["noise_mask"].to("cpu", torch.float32), clean.shape)
    return torch.where(mask > 0, eps, noise.to(eps.dtype)).to(noise.dtype)


def decode(vae, latent: torch.Tensor) -> torch.Tensor:
    """``vae.decode`` -> IMAGE ``[T, H, W, 3]``; a video VAE's ``[B, T, H, W, C]`` is flattened to frames."""
    images = vae.decode(latent)
    if images.ndim == 5:
        images = images.reshape((-1,) + tuple(images.shape[-3:]))
    return images


def noise_seed(noise: torch.Tensor) -> int:
    """A stable seed derived from the noise itself (for samplers that draw noise while sampling).

    The same candidate noise always gives the same seed, so ancestral and SDE
    samplers are reproducible without the protocol carrying the seed.
    """
    head = noise.detach().reshape(-1)[:4096].to("cpu", torch.float32).contiguous()
    return zlib.crc32(head.numpy().tobytes()) % SEED_MODULUS


def _require_size(name: str, value, multiple: int, family: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < multiple or value % multiple:
        raise ChunkwiseError(
            f"{family} {name} must be a positive integer multiple of {multiple}, got {value!r}; "
            f"round it to a multiple of {multiple}"
        )
    return value


# ---------------------------------------------------------------------------
# Family adapters: guide image -> (positive, negative, LATENT dict)
# ---------------------------------------------------------------------------


class SVDFamily:
    """Stable Video Diffusion: ``SVD_img2vid_Conditioning`` (V1 node).

    The guide goes to the node unchanged: it encodes the guide with CLIP vision
    at CLIP's own resolution (center crop) and resizes it to ``width`` x
    ``height`` with ``comfy.utils.common_upscale(..., "bilinear", "center")``
    (scale to cover, then center crop) before the VAE encode, like the stock
    workflow. Latent ``[video_frames, 4, height/8, width/8]``: batch = frames.

    ``min_cfg``: when set, the model is patched once with
    ``VideoLinearCFGGuidance(min_cfg)`` (cfg ramps from min_cfg on the first
    frame to cfg on the last), as the stock SVD workflow does.
    ``augmentation_level > 0`` makes the node draw noise from torch's global
    generator; it is drawn under ``augmentation_seed`` so chunks reproduce.
    """

    name = "SVD"
    batches_candidates = True
    frames_in_batch = True
    """The latent's batch dimension is the chunk's frames and the SVD UNet takes ``num_video_frames``
    from the batch size. Candidates are stacked frame-major ([m*T, ...]) on a model clone whose UNet
    wrapper keeps ``num_video_frames`` at T (its temporal layers then see m videos) and whose cfg
    function (VideoLinearCFGGuidance's per-frame ramp) runs once per candidate's T frames."""

    def __init__(
        self,
        clip_vision,
        width: int,
        height: int,
        video_frames: int,
        motion_bucket_id: int = 127,
        fps: int = 6,
        augmentation_level: float = 0.0,
        min_cfg: Optional[float] = None,
        augmentation_seed: int = 0,
    ) -> None:
        if clip_vision is None:
            raise ChunkwiseError("SVD needs a CLIP_VISION model, got None; connect the checkpoint's CLIP_VISION output")
        self.clip_vision = clip_vision
        self.width = _require_size("width", width, 8, self.name)
        self.height = _require_size("height", height, 8, self.name)
        if isinstance(video_frames, bool) or not isinstance(video_frames, int) or video_frames < 1:
            raise ChunkwiseError(f"SVD video_frames must be an integer >= 1, got {video_frames!r}; use 14 (SVD) or 25 (SVD-XT)")
        self.video_frames = video_frames
        self.motion_bucket_id = motion_bucket_id
        self.fps = fps
        self.augmentation_level = float(augmentation_level)
        self.min_cfg = min_cfg
        self.augmentation_seed = int(augmentation_seed)

    @property
    def frames(self) -> int:
        return self.video_frames

    def patch_model(self, model):
        if self.min_cfg is None:
            return model
        from comfy_extras.nodes_video_model import VideoLinearCFGGuidance

        return VideoLinearCFGGuidance().patch(model, float(self.min_cfg))[0]

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

        args = (
            self.clip_vision, guide, vae, self.width, self.height, self.video_frames,
            self.motion_bucket_id, self.fps, self.augmentation_level,
        )
        if self.augmentation_level > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.augmentation_seed)
                return SVD_img2vid_Conditioning().encode(*args)
        return SVD_img2vid_Conditioning().encode(*args)

    def describe(self) -> str:
        return (
            f"SVD {self.width}x{self.height}, {self.video_frames} frames, motion {self.motion_bucket_id}, "
            f"fps {self.fps}, aug {self.augmentation_level}" + (f", min_cfg {self.min_cfg}" if self.min_cfg is not None else "")
        )


class WanFamily:
    """Wan 2.1 I2V / Wan 2.2 14B I2V: ``WanImageToVideo`` (V3 node), batch size 1.

    ``positive`` / ``negative`` are the text CONDITIONING (e.g. from umt5 via
    CLIPTextEncode). The guide goes to the node unchanged as ``start_image``:
    the node resizes it to ``width`` x ``height`` with
    ``comfy.utils.common_upscale(..., "bilinear", "center")`` (scale to cover,
    center crop), fills the other frames with gray and VAE-encodes the clip as
    ``concat_latent_image`` under a mask that pins the first latent frame.
    ``clip_vision`` (Wan 2.1 only; Wan 2.2 has no CLIP-vision branch) encodes
    the guide with a center crop, as ``CLIPVisionEncode(crop="center")`` does.
    Latent ``[1, 16, (length-1)/4 + 1, height/8, width/8]``.
    """

    name = "Wan I2V"
    batches_candidates = True
    """Candidates stack along the latent's batch dimension; the conditioning is repeated to it."""

    def __init__(self, positive, negative, width: int, height: int, length: int, clip_vision=None) -> None:
        if not positive or not negative:
            raise ChunkwiseError(
                "Wan I2V needs positive and negative CONDITIONING, got an empty one; connect CLIPTextEncode outputs"
            )
        self.positive = positive
        self.negative = negative
        self.width = _require_size("width", width, 16, self.name)
        self.height = _require_size("height", height, 16, self.name)
        if isinstance(length, bool) or not isinstance(length, int) or length < 1 or (length - 1) % 4:
            raise ChunkwiseError(
                f"Wan I2V length must be 4*n + 1 frames (the VAE packs 4 frames per latent), got {length!r}; "
                "use e.g. 33, 49 or 81"
            )
        self.length = length
        self.clip_vision = clip_vision

    @property
    def frames(self) -> int:
        return self.length

    def patch_model(self, model):
        return model

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_wan import WanImageToVideo

        clip_vision_output = None
        if self.clip_vision is not None:
            clip_vision_output = self.clip_vision.encode_image(guide, crop=True)
        out = WanImageToVideo.execute(
            self.positive,
            self.negative,
            vae,
            self.width,
            self.height,
            self.length,
            1,
            start_image=guide,
            clip_vision_output=clip_vision_output,
        )
        return out.result

    def describe(self) -> str:
        return f"Wan I2V {self.width}x{self.height}, {self.length} frames" + (
            ", CLIP vision" if self.clip_vision is not None else ""
        )


# ---------------------------------------------------------------------------
# The denoiser
# ---------------------------------------------------------------------------


@dataclass
class ComfyCond:
    """One chunk's conditioning: reused by every candidate and the full run.

    ``latent`` is a ComfyUI LATENT dict: ``samples`` (empty, or the clean
    reference for families that write the start image into the latent) and,
    for those families, ``noise_mask``.
    """

    positive: list
    negative: list
    latent: dict


class ComfyI2V:
    """A ComfyUI MODEL + VAE + family adapter bound to sampler settings: an ``I2VDenoiser``.

    ``model`` is never changed: the family's patch (SVD ``min_cfg``) and the
    evaluation counter go on a clone made once here. ``condition`` runs the
    family's stock node once per chunk; ``sample`` runs a window of the stock
    KSampler schedule from the noise it is given; ``decode`` uses the VAE's own
    decode (which falls back to tiling on out-of-memory).

    Two experts (Wan 2.2 14B I2V): ``model`` denoises steps ``[0, switch_step)``
    and ``model_low_noise`` steps ``[switch_step, steps)`` of the one schedule, as
    the stock workflow's two KSamplerAdvanced nodes do (the second continues the
    first's latent with noise disabled). ``switch_step`` refers to a schedule of
    ``schedule_steps`` steps (the binding's); a schedule of another length (a
    short k-step preview) switches at the same fraction of its steps, rounded.
    A window that crosses the switch runs both; a truncated preview that stops
    before it uses only the first.
    """

    def __init__(
        self,
        model,
        vae,
        family,
        *,
        sampler_name: str = "euler",
        scheduler: str = "simple",
        cfg: float = 1.0,
        model_low_noise=None,
        switch_step: Optional[int] = None,
        schedule_steps: Optional[int] = None,
    ) -> None:
        if sampler_name not in comfy.samplers.KSampler.SAMPLERS:
            raise ChunkwiseError(
                f"unknown sampler {sampler_name!r}; use one of ComfyUI's samplers, e.g. 'euler' "
                f"(all: {', '.join(comfy.samplers.KSampler.SAMPLERS)})"
            )
        if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
            raise ChunkwiseError(
                f"unknown scheduler {scheduler!r}; use one of {', '.join(comfy.samplers.KSampler.SCHEDULERS)}"
            )
        if vae is None:
            raise ChunkwiseError("a VAE is needed to encode the guide and decode chunks, got None; connect a VAE")
        self.model, self._counter = count_nfe(family.patch_model(model))
        self.model_low_noise = None
        self.switch_step: Optional[int] = None
        if model_low_noise is not None:
            if isinstance(switch_step, bool) or not isinstance(switch_step, int) or switch_step < 1:
                raise ChunkwiseError(
                    f"switch_step must be an integer >= 1 with a second (low-noise) model, got {switch_step!r}; "
                    "use half the steps, as the stock Wan 2.2 workflow (10 of 20)"
                )
            if schedule_steps is not None and not (isinstance(schedule_steps, int) and schedule_steps > switch_step):
                raise ChunkwiseError(
                    f"switch_step must be smaller than the schedule's steps, got switch_step={switch_step}, "
                    f"steps={schedule_steps}; use half the steps, as the stock Wan 2.2 workflow"
                )
            self.model_low_noise, _ = count_nfe(family.patch_model(model_low_noise), self._counter)
            self.switch_step = switch_step
        self.schedule_steps = schedule_steps
        self.vae = vae
        self.family = family
        self.sampler_name = sampler_name
        self.scheduler = scheduler
        self.cfg = float(cfg)
        self._warned_resume = False
        self.frames_decoded = 0
        """Frames the VAE decoded (chunks and previews); approximate previews add none."""
        self.batch_limit: Optional[int] = None
        """Largest candidate batch that fit in memory so far (None: no out-of-memory yet)."""

    @property
    def nfe(self) -> int:
        return self._counter.count

    def describe(self) -> str:
        of = f" of {self.schedule_steps}" if self.schedule_steps else ""
        experts = f"; two experts, switch at step {self.switch_step}{of}" if self.model_low_noise is not None else ""
        return f"{self.family.describe()}; {self.sampler_name}/{self.scheduler}, cfg {self.cfg}{experts}"

    # 1. Conditioning -----------------------------------------------------

    def condition(self, guide: torch.Tensor) -> ComfyCond:
        """Run the family's stock conditioning node on the guide (see the family's resize policy)."""
        guide = check_image(guide, "guide image")
        positive, negative, latent = self.family.condition(self.vae, guide)
        latent = dict(latent)
        latent["samples"] = comfy.sample.fix_empty_latent_channels(self.model, latent["samples"])
        comfy.model_management.soft_empty_cache()
        return ComfyCond(positive=positive, negative=negative, latent=latent)

    def latent_template(self, cond: ComfyCond) -> torch.Tensor:
        return cond.latent["samples"]

    # 2. Sampling ---------------------------------------------------------

    def sample(
        self,
        cond: ComfyCond,
        noise: torch.Tensor,
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resume: Optional[SampleResult] = None,
        callback: Optional[StepCallback] = None,
        seed: Optional[int] = None,
    ) -> SampleResult:
        """Sample steps ``[start_step, end_step)`` of a ``steps``-step schedule.

        Without ``resume`` the window starts from ``noise`` (a window starting
        after step 0 noises the conditioning latent to that step's sigma, as
        KSamplerAdvanced does). With ``resume`` (an earlier result on the same
        schedule that ended at ``start_step``) it continues from that result's
        latent with noise disabled: exact for deterministic single-step
        samplers such as euler. For families whose latent carries a
        ``noise_mask``, a plain continuation would treat the partial latent as
        the clean reference and corrupt the pinned frames, so the window
        instead restarts from the clean latent with the corrected noise
        ``eps`` that reproduces the resumed state at ``sigma[start_step]``
        (see :meth:`corrected_noise`). ``seed`` feeds samplers that draw noise
        while sampling; by default it is derived from ``noise``.
        """
        end = steps if end_step is None else end_step
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ChunkwiseError(f"steps must be an integer >= 1, got {steps!r}")
        if not 0 <= start_step < end <= steps:
            raise ChunkwiseError(
                f"the window must satisfy 0 <= start_step < end_step <= steps, got start_step={start_step}, "
                f"end_step={end}, steps={steps}"
            )
        if seed is None:
            seed = noise_seed(noise)
        resume_latent = None
        if resume is not None:
            noise, resume_latent = self._resume_input(cond, resume, noise, steps, start_step)
        self._counter.new_window()
        out, x0 = self._sample_experts(
            self.model, noise, cond, steps=steps, start_step=start_step, end_step=end,
            resume_latent=resume_latent, callback=callback, seed=seed,
        )
        comfy.model_management.soft_empty_cache()
        finished = end >= steps
        return SampleResult(
            latent=out, x0=out if finished else x0, steps=steps, start_step=start_step, end_step=end
        )

    def _sample_experts(self, model, noise, cond: ComfyCond, *, steps, start_step, end_step, resume_latent, callback,
                        seed):
        """:func:`sample_window` over ``[start_step, end_step)``, handing over to the low-noise expert at
        ``switch_step`` (its latent continued with noise disabled, as the stock KSamplerAdvanced chain)."""
        window = dict(cfg=self.cfg, sampler_name=self.sampler_name, scheduler=self.scheduler, steps=steps,
                      callback=callback, seed=seed)
        switch = self.switch_at(steps)
        if switch is None or end_step <= switch:
            return sample_window(model, noise, cond.positive, cond.negative, cond.latent, start_step=start_step,
                                 end_step=end_step, resume_latent=resume_latent, **window)
        if "noise_mask" in cond.latent:
            raise ChunkwiseError(
                "two experts need a latent without a noise_mask (the low-noise expert continues the first one's "
                "latent); use WanImageToVideo's conditioning, or one model"
            )
        if start_step < switch:
            resume_latent, _ = sample_window(model, noise, cond.positive, cond.negative, cond.latent,
                                             start_step=start_step, end_step=switch,
                                             resume_latent=resume_latent, **window)
            start_step = switch
            self._counter.new_window()
        return sample_window(self.model_low_noise, noise, cond.positive, cond.negative, cond.latent,
                             start_step=start_step,
                             end_step=end_step, resume_latent=resume_latent, **window)

    def switch_at(self, steps: int) -> Optional[int]:
        """The step where the low-noise expert takes over in a ``steps``-step schedule (None: one model)."""
        if self.model_low_noise is None:
            return None
        if not self.schedule_steps or steps == self.schedule_steps:
            return self.switch_step
        return min(steps, max(1, round(steps * self.switch_step / self.schedule_steps)))

    def sigmas(self, steps: int) -> torch.Tensor:
        """The stock KSampler's sigma schedule for this binding (``steps + 1`` values)."""
        return schedule_sigmas(self.model, steps, self.sampler_name, self.scheduler)

    def corrected_noise(self, cond: ComfyCond, resume: SampleResult, noise: torch.Tensor) -> torch.Tensor:
        """Noise that restarts a ``noise_mask`` latent at ``sigma[k]`` exactly where ``resume`` left it
        (see :func:`masked_resume_noise`)."""
        sigma = self.sigmas(resume.steps)[resume.end_step]
        return masked_resume_noise(self.model, cond.latent, resume.latent, noise, sigma)

    # 3. Decoding ---------------------------------------------------------

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        frames = decode(self.vae, latent)
        self.frames_decoded += int(frames.shape[0])
        comfy.model_management.soft_empty_cache()
        return frames

    def preview_decode(self, latent: torch.Tensor, *, stride: int = 1, approximate: bool = False) -> torch.Tensor:
        """Frames to score a preview on: every ``stride``-th frame plus the last, optionally approximate.

        With a per-frame latent (``[T, C, h, w]``: SVD, batch = frames) only
        the chosen latent frames go through the VAE. A video VAE
        (``[B, C, t, h, w]``: Wan) decodes the whole clip and the frames are
        picked afterwards, since its temporal layers need every latent frame;
        :attr:`frames_decoded` counts what the VAE really decoded.
        ``approximate`` skips the VAE: see :meth:`approximate_decode`.
        """
        if approximate:
            frames = self.approximate_decode(latent)
            return frames[frame_indices(frames.shape[0], stride)]
        if stride <= 1:
            return self.decode(latent)
        if latent.ndim == 4:
            return self.decode(latent[frame_indices(latent.shape[0], stride)])
        frames = self.decode(latent)
        return frames[frame_indices(frames.shape[0], stride)]

    def approximate_decode(self, latent: torch.Tensor, *, upscale: bool = True) -> torch.Tensor:
        """A cheap preview without the VAE: ComfyUI's linear latent-to-RGB factors.

        The same projection as ComfyUI's ``Latent2RGB`` sampler previews
        (``latent_format.latent_rgb_factors`` and ``latent_rgb_factors_bias``, on
        the model-space latent), mapped from -1..1 to 0..1 and, with
        ``upscale``, resized (bilinear) to the VAE's output size, else left at
        the latent's size (as ComfyUI's previews are). One frame per latent frame: a Wan
        latent of ``(L - 1) / 4 + 1`` frames gives that many images, not L.
        """
        inner = self.model.model
        fmt = inner.latent_format
        if getattr(fmt, "latent_rgb_factors", None) is None:
            raise ChunkwiseError(
                f"the model's latent format {type(fmt).__name__} has no latent_rgb_factors, so no approximate "
                "preview can be made; use preview_decode='vae'"
            )
        x = inner.process_latent_in(latent.to("cpu", torch.float32))
        if getattr(fmt, "latent_rgb_factors_reshape", None) is not None:
            x = fmt.latent_rgb_factors_reshape(x)
        if x.ndim == 5:  # [B, C, t, h, w] -> [B * t, C, h, w]
            x = x.movedim(2, 1).reshape((-1,) + tuple(x.shape[1:2]) + tuple(x.shape[-2:]))
        factors = torch.tensor(fmt.latent_rgb_factors, dtype=torch.float32).transpose(0, 1)
        bias = getattr(fmt, "latent_rgb_factors_bias", None)
        bias = torch.tensor(bias, dtype=torch.float32) if bias is not None else None
        rgb = torch.nn.functional.linear(x.movedim(1, -1), factors, bias=bias)  # [N, h, w, 3]
        if not upscale:
            return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0)
        scale = int(self.vae.spacial_compression_decode())
        size = (latent.shape[-2] * scale, latent.shape[-1] * scale)
        rgb = torch.nn.functional.interpolate(rgb.movedim(-1, 1), size=size, mode="bilinear", align_corners=False)
        return ((rgb.movedim(1, -1) + 1.0) / 2.0).clamp(0.0, 1.0)

    # 4. Batched candidates -----------------------------------------------

    def sample_batch(
        self,
        cond: ComfyCond,
        noises: list[torch.Tensor],
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resumes: Optional[list[SampleResult]] = None,
        callback: Optional[StepCallback] = None,
        seeds: Optional[list[int]] = None,
    ) -> list[SampleResult]:
        """:meth:`sample` for several candidates, stacked along the batch dimension where the family allows.

        Results equal sequential :meth:`sample` calls to float tolerance (the
        batched kernels may round differently). Wan stacks candidates along the
        batch dimension, SVD as stacked videos (see :meth:`_frames_batch_model`).
        Falls back to one call per candidate for samplers that draw noise while
        sampling (one seed per call) and for SVD models with pre/post-cfg functions.
        On out-of-memory the batch is halved and retried, down to single
        candidates; the size that fit is kept in :attr:`batch_limit` for later
        calls. NFE counts per candidate, as sequential calls would.
        """
        count = len(noises)
        seeds = list(seeds) if seeds is not None else [noise_seed(n) for n in noises]
        resumes = list(resumes) if resumes is not None else [None] * count
        if len(seeds) != count or len(resumes) != count:
            raise ChunkwiseError(
                f"sample_batch needs one seed and one resume (or None) per noise, got {count} noises, "
                f"{len(seeds)} seeds and {len(resumes)} resumes"
            )
        if count == 0:
            return []
        if not self.can_batch():
            return [
                self.sample(cond, n, steps=steps, start_step=start_step, end_step=end_step, resume=r,
                            callback=callback, seed=s)
                for n, r, s in zip(noises, resumes, seeds, strict=True)
            ]
        def restore(saved) -> None:
            self._counter.count = saved

        results, self.batch_limit = run_in_batches(
            count, self.batch_limit,
            lambda i, n: self._sample_stacked(cond, noises[i : i + n], resumes[i : i + n], steps=steps,
                                              start_step=start_step, end_step=end_step, callback=callback,
                                              seed=seeds[i]),
            snapshot=lambda: self._counter.count, restore=restore,
            free=comfy.model_management.soft_empty_cache, out_of_memory=is_out_of_memory,
        )
        return results

    def can_batch(self) -> bool:
        """Whether candidates can share one sampler call with this family and sampler.

        Not for samplers that draw noise while sampling (one seed per call), and not for
        frames-in-batch families (SVD) whose model carries pre- or post-cfg functions: those
        see the whole stacked batch and may depend on a frame's position in it.
        """
        if not getattr(self.family, "batches_candidates", False) or draws_noise(self.sampler_name):
            return False
        if getattr(self.family, "frames_in_batch", False):
            options = self.model.model_options
            return not (options.get("sampler_pre_cfg_function") or options.get("sampler_post_cfg_function"))
        return True

    def _frames_batch_model(self, candidates: int, frames: int):
        """A clone of the model that samples ``candidates`` stacked videos of ``frames`` frames each.

        The UNet wrapper sets ``num_video_frames`` back to ``frames`` (ComfyUI sets it to the batch size)
        and chains to the wrapper already there (the NFE counter, a user's); a cfg function runs per
        candidate's slice of the batch, so a per-frame ramp restarts for each candidate.
        """
        model = self.model.clone()
        previous = self.model.model_options.get("model_function_wrapper")

        def frames_wrapper(apply_model, args):
            args = {**args, "c": {**args["c"], "num_video_frames": frames}}
            if previous is not None:
                return previous(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])

        model.set_model_unet_function_wrapper(frames_wrapper)
        cfg_function = self.model.model_options.get("sampler_cfg_function")
        if cfg_function is not None:
            total = candidates * frames

            def per_candidate_cfg(args):
                parts = []
                for b in range(candidates):
                    part = {key: value[b * frames : (b + 1) * frames]
                            if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == total else value
                            for key, value in args.items()}
                    parts.append(cfg_function(part))
                return torch.cat(parts)

            model.model_options["sampler_cfg_function"] = per_candidate_cfg
        return model

    def _sample_stacked(self, cond, noises, resumes, *, steps, start_step, end_step, callback, seed):
        if len(noises) == 1:
            return [self.sample(cond, noises[0], steps=steps, start_step=start_step, end_step=end_step,
                                resume=resumes[0], callback=callback, seed=seed)]
        size = len(noises)
        latent = dict(cond.latent)
        latent["samples"] = cond.latent["samples"].repeat((size,) + (1,) * (cond.latent["samples"].ndim - 1))
        resumed = [r is not None for r in resumes]
        if any(resumed) and not all(resumed):
            raise ChunkwiseError("sample_batch needs resumes for all candidates of a batch or for none")
        if all(resumed):
            # Each candidate gets exactly what sample() would: its corrected noise or its own state.
            one = ComfyCond(cond.positive, cond.negative, cond.latent)
            staged = [self._resume_input(one, r, n, steps, start_step) for n, r in zip(noises, resumes, strict=True)]
            noise = torch.cat([n for n, _ in staged])
            resume_latent = torch.cat([x for _, x in staged]) if staged[0][1] is not None else None
        else:
            noise, resume_latent = torch.cat(noises), None
        end = steps if end_step is None else end_step
        per = int(cond.latent["samples"].shape[0])  # 1 (Wan), or the frames of one candidate (SVD)
        model = self._frames_batch_model(size, per) if getattr(self.family, "frames_in_batch", False) else self.model
        before = self._counter.count
        self._counter.new_window()
        out, x0 = self._sample_experts(
            model, noise, ComfyCond(cond.positive, cond.negative, latent), steps=steps, start_step=start_step,
            end_step=end, resume_latent=resume_latent, callback=callback, seed=seed,
        )
        # One batched evaluation did the work of ``size``: count it per candidate.
        self._counter.count = before + (self._counter.count - before) * size
        comfy.model_management.soft_empty_cache()
        finished = end >= steps
        return [
            SampleResult(latent=out[b * per : (b + 1) * per],
                         x0=out[b * per : (b + 1) * per] if finished else x0[b * per : (b + 1) * per], steps=steps,
                         start_step=start_step, end_step=end)
            for b in range(size)
        ]

    def _resume_input(self, cond, resume, noise, steps, start_step):
        """``(noise, resume_latent)`` that continue ``resume`` at ``start_step``: its latent with noise off, or
        for a ``noise_mask`` latent the clean latent with the :meth:`corrected_noise`."""
        if resume.steps != steps or resume.end_step != start_step:
            raise ChunkwiseError(
                f"resume must come from the same {steps}-step schedule and end at step {start_step}, got a result "
                f"of a {resume.steps}-step schedule ending at step {resume.end_step}; resume the matching preview"
            )
        if self.sampler_name not in EXACT_RESUME_SAMPLERS and not self._warned_resume:
            self._warned_resume = True
            log.info(
                "chunkwise: resuming with sampler %r is valid but not the exact trajectory of a full run "
                "(exact for %s)", self.sampler_name, ", ".join(sorted(EXACT_RESUME_SAMPLERS))
            )
        if "noise_mask" in cond.latent:
            return self.corrected_noise(cond, resume, noise), None
        return torch.zeros_like(resume.latent, device="cpu"), resume.latent


NOISE_DRAWING_SAMPLERS = frozenset({"ddpm", "lcm", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece",
                                    "restart"})


def draws_noise(sampler_name: str) -> bool:
    """Samplers that draw noise while sampling (one seed per call), so candidates cannot share a call."""
    return "ancestral" in sampler_name or "sde" in sampler_name or sampler_name in NOISE_DRAWING_SAMPLERS


def is_out_of_memory(error: BaseException) -> bool:
    """torch's out-of-memory error, or the one ComfyUI's model management names for this device."""
    if is_torch_out_of_memory(error):
        return True
    oom = getattr(comfy.model_management, "OOM_EXCEPTION", None)
    return oom is not None and oom is not Exception and isinstance(error, oom)


__all__ = [
    "ComfyCond",
    "ComfyI2V",
    "NFECounter",
    "SVDFamily",
    "WanFamily",
    "count_nfe",
    "decode",
    "draws_noise",
    "is_out_of_memory",
    "noise_seed",
    "sample_window",
]
