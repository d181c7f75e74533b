"""The ComfyUI host: drives a ComfyUI MODEL + VAE through the search/ denoiser protocol.

One concern per module:

- :mod:`.window`: one window ``[start_step, end_step)`` of a stock KSampler schedule, its sigmas,
  the resume noise for ``noise_mask`` latents, the VAE decode;
- :mod:`.nfe`: counting model evaluations on a model clone;
- :mod:`.denoiser`: :class:`ComfyI2V` (conditioning through a family binding, sampling, resume, two
  experts) and :class:`ComfyCond`;
- :mod:`.batching`: several candidates in one sampler call, out-of-memory halving;
- :mod:`.preview`: strided and approximate preview decodes (ComfyUI's ``latent_preview``);
- :mod:`.checks`: the argument checks of ``sample`` / ``sample_batch``.

Model families are declared in nodes/families/, never here.
"""

from __future__ import annotations

from .batching import draws_noise, is_out_of_memory
from .denoiser import ComfyCond, ComfyI2V
from .nfe import NFECounter, count_nfe
from .window import decode, masked_resume_noise, noise_seed, sample_window, schedule_sigmas

__all__ = [
    "ComfyCond",
    "ComfyI2V",
    "NFECounter",
    "count_nfe",
    "decode",
    "draws_noise",
    "is_out_of_memory",
    "masked_resume_noise",
    "noise_seed",
    "sample_window",
    "schedule_sigmas",
]
