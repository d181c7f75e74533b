"""The three protocols every host implements: denoiser, scorer, frame sink.

Frames are always ``[T, H, W, C]`` float tensors in 0..1 (ComfyUI's IMAGE
layout), C = 3. A guide image is one frame, ``[1, H, W, 3]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

import torch

from .errors import ChunkwiseError

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


def check_window(steps: int, start_step: int, end_step: Optional[int]) -> int:
    """The end of the window ``[start_step, end_step)`` of a ``steps``-step schedule (``None``: the last step).

    What every host's ``sample()`` and ``sample_batch()`` check first: ``steps`` an
    integer >= 1 and ``0 <= start_step < end_step <= steps``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ChunkwiseError(f"steps must be an integer >= 1, got {steps!r}; use the schedule's step count")
    end = steps if end_step is None else end_step
    if not 0 <= start_step < end <= steps:
        raise ChunkwiseError(
            f"the window must satisfy 0 <= start_step < end_step <= steps, got start_step={start_step}, "
            f"end_step={end}, steps={steps}; sample at least one step of the schedule"
        )
    return end


def batch_arguments(
    noises: Sequence[torch.Tensor],
    seeds: Optional[Sequence],
    resumes: Optional[Sequence],
    seed_of: Callable[[torch.Tensor], Any],
) -> tuple[list, list]:
    """``sample_batch``'s ``(seeds, resumes)``, one of each per noise.

    Missing seeds come from ``seed_of(noise)``, missing resumes are None; given
    lists must have one entry per noise.
    """
    count = len(noises)
    seeds = list(seeds) if seeds is not None else [seed_of(n) for n in noises]
    resumes = list(resumes) if resumes is not None else [None] * count
    if len(seeds) != count or len(resumes) != count:
        raise ChunkwiseError(
            f"sample_batch needs one seed and one resume (or None) per noise, got {count} noises, "
            f"{len(seeds)} seeds and {len(resumes)} resumes"
        )
    return seeds, resumes


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
    """Receives each finished chunk as soon as it is decoded.

    ``write_chunk(index, frames)`` is the whole required protocol. A sink that
    also defines ``open_run(fingerprint, chunks)`` is *resumable* (see
    ``search.sinks.DiskSink``): the engine then passes ``record`` (the chunk's
    report record, a JSON dict) and ``guide`` (the exact float frame that
    guides the next chunk) as keywords, so the sink can store what a later
    run needs to continue bit-identically.
    """

    def write_chunk(
        self, index: int, frames: torch.Tensor, *, record: Optional[dict] = None, guide: Optional[torch.Tensor] = None
    ) -> None: ...

    def close(self) -> None: ...


@dataclass
class ResumePoint:
    """What a resumable sink found already finished: the first ``len(records)`` chunks.

    ``records`` are those chunks' report records, in order; ``guide`` is the
    exact float frame ``[1, H, W, 3]`` that guides chunk ``len(records)``;
    ``frames`` counts the frames already written.
    """

    records: list
    guide: torch.Tensor
    frames: int


def thumbnail(frame: torch.Tensor, size: int) -> torch.Tensor:
    """One frame ``[H, W, 3]`` -> ``[size', size'', 3]`` with its longer side at most ``size``."""
    h, w = int(frame.shape[0]), int(frame.shape[1])
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    if (th, tw) == (h, w):
        return frame.clone()
    x = frame.permute(2, 0, 1).unsqueeze(0).float()
    x = torch.nn.functional.interpolate(x, size=(th, tw), mode="area")
    return x[0].permute(1, 2, 0).to(frame.dtype)


MEMORY_KEEP = ("all", "last")


class MemorySink:
    """The default sink: keeps chunks' frames in memory.

    ``keep="all"`` keeps every chunk (the whole video); ``keep="last"`` keeps
    only the latest chunk plus a small thumbnail of each chunk's last frame
    (``overview()``), so memory does not grow with the chunk count.
    """

    def __init__(self, keep: str = "all", overview_size: int = 256) -> None:
        if keep not in MEMORY_KEEP:
            raise ChunkwiseError(f"keep must be one of {MEMORY_KEEP}, got {keep!r}; use 'all' or 'last'")
        self.keep = keep
        self.overview_size = overview_size
        self.chunks: list[torch.Tensor] = []
        self.thumbnails: list[torch.Tensor] = []
        self.count = 0

    def write_chunk(
        self, index: int, frames: torch.Tensor, *, record: Optional[dict] = None, guide: Optional[torch.Tensor] = None
    ) -> None:
        if index != self.count:
            raise ChunkwiseError(f"chunk {index} arrived out of order: expected chunk {self.count}; "
                                 "write chunks 0, 1, 2 ... in order")
        self.count += 1
        if self.keep == "last":
            self.chunks = [frames]
        else:
            self.chunks.append(frames)
        self.thumbnails.append(thumbnail(frames[-1], self.overview_size))

    def close(self) -> None:
        pass

    def video(self) -> torch.Tensor:
        """Every kept chunk, concatenated (the whole video with ``keep="all"``, else the last chunk)."""
        if not self.chunks:
            raise ChunkwiseError("no chunk was written: nothing to concatenate; run at least one chunk first")
        return torch.cat(self.chunks, dim=0)

    def last_chunk(self) -> torch.Tensor:
        if not self.chunks:
            raise ChunkwiseError("no chunk was written: there is no last chunk; run at least one chunk first")
        return self.chunks[-1]

    def overview(self) -> torch.Tensor:
        """Each chunk's last frame, downscaled: ``[chunks, h, w, 3]``."""
        if not self.thumbnails:
            raise ChunkwiseError("no chunk was written: the overview is empty; run at least one chunk first")
        return torch.stack(self.thumbnails)
