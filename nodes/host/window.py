"""One window ``[start_step, end_step)`` of a stock KSampler schedule, its sigmas, the resume noise for
``noise_mask`` latents, and the VAE decode: the low-level pieces the denoiser and the per-chunk nodes share.

Nothing here names a device or a dtype or draws noise: ComfyUI's sampler and VAE load, cast and offload
their own models, and the noise comes from the caller (drawn on the CPU as ``comfy.sample.prepare_noise``).
"""

from __future__ import annotations

import zlib
from typing import Any, Optional

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import torch

from ...search.errors import ChunkwiseError
from ...search.noise import SEED_MODULUS
from ...search.protocols import StepCallback

EXACT_RESUME_SAMPLERS = frozenset({"euler", "heun", "dpm_2"})
"""Samplers whose steps depend only on the current state and sigma: a resumed
window continues the same trajectory. Multistep samplers lose their history at
the seam; ancestral and SDE samplers draw fresh noise per call."""


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
