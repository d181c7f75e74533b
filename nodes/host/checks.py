"""The argument checks of ``ComfyI2V.sample`` / ``sample_batch``: the window and the seeds and resumes per
candidate (shared with every host, from search/protocols.py), the resume and a stacked batch's resumes."""

from __future__ import annotations

from typing import Optional

from ...search.errors import ChunkwiseError
from ...search.protocols import SampleResult, batch_arguments, check_window


def check_resume(resume: SampleResult, steps: int, start_step: int) -> None:
    """``resume`` comes from the same schedule and ends where this window starts."""
    if resume.steps != steps or resume.end_step != start_step:
        raise ChunkwiseError(
            f"resume must come from the same {steps}-step schedule and end at step {start_step}, got a result "
            f"of a {resume.steps}-step schedule ending at step {resume.end_step}; resume the matching preview"
        )


def all_or_none_resumed(resumes: list[Optional[SampleResult]]) -> bool:
    """Whether a stacked batch resumes: every candidate or none (a batch shares one window)."""
    resumed = [r is not None for r in resumes]
    if any(resumed) and not all(resumed):
        raise ChunkwiseError("sample_batch needs resumes for all candidates of a batch or for none")
    return all(resumed)


__all__ = ["all_or_none_resumed", "batch_arguments", "check_resume", "check_window"]
