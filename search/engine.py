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

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .errors import ChunkwiseError, check_finite, check_image, check_score, require_int
from .noise import MAX_CANDIDATES, candidate_seed, chunk_seed, make_noise
from .protocols import CandidateScore, FrameSink, I2VDenoiser, MemorySink, SampleResult, Scorer
from .report import ChunkRecord, build_report

PREVIEW_MODES = ("short", "truncated")


@dataclass(frozen=True)
class SearchSettings:
    """How each chunk's initial noise is chosen.

    ``candidates`` (m) noises are previewed with ``k`` steps each; ``steps``
    (s) is the full schedule. ``preview_mode``: ``short`` runs a complete
    k-step schedule (the paper); ``truncated`` runs the first k steps of the
    real s-step schedule and scores the x0 prediction, so the winner can
    ``resume`` at step k. ``enabled=False`` or m = 1 is the naive baseline.
    """

    candidates: int = 4
    k: int = 8
    steps: int = 25
    preview_mode: str = "short"
    resume: bool = True
    enabled: bool = True

    def validate(self) -> "SearchSettings":
        require_int("steps", self.steps, 1, "use the model's usual step count, e.g. 25 for SVD, 20-50 for Wan")
        require_int("candidates (m)", self.candidates, 1, "use 1 for no search, 4-10 for search")
        if self.candidates > MAX_CANDIDATES:
            raise ChunkwiseError(f"candidates (m) must be at most {MAX_CANDIDATES}, got {self.candidates}")
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
        return self

    @property
    def searching(self) -> bool:
        return self.enabled and self.candidates > 1

    @property
    def resumes(self) -> bool:
        return self.searching and self.preview_mode == "truncated" and self.resume

    def nfe_per_chunk(self) -> int:
        """Model evaluations per chunk for first-order samplers (one per step)."""
        if not self.searching:
            return self.steps
        return self.candidates * self.k + (self.steps - self.k if self.resumes else self.steps)


