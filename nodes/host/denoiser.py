"""The ComfyUI side of the denoiser protocol: MODEL + VAE + a family binding -> ``I2VDenoiser``.

A family (see nodes/families/) is anything with ``condition(vae, guide) -> (positive, negative,
LATENT dict)`` (it calls the family's stock ComfyUI node), ``patch_model(model)``, ``describe()`` and a
``spec`` whose ``batch`` (see :mod:`.batching`) and ``noise_mask`` this module reads. The denoiser never
knows which family it drives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import comfy.model_management
import comfy.sample
import comfy.samplers
import torch

from ...search.adaptive import frame_indices
from ...search.errors import ChunkwiseError, check_image
from ...search.protocols import SampleResult, StepCallback
from . import batching
from .checks import all_or_none_resumed, batch_arguments, check_resume, check_window
from .nfe import count_nfe
from .preview import ApproximatePreview, strided_decode
from .window import EXACT_RESUME_SAMPLERS, decode, masked_resume_noise, noise_seed, sample_window, schedule_sigmas

log = logging.getLogger("chunkwise")


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


def _check_sampler(sampler_name: str, scheduler: str) -> None:
    if sampler_name not in comfy.samplers.KSampler.SAMPLERS:
        raise ChunkwiseError(
            f"unknown sampler {sampler_name!r}; use one of ComfyUI's samplers, e.g. 'euler' "
            f"(all: {', '.join(comfy.samplers.KSampler.SAMPLERS)})"
        )
    if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
        raise ChunkwiseError(
            f"unknown scheduler {scheduler!r}; use one of {', '.join(comfy.samplers.KSampler.SCHEDULERS)}"
        )


def _check_experts(family, switch_step, schedule_steps) -> None:
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
    if getattr(getattr(family, "spec", None), "noise_mask", False):
        raise ChunkwiseError(
            f"two experts need a latent without a noise_mask, but {family.describe()} pins the start image under "
            "one (the low-noise expert continues the first one's latent); connect one model"
        )


class ComfyI2V:
    """A ComfyUI MODEL + VAE + family binding bound to sampler settings: an ``I2VDenoiser``.

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
        _check_sampler(sampler_name, scheduler)
        if vae is None and getattr(family, "needs_vae", True):
            raise ChunkwiseError("a VAE is needed to encode the guide and decode chunks, got None; connect a VAE")
        self.model, self._counter = count_nfe(family.patch_model(model))
        self.model_low_noise = None
        self.switch_step: Optional[int] = None
        if model_low_noise is not None:
            _check_experts(family, switch_step, schedule_steps)
            self.model_low_noise, _ = count_nfe(family.patch_model(model_low_noise), self._counter)
            self.switch_step = switch_step
        self.schedule_steps = schedule_steps
        self.vae = vae
        self.family = family
        self.sampler_name = sampler_name
        self.scheduler = scheduler
        self.cfg = float(cfg)
        self._warned_resume = False
        self._approximate = ApproximatePreview()
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
        cond = self.conditioned(*self.family.condition(self.vae, guide))
        comfy.model_management.soft_empty_cache()
        return cond

    def conditioned(self, positive, negative, latent: dict) -> ComfyCond:
        """Conditioning made upstream (a stock node's outputs) as this denoiser's :class:`ComfyCond`."""
        latent = dict(latent)
        latent["samples"] = comfy.sample.fix_empty_latent_channels(self.model, latent["samples"])
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
        check_window(steps, start_step, end)
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
        if finished:
            out = self._finish(cond, out)
        return SampleResult(
            latent=out, x0=out if finished else x0, steps=steps, start_step=start_step, end_step=end
        )

    def _finish(self, cond: ComfyCond, latent: torch.Tensor) -> torch.Tensor:
        """The family's post-sampling step on a finished latent (``finish_latent``; none for most families)."""
        finish = getattr(self.family, "finish_latent", None)
        return latent if finish is None else finish(cond.positive, latent)

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

    # 3. Resume -------------------------------------------------------------

    def corrected_noise(self, cond: ComfyCond, resume: SampleResult, noise: torch.Tensor) -> torch.Tensor:
        """Noise that restarts a ``noise_mask`` latent at ``sigma[k]`` exactly where ``resume`` left it
        (see :func:`masked_resume_noise`)."""
        sigma = self.sigmas(resume.steps)[resume.end_step]
        return masked_resume_noise(self.model, cond.latent, resume.latent, noise, sigma)

    def _resume_input(self, cond, resume, noise, steps, start_step):
        """``(noise, resume_latent)`` that continue ``resume`` at ``start_step``: its latent with noise off, or
        for a ``noise_mask`` latent the clean latent with the :meth:`corrected_noise`."""
        check_resume(resume, steps, start_step)
        if self.sampler_name not in EXACT_RESUME_SAMPLERS and not self._warned_resume:
            self._warned_resume = True
            log.info(
                "chunkwise: resuming with sampler %r is valid but not the exact trajectory of a full run "
                "(exact for %s)", self.sampler_name, ", ".join(sorted(EXACT_RESUME_SAMPLERS))
            )
        if "noise_mask" in cond.latent:
            return self.corrected_noise(cond, resume, noise), None
        return torch.zeros_like(resume.latent, device="cpu"), resume.latent

    # 4. Decoding ---------------------------------------------------------

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            raise ChunkwiseError("decoding needs a VAE, got None; connect the VAE that encoded the conditioning")
        frames = decode(self.vae, latent)
        self.frames_decoded += int(frames.shape[0])
        comfy.model_management.soft_empty_cache()
        return frames

    def preview_decode(self, latent: torch.Tensor, *, stride: int = 1, approximate: bool = False) -> torch.Tensor:
        """Frames to score a preview on: every ``stride``-th frame plus the last, optionally approximate.

        The VAE decodes only the chosen frames where its latent is per-frame (SVD), the whole clip
        for a video VAE (Wan; see :func:`strided_decode`); :attr:`frames_decoded` counts what the VAE
        really decoded. ``approximate`` skips the VAE: see :meth:`approximate_decode`.
        """
        if approximate:
            frames = self.approximate_decode(latent)
            return frames[frame_indices(frames.shape[0], stride)]
        return strided_decode(self.decode, latent, stride)

    def approximate_decode(self, latent: torch.Tensor, *, upscale: bool = True) -> torch.Tensor:
        """A cheap preview without the VAE, through ComfyUI's latent previewers (see :mod:`.preview`):
        one frame per latent frame (a Wan latent of ``(L - 1) / 4 + 1`` frames gives that many images,
        not L), in 0..1, resized (bilinear) to the VAE's output size with ``upscale``."""
        return self._approximate.decode(self.model, self.vae, latent, upscale=upscale)

    # 5. Batched candidates -----------------------------------------------

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
        batched kernels may round differently). The family's batch rule says how
        candidates stack (:mod:`.batching`: Wan along the batch dimension, SVD as
        stacked videos). Falls back to one call per candidate for samplers that draw
        noise while sampling (one seed per call) and for SVD models with pre/post-cfg
        functions. On out-of-memory the batch is halved and retried, down to single
        candidates; the size that fit is kept in :attr:`batch_limit` for later
        calls. NFE counts per candidate, as sequential calls would.
        """
        seeds, resumes = batch_arguments(noises, seeds, resumes, noise_seed)
        if not noises:
            return []
        if not self.can_batch():
            return [
                self.sample(cond, n, steps=steps, start_step=start_step, end_step=end_step, resume=r,
                            callback=callback, seed=s)
                for n, r, s in zip(noises, resumes, seeds, strict=True)
            ]
        results, self.batch_limit = batching.sample_in_batches(
            len(noises), self.batch_limit,
            lambda i, n: self._sample_stacked(cond, noises[i : i + n], resumes[i : i + n], steps=steps,
                                              start_step=start_step, end_step=end_step, callback=callback,
                                              seed=seeds[i]),
            self._counter,
        )
        return results

    def can_batch(self) -> bool:
        """Whether candidates can share one sampler call with this family and sampler (:func:`batching.can_batch`)."""
        return batching.can_batch(self.model, self.family, self.sampler_name)

    def _sample_stacked(self, cond, noises, resumes, *, steps, start_step, end_step, callback, seed):
        if len(noises) == 1:
            return [self.sample(cond, noises[0], steps=steps, start_step=start_step, end_step=end_step,
                                resume=resumes[0], callback=callback, seed=seed)]
        size = len(noises)
        if all_or_none_resumed(resumes):
            # Each candidate gets exactly what sample() would: its corrected noise or its own state.
            staged = [self._resume_input(cond, r, n, steps, start_step) for n, r in zip(noises, resumes, strict=True)]
            noise = torch.cat([n for n, _ in staged])
            resume_latent = torch.cat([x for _, x in staged]) if staged[0][1] is not None else None
        else:
            noise, resume_latent = torch.cat(noises), None
        end = steps if end_step is None else end_step
        per = int(cond.latent["samples"].shape[0])  # 1 (Wan), or the frames of one candidate (SVD)
        model = batching.stacked_model(self.model, self.family, size, per)
        stacked = ComfyCond(cond.positive, cond.negative, batching.stack_latent(cond.latent, size))
        before = self._counter.count
        self._counter.new_window()
        out, x0 = self._sample_experts(model, noise, stacked, steps=steps, start_step=start_step, end_step=end,
                                       resume_latent=resume_latent, callback=callback, seed=seed)
        # One batched evaluation did the work of ``size``: count it per candidate.
        self._counter.count = before + (self._counter.count - before) * size
        comfy.model_management.soft_empty_cache()
        results = batching.split_results(out, x0, size, per, steps=steps, start_step=start_step, end_step=end)
        if end >= steps:
            for r in results:
                r.latent = r.x0 = self._finish(cond, r.latent)
        return results
