"""The autoregressive chunk loop (host-agnostic): chunk after chunk, each guided by the last frame of the one before.

Each chunk is one k-step noise search (:mod:`.chunk`, arXiv 2411.18668); the
loop validates the settings once, continues a resumable run folder, hands the
guide on (optionally colour-anchored to the input image), streams every chunk
into a sink and writes one report. This module also re-exports the engine's
public names, so ``from chunkwise.search.engine import ...`` keeps working.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch

from .chunk import ChunkOutcome, ChunkSearch, Hooks, LocalExecutor, StepProgress, search_chunk, select_best
from .colour import anchor_colours
from .errors import check_image
from .noise import chunk_seed
from .protocols import FrameSink, I2VDenoiser, MemorySink, SampleResult, Scorer
from .report import build_report
from .settings import PREVIEW_MODES, LoopSettings, SearchSettings, naive_settings


@dataclass
class RunResult:
    """``report`` covers every chunk of the run, restored ones included; ``restored``
    counts the chunks a resumable sink already had; ``last_frame`` is the exact
    float guide the next chunk would start from."""

    report: dict
    sink: FrameSink
    last_frame: torch.Tensor
    restored: int = 0

    def video(self) -> torch.Tensor:
        return self.sink.video()


def run_fingerprint(
    settings: LoopSettings, scorer_name: str, image: torch.Tensor, denoiser: object, extra: Optional[dict] = None
) -> dict:
    """What must match for a run folder to be continued: everything that changes the frames.

    The chunk count is left out on purpose: chunk i does not depend on how many
    chunks follow, so a finished run can be extended by asking for more chunks.
    """
    from .sinks import tensor_digest

    loop = asdict(settings)
    loop.pop("chunks")
    describe = getattr(denoiser, "describe", None)
    return {
        "settings": loop,
        "scorer": scorer_name if settings.search.searching else "none",
        "denoiser": describe() if callable(describe) else type(denoiser).__name__,
        "image": tensor_digest(image),
        **(extra or {}),
    }


def run_chunks(
    denoiser: Optional[I2VDenoiser],
    scorer: Optional[Scorer],
    image: torch.Tensor,
    settings: LoopSettings,
    *,
    sink: Optional[FrameSink] = None,
    hooks: Optional[Hooks] = None,
    clock: Callable[[], float] = time.perf_counter,
    scorer_name: Optional[str] = None,
    fingerprint: Optional[dict] = None,
    executor=None,
) -> RunResult:
    """Generate ``settings.chunks`` chunks, each guided by the previous chunk's last frame.

    With a resumable sink (one with ``open_run``, e.g. ``search.sinks.DiskSink``)
    the chunks it already holds are skipped and the run continues from the
    exact guide frame it stored: chunk seeds depend only on (seed, index), so
    the result is bit-identical to an uninterrupted run. ``fingerprint`` adds
    host facts (model identity, conditioning) to what must match for that.
    An exception mid-chunk leaves every finished chunk in the sink.

    ``executor`` runs each chunk's model work elsewhere (``chunkwise.scale``: the
    candidates of a chunk over the workers of a Ray cluster); ``denoiser`` and
    ``scorer`` are then None, the executor stands in for them in the fingerprint,
    and the run is the same as on one process.
    """
    # 1. Check everything before any model work: the settings (once per run), the input image, the parts.
    settings.validate()
    search = settings.search
    image = check_image(image, "input image")
    local = executor is None
    executor = LocalExecutor(denoiser, scorer) if local else executor
    executor.check(search)
    hooks = hooks or Hooks()
    sink = sink if sink is not None else MemorySink()
    scorer_name = scorer_name or executor.scorer_name()
    anchor = image if settings.use_anchor else None

    # 2. A resumable sink reports what is already finished; skip it.
    records: list = []
    guide, frames_total = image, 0
    resumable = callable(getattr(sink, "open_run", None))
    if resumable:
        made_by = denoiser if local else executor
        point = sink.open_run(run_fingerprint(settings, scorer_name, image, made_by, fingerprint), settings.chunks)
        if point is not None:
            records, guide, frames_total = list(point.records), point.guide, point.frames
    restored = len(records)
    per_chunk = search.nfe_per_chunk()
    progress = StepProgress(settings.chunks * per_chunk, hooks)
    progress.jump_to(restored * per_chunk)

    # 3. Chunk after chunk; the last frame of one guides the next.
    t0 = clock()
    for i in range(restored, settings.chunks):
        hooks.check_interrupt()
        outcome = ChunkSearch(denoiser, scorer, search, chunk_seed(settings.seed, i), index=i, anchor=anchor,
                              hooks=hooks, clock=clock, progress=progress, executor=executor).run(guide)
        frames = outcome.frames
        if settings.colour_anchor > 0.0:
            # 3a. Pull the chunk's colours back to the input image before its last frame guides the next.
            frames = anchor_colours(frames, image, settings.colour_anchor, settings.colour_method)
        # 3b. A standalone contiguous copy: it does not pin the whole chunk in memory, and a guide read back
        # from a run folder (always contiguous) gives bit-identical reductions downstream.
        guide = frames[-1:].clone(memory_format=torch.contiguous_format)
        if settings.drop_first_frame and i > 0:
            frames = frames[1:]
        # 3c. Into the sink as soon as it is done (with what a resumed run needs, for a resumable one).
        if resumable:
            sink.write_chunk(i, frames, record=outcome.record.to_json(), guide=guide)
        else:
            sink.write_chunk(i, frames)
        frames_total += frames.shape[0]
        records.append(outcome.record)
        hooks.on_chunk(outcome.record, frames)
        del outcome, frames
    sink.close()

    # 4. One report for the run, restored chunks included.
    report = build_report(settings, scorer_name, records, frames=frames_total, seconds=clock() - t0,
                          restored=restored)
    write_report = getattr(sink, "write_report", None)
    if callable(write_report):
        write_report(report)
    return RunResult(report=report, sink=sink, last_frame=guide, restored=restored)


__all__ = [
    "ChunkOutcome",
    "Hooks",
    "LoopSettings",
    "PREVIEW_MODES",
    "RunResult",
    "SampleResult",
    "SearchSettings",
    "naive_settings",
    "run_chunks",
    "run_fingerprint",
    "search_chunk",
    "select_best",
]
