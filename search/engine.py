"""k-step noise search and the autoregressive chunk loop (host-agnostic).

Per chunk (arXiv 2411.18668):

1. condition the model on the guide frame once;
2. draw m candidate noises from seeds seed + j;
3. denoise each for only k steps and decode a rough preview;
4. score each preview against the guide (and optionally the anchor);
5. fully denoise the best candidate (or resume it at step k in truncated mode);
6. the chunk's last frame guides the next chunk.

Cost per chunk: m*k + s model evaluations in ``short`` mode, m*k + (s - k)
in ``truncated`` mode with resume, s with search off (the naive baseline).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .adaptive import Rung, SearchChunkRecord, frame_indices, halving_preview_nfe, halving_rungs, keep_best
from .colour import anchor_colours, check_method, check_strength
from .errors import ChunkwiseError, check_finite, check_image, check_score, require_int
from .noise import MAX_CANDIDATES, candidate_seed, chunk_seed, make_noise
from .protocols import CandidateScore, FrameSink, I2VDenoiser, MemorySink, SampleResult, Scorer
from .report import ChunkRecord, build_report

PREVIEW_MODES = ("short", "truncated")
PREVIEW_DECODES = ("vae", "approx")


@dataclass(frozen=True)
class SearchSettings:
    """How each chunk's initial noise is chosen.

    ``candidates`` (m) noises are previewed with ``k`` steps each; ``steps``
    (s) is the full schedule. ``preview_mode``: ``short`` runs a complete
    k-step schedule (the paper); ``truncated`` runs the first k steps of the
    real s-step schedule and scores the x0 prediction, so the winner can
    ``resume`` at step k. ``enabled=False`` or m = 1 is the naive baseline.

    Cost options (all off by default; see :mod:`chunkwise.search.adaptive`):
    ``candidate_batch`` samples that many candidates in one batched sampler
    call when the denoiser has ``sample_batch`` (same results, better device
    use; the denoiser falls back to smaller batches on out-of-memory).
    ``preview_stride`` scores every n-th preview frame plus the last (the
    denoiser's ``preview_decode`` decodes only those where its VAE allows).
    ``preview_decode``: ``vae`` (the real decoder) or ``approx`` (the model's
    linear latent-to-RGB factors; needs ``preview_decode`` on the denoiser).
    ``accept_score``: early accept, stop drawing candidates once one scores
    at least this. ``halving_k`` > 0: successive halving from previews of
    ``halving_k`` steps up to k.
    """

    candidates: int = 4
    k: int = 8
    steps: int = 25
    preview_mode: str = "short"
    resume: bool = True
    enabled: bool = True
    candidate_batch: int = 1
    preview_stride: int = 1
    preview_decode: str = "vae"
    accept_score: Optional[float] = None
    halving_k: int = 0

    def validate(self) -> "SearchSettings":
        require_int("steps", self.steps, 1, "use the model's usual step count, e.g. 25 for SVD, 20-50 for Wan")
        require_int("candidates (m)", self.candidates, 1, "use 1 for no search, 4-10 for search")
        if self.candidates > MAX_CANDIDATES:
            raise ChunkwiseError(
                f"candidates (m) must be at most {MAX_CANDIDATES}, got {self.candidates}; the paper uses 10: beyond a "
                "few dozen, previews cost more than they find. Lower candidates"
            )
        require_int("k (preview steps)", self.k, 1, "use a few steps, e.g. 8 of 50")
        if self.preview_mode not in PREVIEW_MODES:
            raise ChunkwiseError(
                f"preview_mode must be one of {PREVIEW_MODES}, got {self.preview_mode!r}; "
                "use 'short' (the paper's k-step run) or 'truncated' (first k steps of the real schedule)"
            )
        if self.searching and self.preview_mode == "truncated" and self.k >= self.steps:
            raise ChunkwiseError(
                f"k (preview steps) must be smaller than steps in truncated mode, got k={self.k}, "
                f"steps={self.steps}; lower k (e.g. {max(1, self.steps // 6)}) or raise steps"
            )
        require_int("candidate_batch", self.candidate_batch, 1, "use 1 (one candidate per sampler call) or m")
        require_int("preview_stride", self.preview_stride, 1, "use 1 to score every frame, e.g. 4 for every 4th")
        if self.preview_decode not in PREVIEW_DECODES:
            raise ChunkwiseError(
                f"preview_decode must be one of {PREVIEW_DECODES}, got {self.preview_decode!r}; "
                "use 'vae' (the real decoder) or 'approx' (linear latent-to-RGB factors, much cheaper)"
            )
        if self.accept_score is not None:
            if isinstance(self.accept_score, bool) or not isinstance(self.accept_score, (int, float)) or not (
                math.isfinite(float(self.accept_score))
            ):
                raise ChunkwiseError(
                    f"accept_score must be a finite number or None, got {self.accept_score!r}; "
                    "use a score the scorer reaches for a good chunk (e.g. 0.9 for CLIP min-cosine) or None for off"
                )
        require_int("halving_k", self.halving_k, 0, "use 0 for off, or a few steps (e.g. k // 4) for the first rung")
        if self.halving_k and self.halving_k >= self.k:
            raise ChunkwiseError(
                f"halving_k must be smaller than k, got halving_k={self.halving_k}, k={self.k}; "
                f"use e.g. {max(1, self.k // 4)}, or 0 for no successive halving"
            )
        if self.halving_k and self.searching:
            halved = halving_preview_nfe(self.rungs(), self.preview_mode == "truncated")
            if halved >= self.candidates * self.k:
                raise ChunkwiseError(
                    f"successive halving with halving_k={self.halving_k} costs {halved} preview evaluations per "
                    f"chunk in {self.preview_mode} mode, not fewer than the plain search's m*k={self.candidates * self.k} "
                    f"(short rungs restart their schedule); use a smaller halving_k (e.g. {max(1, self.k // 4)}), "
                    "truncated previews, or 0 for off"
                )
        if self.halving_k and self.accept_score is not None:
            raise ChunkwiseError(
                f"early accept (accept_score={self.accept_score}) and successive halving (halving_k={self.halving_k}) "
                "cannot be combined; turn one off (accept_score=None or halving_k=0)"
            )
        return self

    @property
    def searching(self) -> bool:
        return self.enabled and self.candidates > 1

    @property
    def resumes(self) -> bool:
        return self.searching and self.preview_mode == "truncated" and self.resume

    def nfe_per_chunk(self) -> int:
        """Model evaluations per chunk for first-order samplers (one per step).

        Exact with successive halving; with early accept, the most a chunk can use.
        """
        if not self.searching:
            return self.steps
        if self.halving_k:
            rungs = self.rungs()
            preview = halving_preview_nfe(rungs, self.preview_mode == "truncated")
            return preview + (self.steps - rungs[-1].k if self.resumes else self.steps)
        return self.nfe_formula()

    def nfe_formula(self) -> int:
        """The plain search's cost: m*k + s, or m*k + s - k when the winner resumes."""
        if not self.searching:
            return self.steps
        return self.candidates * self.k + (self.steps - self.k if self.resumes else self.steps)

    def rungs(self) -> list[Rung]:
        """Successive halving's rungs (one rung of m at k when halving is off)."""
        if not self.halving_k:
            return [Rung(self.k, self.candidates)]
        return halving_rungs(self.candidates, self.k, self.halving_k)

    @property
    def tuned(self) -> bool:
        """Whether any cost option is on (then chunk records carry a ``cost`` section)."""
        return (
            self.candidate_batch > 1
            or self.preview_stride > 1
            or self.preview_decode != "vae"
            or self.accept_score is not None
            or self.halving_k > 0
        )


@dataclass(frozen=True)
class LoopSettings:
    """A whole run: ``chunks`` chunks from one base ``seed``.

    ``drop_first_frame`` drops the first frame of every chunk after the first
    (for models that reproduce their guide frame, so seams show no duplicate).
    ``use_anchor`` hands the original input image to the scorer as anchor.
    ``colour_anchor`` (0..1) matches each chunk's colour statistics to the
    input image before its last frame guides the next chunk, with
    ``colour_method`` ``lab`` (mean/std per Lab channel) or ``rgb``; see
    ``search.colour``. 0 is off.
    """

    chunks: int = 5
    seed: int = 0
    search: SearchSettings = field(default_factory=SearchSettings)
    drop_first_frame: bool = False
    use_anchor: bool = True
    colour_anchor: float = 0.0
    colour_method: str = "lab"

    def validate(self) -> "LoopSettings":
        require_int("chunks", self.chunks, 1, "ask for at least one chunk")
        require_int("seed", self.seed, 0, "use a non-negative seed")
        check_strength(self.colour_anchor)
        check_method(self.colour_method)
        self.search.validate()
        return self


def _check_preview_decode(search: SearchSettings, denoiser) -> None:
    if search.searching and search.preview_decode == "approx" and not hasattr(denoiser, "preview_decode"):
        raise ChunkwiseError(
            f"preview_decode='approx' needs a denoiser with preview_decode(), got {type(denoiser).__name__} "
            "without one; use preview_decode='vae'"
        )


def _noop(*_args, **_kwargs) -> None:
    return None


@dataclass
class Hooks:
    """Host plumbing: interruption, progress and previews. All optional.

    ``check_interrupt()`` is called between candidates, phases and chunks and
    may raise to stop the run. ``on_progress(done, total)`` counts sampler
    steps over the whole run. ``on_preview(chunk, candidate, frames, score)``
    shows a scored preview; ``on_chunk(record, frames)`` a finished chunk.
    """

    check_interrupt: Callable[[], None] = _noop
    on_progress: Callable[[int, int], None] = _noop
    on_preview: Callable[[int, int, torch.Tensor, CandidateScore], None] = _noop
    on_chunk: Callable[[ChunkRecord, torch.Tensor], None] = _noop


class _Progress:
    def __init__(self, total: int, hooks: Hooks) -> None:
        self.total = total
        self.done = 0
        self.hooks = hooks

    def step(self, _index: int = 0, _x0: Optional[torch.Tensor] = None) -> None:
        self.done += 1
        self.hooks.on_progress(min(self.done, self.total), self.total)

    def jump_to(self, done: int) -> None:
        """Re-align after a window (samplers with several evaluations per step)."""
        self.done = done
        self.hooks.on_progress(min(self.done, self.total), self.total)


@dataclass
class ChunkOutcome:
    frames: torch.Tensor
    latent: torch.Tensor
    record: ChunkRecord


class _Timer:
    def __init__(self, clock: Callable[[], float], seconds: dict) -> None:
        self.clock = clock
        self.seconds = seconds

    def __call__(self, key: str):
        timer = self

        class _Span:
            def __enter__(self):
                self.t0 = timer.clock()

            def __exit__(self, *_exc):
                timer.seconds[key] = timer.seconds.get(key, 0.0) + (timer.clock() - self.t0)

        return _Span()


def _nfe(denoiser: I2VDenoiser) -> int:
    return int(getattr(denoiser, "nfe", 0))


def _draw(template: torch.Tensor, seeds: list[int]) -> list[torch.Tensor]:
    return [make_noise(template, s) for s in seeds]


def search_chunk(
    denoiser: I2VDenoiser,
    scorer: Optional[Scorer],
    guide: torch.Tensor,
    search: SearchSettings,
    seed: int,
    *,
    index: int = 0,
    anchor: Optional[torch.Tensor] = None,
    hooks: Optional[Hooks] = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: Optional[_Progress] = None,
) -> ChunkOutcome:
    """Generate one chunk from ``guide``: search the initial noise, then denoise the winner.

    With the cost options of :class:`SearchSettings` off this is the paper's
    search: m previews of k steps, argmax, full run. The options change how
    previews are sampled (batched), decoded (frame subset, approximate), and
    how many are run (early accept, successive halving); the record then
    carries a ``cost`` section (see :class:`~chunkwise.search.adaptive.SearchChunkRecord`).
    """
    hooks = hooks or Hooks()
    progress = progress or _Progress(search.nfe_per_chunk(), hooks)
    guide = check_image(guide, f"guide image of chunk {index}")
    if search.searching and scorer is None:
        raise ChunkwiseError(
            f"search with {search.candidates} candidates needs a scorer, got none; "
            "connect a CLIP_VISION or SCORER, or set candidates to 1"
        )
    _check_preview_decode(search, denoiser)
    seconds: dict[str, float] = {"condition": 0.0, "preview": 0.0, "decode": 0.0, "score": 0.0, "full": 0.0}
    timed = _Timer(clock, seconds)
    s, m = search.steps, search.candidates
    truncated = search.preview_mode == "truncated"
    chunk_start = progress.done

    # 1. Condition once per chunk; every candidate and the full run reuse it.
    with timed("condition"):
        cond = denoiser.condition(guide)
        template = denoiser.latent_template(cond)
    hooks.check_interrupt()

    candidates: list[dict] = []
    chosen, best_preview = 0, None
    nfe_preview = 0
    cost = {"frames_decoded": 0, "frames_scored": 0, "preview_calls": 0}
    rung_log: list[dict] = []
    accepted: Optional[int] = None
    last_k = search.k
    batch = search.candidate_batch if hasattr(denoiser, "sample_batch") else 1

    def preview_window(js: list[int], start: int, end: int, total: int, resumes) -> list[SampleResult]:
        """Sample the window [start, end) of a ``total``-step schedule for candidates ``js``."""
        nonlocal nfe_preview
        seeds = [candidates[j]["seed"] for j in js]
        noises = _draw(template, seeds)
        before, done_before = _nfe(denoiser), progress.done
        with timed("preview"):
            if len(js) > 1:
                results = denoiser.sample_batch(
                    cond, noises, steps=total, start_step=start, end_step=end,
                    resumes=resumes, callback=progress.step, seeds=seeds,
                )
            else:
                results = [
                    denoiser.sample(
                        cond, noises[0], steps=total, start_step=start, end_step=end,
                        resume=None if resumes is None else resumes[0], callback=progress.step, seed=seeds[0],
                    )
                ]
        cost["preview_calls"] += 1
        if len(results) != len(js):
            raise ChunkwiseError(
                f"sample_batch returned {len(results)} results for {len(js)} noises; "
                "expected one SampleResult per noise, in order: fix the denoiser's sample_batch()"
            )
        progress.jump_to(done_before + len(js) * (end - start))
        nfe_preview += _nfe(denoiser) - before
        return results

    def decode_and_score(j: int, result: SampleResult, context) -> float:
        check_finite(result.latent, f"preview latent of chunk {index}, candidate {j}")
        latent = result.latent if result.finished else result.x0
        with timed("decode"):
            if hasattr(denoiser, "preview_decode"):
                counted = getattr(denoiser, "frames_decoded", None)
                preview = denoiser.preview_decode(
                    latent, stride=search.preview_stride, approximate=search.preview_decode == "approx"
                )
                decoded = (denoiser.frames_decoded - counted) if counted is not None else preview.shape[0]
            else:
                preview = denoiser.decode(latent)
                decoded = preview.shape[0]
                if search.preview_stride > 1:
                    preview = preview[frame_indices(preview.shape[0], search.preview_stride)]
        check_finite(preview, f"preview frames of chunk {index}, candidate {j}")
        cost["frames_decoded"] += int(decoded)
        cost["frames_scored"] += int(preview.shape[0])
        with timed("score"):
            scored = context.score([preview])
        if len(scored) != 1:
            raise ChunkwiseError(
                f"scorer {scorer.describe()!r} returned {len(scored)} scores for 1 preview; "
                "expected exactly one score per preview: fix the scorer's score()"
            )
        value = check_score(scored[0].score, f"score of chunk {index}, candidate {j}")
        candidates[j]["score"] = value
        candidates[j]["frame_scores"] = [
            check_score(f, f"frame {i} score of chunk {index}, candidate {j}") for i, f in enumerate(scored[0].frame_scores)
        ]
        if search.halving_k:
            candidates[j].setdefault("rung_scores", []).append(value)
        hooks.on_preview(index, j, preview, scored[0])
        return value

    if search.searching:
        # 2-4. Preview, decode and score candidates rung by rung (one rung unless halving);
        # keep only the state the next rung or the full run needs.
        with timed("score"):
            context = scorer.prepare(guide, anchor)
        alive = list(range(m))
        states: dict[int, SampleResult] = {}
        previous_k = 0
        rungs = search.rungs()
        for r, rung in enumerate(rungs):
            final_rung = r == len(rungs) - 1
            best_value = None
            if r > 0:
                alive = keep_best(alive, {j: candidates[j]["score"] for j in alive}, rung.candidates)
                states = {j: states[j] for j in alive} if truncated else {}
            rung_log.append({"k": rung.k, "candidates": list(alive)})
            scores: dict[int, float] = {}
            for g in range(0, len(alive), batch):
                hooks.check_interrupt()
                group = alive[g : g + batch]
                for j in group:
                    if j >= len(candidates):
                        candidates.append({"seed": candidate_seed(seed, j), "score": None, "frame_scores": []})
                if truncated:
                    resumes = [states[j] for j in group] if previous_k else None
                    results = preview_window(group, previous_k, rung.k, s, resumes)
                else:
                    results = preview_window(group, 0, rung.k, rung.k, None)
                for j, result in zip(group, results, strict=True):
                    scores[j] = decode_and_score(j, result, context)
                    # A truncated preview's state is kept while a later rung extends it; on the
                    # last rung only the best one's, for the winner to resume.
                    if truncated and not final_rung:
                        states[j] = result
                    elif search.resumes and (best_value is None or scores[j] > best_value):
                        best_preview, best_value = result, scores[j]
                del results
                if search.accept_score is not None and max(scores.values()) >= search.accept_score:
                    accepted = next(j for j in group if scores[j] >= search.accept_score)
                    break
            previous_k = last_k = rung.k
        # 5a. Argmax of the last rung with ties to the lowest index: only a strictly better score wins.
        best_score = None
        for j in sorted(scores):
            if best_score is None or scores[j] > best_score:
                chosen, best_score = j, scores[j]
        del states
    else:
        candidates.append({"seed": candidate_seed(seed, 0), "score": None, "frame_scores": []})
    hooks.check_interrupt()

    # 5b. Denoise the winner fully, or continue its truncated preview from where it stopped.
    winner_seed = candidates[chosen]["seed"]
    noise = make_noise(template, winner_seed)
    resume_at = last_k if search.resumes else 0
    before, done_before = _nfe(denoiser), progress.done
    with timed("full"):
        if search.resumes:
            final = denoiser.sample(
                cond,
                noise,
                steps=s,
                start_step=resume_at,
                end_step=s,
                resume=best_preview,
                callback=progress.step,
                seed=winner_seed,
            )
        else:
            final = denoiser.sample(
                cond, noise, steps=s, start_step=0, end_step=s, callback=progress.step, seed=winner_seed
            )
    progress.jump_to(done_before + (s - resume_at))
    nfe_full = _nfe(denoiser) - before
    latent = check_finite(final.latent, f"final latent of chunk {index}")
    with timed("decode"):
        frames = denoiser.decode(latent)
    check_finite(frames, f"frames of chunk {index}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ChunkwiseError(
            f"decoded chunk {index} must be frames [T, H, W, 3], got shape {list(frames.shape)}; "
            "check the denoiser's decode()"
        )
    # An early-accepted chunk used fewer steps than the progress total allows for: catch up.
    progress.jump_to(max(progress.done, chunk_start + search.nfe_per_chunk()))

    if search.searching and search.tuned:
        cost = {
            "nfe_formula": search.nfe_formula(),
            "nfe_saved": search.nfe_formula() - (nfe_preview + nfe_full),
            **cost,
        }
        if search.halving_k:
            cost["rungs"] = rung_log
        if search.accept_score is not None:
            cost["accepted"] = accepted
    else:
        cost = {}
    record = SearchChunkRecord(
        index=index,
        candidates=candidates,
        chosen=chosen,
        chosen_seed=winner_seed,
        nfe={"preview": nfe_preview, "full": nfe_full},
        seconds=seconds,
        cost=cost,
    )
    return ChunkOutcome(frames=frames, latent=latent, record=record)


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
    from dataclasses import asdict

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
    denoiser: I2VDenoiser,
    scorer: Optional[Scorer],
    image: torch.Tensor,
    settings: LoopSettings,
    *,
    sink: Optional[FrameSink] = None,
    hooks: Optional[Hooks] = None,
    clock: Callable[[], float] = time.perf_counter,
    scorer_name: Optional[str] = None,
    fingerprint: Optional[dict] = None,
) -> RunResult:
    """Generate ``settings.chunks`` chunks, each guided by the previous chunk's last frame.

    With a resumable sink (one with ``open_run``, e.g. ``search.sinks.DiskSink``)
    the chunks it already holds are skipped and the run continues from the
    exact guide frame it stored: chunk seeds depend only on (seed, index), so
    the result is bit-identical to an uninterrupted run. ``fingerprint`` adds
    host facts (model identity, conditioning) to what must match for that.
    An exception mid-chunk leaves every finished chunk in the sink.
    """
    # 1. Check everything before any model work.
    settings.validate()
    image = check_image(image, "input image")
    hooks = hooks or Hooks()
    sink = sink if sink is not None else MemorySink()
    search = settings.search
    if search.searching and scorer is None:
        raise ChunkwiseError(
            f"search with {search.candidates} candidates needs a scorer, got none; "
            "connect a CLIP_VISION or SCORER, or set candidates to 1"
        )
    _check_preview_decode(search, denoiser)
    scorer_name = scorer_name or (scorer.describe() if scorer is not None else "none")
    anchor = image if settings.use_anchor else None

    # 2. A resumable sink reports what is already finished; skip it.
    records: list = []
    guide = image
    frames_total = 0
    open_run = getattr(sink, "open_run", None)
    resumable = callable(open_run)
    if resumable:
        point = open_run(run_fingerprint(settings, scorer_name, image, denoiser, fingerprint), settings.chunks)
        if point is not None:
            records = list(point.records)
            guide = check_image(point.guide, f"stored guide frame of chunk {len(records) - 1}")
            frames_total = point.frames
    restored = len(records)
    per_chunk = search.nfe_per_chunk()
    progress = _Progress(settings.chunks * per_chunk, hooks)
    progress.jump_to(restored * per_chunk)

    # 3. Chunk after chunk; the last frame of one guides the next.
    t0 = clock()
    for i in range(restored, settings.chunks):
        hooks.check_interrupt()
        outcome = search_chunk(
            denoiser,
            scorer,
            guide,
            search,
            chunk_seed(settings.seed, i),
            index=i,
            anchor=anchor,
            hooks=hooks,
            clock=clock,
            progress=progress,
        )
        frames = outcome.frames
        if settings.colour_anchor > 0.0:
            # 3a. Pull the chunk's colours back to the input image before its last frame guides the next.
            frames = anchor_colours(frames, image, settings.colour_anchor, settings.colour_method)
        # A standalone contiguous copy: it does not pin the whole chunk in memory, and a guide read back
        # from a run folder (always contiguous) gives bit-identical reductions downstream.
        guide = frames[-1:].clone(memory_format=torch.contiguous_format)
        if settings.drop_first_frame and i > 0:
            frames = frames[1:]
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
    report = build_report(
        settings,
        scorer_name,
        records,
        frames=frames_total,
        seconds=clock() - t0,
        restored=restored,
    )
    write_report = getattr(sink, "write_report", None)
    if callable(write_report):
        write_report(report)
    return RunResult(report=report, sink=sink, last_frame=guide, restored=restored)


def naive_settings(settings: LoopSettings) -> LoopSettings:
    """The same run without search: one candidate per chunk, s steps each."""
    from dataclasses import replace

    return replace(settings, search=replace(settings.search, candidates=1))


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
]
