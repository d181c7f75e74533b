"""Several candidates in one sampler call: which families and samplers allow it, how the latent and the
model are stacked (along the batch dimension, or SVD's frames-in-batch videos), and the out-of-memory
halving through search/batching.py's ``run_in_batches``."""

from __future__ import annotations

from typing import Callable, Optional

import comfy.model_management
import torch

from ...search.batching import is_out_of_memory as is_torch_out_of_memory
from ...search.batching import run_in_batches
from ...search.protocols import SampleResult

BATCH = "batch"
"""Candidates repeat the latent along its batch dimension (video latents ``[B, C, t, h, w]``)."""
FRAMES = "frames"
"""The latent's batch dimension is the chunk's frames (SVD): candidates stack as videos, frame-major
(``[m*T, ...]``), on a model clone that keeps ``num_video_frames`` at T (see :func:`frames_batch_model`)."""
NONE = "none"
"""One candidate per sampler call."""
BATCH_RULES = (BATCH, FRAMES, NONE)

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


def batch_rule(family) -> str:
    """The family's candidate batching rule (``family.spec.batch``); none without a spec."""
    return getattr(getattr(family, "spec", None), "batch", NONE)


def can_batch(model, family, sampler_name: str) -> bool:
    """Whether candidates can share one sampler call with this family and sampler.

    Not for samplers that draw noise while sampling (one seed per call), and not for
    frames-in-batch families (SVD) whose model carries pre- or post-cfg functions: those
    see the whole stacked batch and may depend on a frame's position in it.
    """
    rule = batch_rule(family)
    if rule == NONE or draws_noise(sampler_name):
        return False
    if rule == FRAMES:
        options = model.model_options
        return not (options.get("sampler_pre_cfg_function") or options.get("sampler_post_cfg_function"))
    return True


def frames_batch_model(model, candidates: int, frames: int):
    """A clone of ``model`` that samples ``candidates`` stacked videos of ``frames`` frames each.

    The UNet wrapper sets ``num_video_frames`` back to ``frames`` (ComfyUI sets it to the batch size)
    and chains to the wrapper already there (the NFE counter, a user's); a cfg function runs per
    candidate's slice of the batch, so a per-frame ramp restarts for each candidate.
    """
    clone = model.clone()
    previous = model.model_options.get("model_function_wrapper")

    def frames_wrapper(apply_model, args):
        args = {**args, "c": {**args["c"], "num_video_frames": frames}}
        if previous is not None:
            return previous(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(frames_wrapper)
    cfg_function = model.model_options.get("sampler_cfg_function")
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

        clone.model_options["sampler_cfg_function"] = per_candidate_cfg
    return clone


def stacked_model(model, family, candidates: int, per: int):
    """The model to sample ``candidates`` stacked latents of batch ``per`` with."""
    return frames_batch_model(model, candidates, per) if batch_rule(family) == FRAMES else model


def stack_latent(latent: dict, size: int) -> dict:
    """The LATENT dict with ``samples`` repeated ``size`` times along the batch dimension (mask kept)."""
    stacked = dict(latent)
    samples = latent["samples"]
    stacked["samples"] = samples.repeat((size,) + (1,) * (samples.ndim - 1))
    return stacked


def split_results(out: torch.Tensor, x0: torch.Tensor, size: int, per: int, *, steps: int, start_step: int,
                  end_step: int) -> list[SampleResult]:
    """One :class:`SampleResult` per candidate from a stacked window's latent and x0."""
    finished = end_step >= steps
    return [
        SampleResult(latent=out[b * per : (b + 1) * per],
                     x0=out[b * per : (b + 1) * per] if finished else x0[b * per : (b + 1) * per], steps=steps,
                     start_step=start_step, end_step=end_step)
        for b in range(size)
    ]


def sample_in_batches(count: int, limit: Optional[int], run: Callable[[int, int], list], counter) -> tuple[list,
                                                                                                          Optional[int]]:
    """``run(start, size)`` over ``count`` candidates in batches of at most ``limit``, halved on out-of-memory.

    A failed batch's evaluations are taken off ``counter`` again and ComfyUI's cache is emptied
    before the retry. Returns the results and the size that fit (see ``run_in_batches``).
    """

    def restore(saved) -> None:
        counter.count = saved

    return run_in_batches(count, limit, run, snapshot=lambda: counter.count, restore=restore,
                          free=comfy.model_management.soft_empty_cache, out_of_memory=is_out_of_memory)