@dataclass(frozen=True)
class LoopSettings:
    """A whole run: ``chunks`` chunks from one base ``seed``.

    ``drop_first_frame`` drops the first frame of every chunk after the first
    (for models that reproduce their guide frame, so seams show no duplicate).
    ``use_anchor`` hands the original input image to the scorer as anchor.
    """

    chunks: int = 5
    seed: int = 0
    search: SearchSettings = field(default_factory=SearchSettings)
    drop_first_frame: bool = False
    use_anchor: bool = True

    def validate(self) -> "LoopSettings":
        require_int("chunks", self.chunks, 1, "ask for at least one chunk")
        require_int("seed", self.seed, 0, "use a non-negative seed")
        self.search.validate()
        return self


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
    """Generate one chunk from ``guide``: search the initial noise, then denoise the winner."""
    hooks = hooks or Hooks()
    progress = progress or _Progress(search.nfe_per_chunk(), hooks)
    guide = check_image(guide, f"guide image of chunk {index}")
    if search.searching and scorer is None:
        raise ChunkwiseError(
            f"search with {search.candidates} candidates needs a scorer, got none; "
            "connect a CLIP_VISION or SCORER, or set candidates to 1"
        )
    seconds: dict[str, float] = {"condition": 0.0, "preview": 0.0, "decode": 0.0, "score": 0.0, "full": 0.0}
    timed = _Timer(clock, seconds)
    s, k, m = search.steps, search.k, search.candidates

    # 1. Condition once per chunk; every candidate and the full run reuse it.
    with timed("condition"):
        cond = denoiser.condition(guide)
        template = denoiser.latent_template(cond)
    hooks.check_interrupt()

    candidates: list[dict] = []
    chosen, best_score, best_preview = 0, None, None
    nfe_preview = 0
    if search.searching:
        # 2-4. Preview, decode and score each candidate; keep only the best one's state.
        with timed("score"):
            context = scorer.prepare(guide, anchor)
        for j in range(m):
            hooks.check_interrupt()
            cand_seed = candidate_seed(seed, j)
            noise = make_noise(template, cand_seed)
            before, done_before = _nfe(denoiser), progress.done
            with timed("preview"):
                if search.preview_mode == "short":
                    result = denoiser.sample(
                        cond, noise, steps=k, start_step=0, end_step=k, callback=progress.step, seed=cand_seed
                    )
                else:
                    result = denoiser.sample(
                        cond, noise, steps=s, start_step=0, end_step=k, callback=progress.step, seed=cand_seed
                    )
            progress.jump_to(done_before + k)
            nfe_preview += _nfe(denoiser) - before
            del noise
            check_finite(result.latent, f"preview latent of chunk {index}, candidate {j}")
            with timed("decode"):
                preview = denoiser.decode(result.latent if result.finished else result.x0)
            check_finite(preview, f"preview frames of chunk {index}, candidate {j}")
            with timed("score"):
                scored = context.score([preview])
            if len(scored) != 1:
                raise ChunkwiseError(
                    f"scorer {scorer.describe()!r} returned {len(scored)} scores for 1 preview; "
                    "expected exactly one score per preview: fix the scorer's score()"
                )
            value = check_score(scored[0].score, f"score of chunk {index}, candidate {j}")
            candidates.append(
                {"seed": cand_seed, "score": value, "frame_scores": [float(f) for f in scored[0].frame_scores]}
            )
            hooks.on_preview(index, j, preview, scored[0])
            # 5a. Argmax with ties to the lowest index: only a strictly better score wins.
            if best_score is None or value > best_score:
                chosen, best_score = j, value
                best_preview = result if search.resumes else None
            del preview, result
    else:
        candidates.append({"seed": candidate_seed(seed, 0), "score": None, "frame_scores": []})
    hooks.check_interrupt()

    # 5b. Denoise the winner fully, or continue its truncated preview from step k.
    winner_seed = candidates[chosen]["seed"]
    noise = make_noise(template, winner_seed)
    before, done_before = _nfe(denoiser), progress.done
    with timed("full"):
        if search.resumes:
            final = denoiser.sample(
                cond,
                noise,
                steps=s,
                start_step=k,
                end_step=s,
                resume=best_preview,
                callback=progress.step,
                seed=winner_seed,
            )
        else:
            final = denoiser.sample(
                cond, noise, steps=s, start_step=0, end_step=s, callback=progress.step, seed=winner_seed
            )
    progress.jump_to(done_before + (s - k if search.resumes else s))
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

    record = ChunkRecord(
        index=index,
        candidates=candidates,
        chosen=chosen,
        chosen_seed=winner_seed,
        nfe={"preview": nfe_preview, "full": nfe_full},
        seconds=seconds,
    )
    return ChunkOutcome(frames=frames, latent=latent, record=record)


@dataclass
class RunResult:
    report: dict
    sink: FrameSink
    last_frame: torch.Tensor

    def video(self) -> torch.Tensor:
        return self.sink.video()


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
) -> RunResult:
    """Generate ``settings.chunks`` chunks, each guided by the previous chunk's last frame."""
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
    anchor = image if settings.use_anchor else None
    progress = _Progress(settings.chunks * search.nfe_per_chunk(), hooks)
    progress.jump_to(0)

    # 2. Chunk after chunk; the last frame of one guides the next.
    records: list[ChunkRecord] = []
    guide = image
    frames_total = 0
    t0 = clock()
    for i in range(settings.chunks):
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
        guide = frames[-1:]
        if settings.drop_first_frame and i > 0:
            frames = frames[1:]
        sink.write_chunk(i, frames)
        frames_total += frames.shape[0]
        records.append(outcome.record)
        hooks.on_chunk(outcome.record, frames)
        del outcome
    sink.close()

    # 3. One report for the run.
    report = build_report(
        settings,
        scorer_name or (scorer.describe() if scorer is not None else "none"),
        records,
        frames=frames_total,
        seconds=clock() - t0,
    )
    return RunResult(report=report, sink=sink, last_frame=guide)


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
    "search_chunk",
]
