"""The former single-module host, kept as an import path: the code lives in nodes/host/ (the denoiser and
its pieces) and nodes/families/ (the family bindings)."""

from __future__ import annotations

from .families import SVDFamily, WanFamily
from .host import (
    ComfyCond,
    ComfyI2V,
    NFECounter,
    count_nfe,
    decode,
    draws_noise,
    is_out_of_memory,
    masked_resume_noise,
    noise_seed,
    sample_window,
    schedule_sigmas,
)

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
    "masked_resume_noise",
    "noise_seed",
    "sample_window",
    "schedule_sigmas",
]
