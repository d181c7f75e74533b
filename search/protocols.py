"""The three protocols every host implements: denoiser, scorer, frame sink.

Frames are always ``[T, H, W, C]`` float tensors in 0..1 (ComfyUI's IMAGE
layout), C = 3. A guide image is one frame, ``[1, H, W, 3]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

import torch

StepCallback = Callable[[int, torch.Tensor], None]
"""Called by a denoiser after each sampler step with (step index, x0 prediction)."""


@dataclass
class SampleResult:
    """What a denoiser returns from a window ``[start_step, end_step)`` of a schedule.

    ``latent`` is the sampler state after the last step taken: the finished
    latent when ``end_step == steps``, a partially denoised one otherwise.
    ``x0`` is the model's prediction of the clean latent at the last step taken
    (equal to ``latent`` for a finished run). ``state`` is host-specific data a
    later call needs to resume (for example a clean reference latent).
    """

    latent: torch.Tensor
    x0: torch.Tensor
    steps: int
    start_step: int
    end_step: int
    state: Any = None

    @property
    def finished(self) -> bool:
        return self.end_step >= self.steps


@runtime_checkable
class I2VDenoiser(Protocol):
    """An image-to-video model bound to its sampler settings.

    ``nfe`` counts every model evaluation the denoiser performed (a batched
    cond/uncond pair is one evaluation; one evaluation per sampler step for
    first-order samplers). The engine reads the difference around each call.
    """

    nfe: int

    def condition(self, guide: torch.Tensor) -> Any:
        """Condition on a guide frame ``[1, H, W, 3]`` once per chunk; reused by every candidate."""

    def latent_template(self, cond: Any) -> torch.Tensor:
        """A tensor of one candidate's latent shape and dtype (the noise shape)."""

    def sample(
        self,
        cond: Any,
        noise: torch.Tensor,
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resume: Optional[SampleResult] = None,
        callback: Optional[StepCallback] = None,
        seed: Optional[int] = None,
    ) -> SampleResult:
        """Sample steps ``[start_step, end_step)`` of a ``steps``-step schedule from ``noise``.

        With ``resume`` (a result of an earlier call on the same schedule that
        ended at ``start_step``), continue from its state instead of from noise.
        ``seed`` is the candidate's seed: samplers that inject noise at every
        step (ancestral, SDE) seed that noise with it, so runs reproduce.
        """

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (or x0 prediction) -> frames ``[T, H, W, 3]`` in 0..1."""


@dataclass
class CandidateScore:
    """One candidate's score and the per-frame scores it was made from."""

    score: float
    frame_scores: list[float] = field(default_factory=list)


class ScoreContext(Protocol):
    def score(self, previews: Sequence[torch.Tensor]) -> list[CandidateScore]:
        """Score each preview ``[T, H, W, 3]``; one result per preview, in order."""


class Scorer:
    """Base class of verifiers: higher scores are better.

    ``prepare`` does the per-chunk work (encode the guide and anchor once);
    the returned context scores any number of candidates. ``score`` is the
    one-shot convenience.
    """

    name: str = "scorer"

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> ScoreContext:
        raise NotImplementedError

    def score(
        self,
        guide: torch.Tensor,
        previews: Sequence[torch.Tensor],
        anchor: Optional[torch.Tensor] = None,
    ) -> list[CandidateScore]:
        return self.prepare(guide, anchor).score(previews)

    def describe(self) -> str:
        """A short name with settings, recorded in the search report."""
        return self.name


class FrameSink(Protocol):
    """Receives each finished chunk as soon as it is decoded."""

    def write_chunk(self, index: int, frames: torch.Tensor) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """The default sink: keeps every chunk's frames in memory."""

    def __init__(self) -> None:
        self.chunks: list[torch.Tensor] = []

    def write_chunk(self, index: int, frames: torch.Tensor) -> None:
        if index != len(self.chunks):
            raise ValueError(f"chunk {index} arrived out of order: expected chunk {len(self.chunks)}")
        self.chunks.append(frames)

    def close(self) -> None:
        pass

    def video(self) -> torch.Tensor:
        if not self.chunks:
            raise ValueError("no chunk was written: nothing to concatenate")
        return torch.cat(self.chunks, dim=0)
