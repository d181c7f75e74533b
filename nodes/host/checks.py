"""The argument checks of ``ComfyI2V.sample`` / ``sample_batch``: the window, the resume, one seed and
one resume per candidate. Kept together so they can move to search/ as shared helpers in one step."""

from __future__ import annotations

from typing import Optional

import torch

from ...search.errors import ChunkwiseError
from ...search.protocols import SampleResult


def check_window(steps, start_step: int, end_step: int) -> None:
    """A window ``[start_step, end_step)`` of a schedule of ``steps >= 1`` steps, not empty."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ChunkwiseError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 <= start_step < end_step <= steps:
        raise ChunkwiseError(
            f"the window must satisfy 0 <= start_step < end_step <= steps, got start_step={start_step}, "
            f"end_step={end_step}, steps={steps}"
        )


def check_resume(resume: SampleResult, steps: int, start_step: int) -> None:
    """``resume`` comes from the same schedule and ends where this window starts."""
    if resume.steps != steps or resume.end_step != start_step:
        raise ChunkwiseError(
            f"resume must come from the same {steps}-step schedule and end at step {start_step}, got a result "
            f"of a {resume.steps}-step schedule ending at step {resume.end_step}; resume the matching preview"
        )


def batch_arguments(noises: list[torch.Tensor], seeds: Optional[list[int]],
                    resumes: Optional[list[Optional[SampleResult]]], default_seed) -> tuple[list, list]:
    """One seed (``default_seed(noise)`` when none are given) and one resume (or None) per noise."""
    count = len(noises)
    seeds = list(seeds) if seeds is not None else [default_seed(n) for n in noises]
    resumes = list(resumes) if resumes is not None else [None] * count
    if len(seeds) != count or len(resumes) != count:
        raise ChunkwiseError(
            f"sample_batch needs one seed and one resume (or None) per noise, got {count} noises, "
            f"{len(seeds)} seeds and {len(resumes)} resumes"
        )
    return seeds, resumes


def all_or_none_resumed(resumes: list[Optional[SampleResult]]) -> bool:
    """Whether a stacked batch resumes: every candidate or none (a batch shares one window)."""
    resumed = [r is not None for r in resumes]
    if any(resumed) and not all(resumed):
        raise ChunkwiseError("sample_batch needs resumes for all candidates of a batch or for none")
    return all(resumed)
