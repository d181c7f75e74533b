"""One chunk of the method: condition, draw candidates, preview, score, select, finish.

Per chunk (arXiv 2411.18668):

1. condition the model on the guide frame once;
2. draw m candidate noises from seeds seed + j;
3. denoise each for only k steps: a rough preview;
4. decode each preview and score it against the guide (and optionally the anchor);
5. select the best (argmax, ties to the lowest index);
6. finish it: denoise it fully, or resume its truncated preview at step k.

Cost per chunk: m*k + s model evaluations in ``short`` mode, m*k + (s - k)
in ``truncated`` mode with resume, s with search off (the naive baseline).

:class:`ChunkSearch` runs these steps for one chunk; a preview strategy
(:mod:`.adaptive`: plain, successive halving, early accept) decides which
candidates it previews to which step. Two pieces serve any host that drives a
chunk step by step (per-chunk nodes, a remote worker): :class:`ChunkSampler`
(preview given candidate seeds on a denoiser and its conditioning, finish the
chosen one) and :func:`select_best`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from .adaptive import SearchChunkRecord, preview_strategy
from .errors import ChunkwiseError, check_finite, check_image, check_score
from .images import frame_indices
from .noise import candidate_seed, make_noise
from .protocols import CandidateScore, I2VDenoiser, SampleResult, ScoreContext, Scorer
from .report import ChunkRecord
from .settings import SearchSettings

PHASES = ("condition", "preview", "decode", "score", "full")
"""The phases of a chunk whose seconds a chunk record keeps."""


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


class StepProgress:
    """Sampler steps done out of ``total``, reported to ``hooks.on_progress`` (capped at the total)."""

    def __init__(self, total: int, hooks: Optional[Hooks] = None) -> None:
        self.total = total
        self.done = 0
        self.hooks = hooks or Hooks()

    def step(self, _index: int = 0, _x0: Optional[torch.Tensor] = None) -> None:
        """A denoiser's step callback: one more step done."""
        self.jump_to(self.done + 1)

    def jump_to(self, done: int) -> None:
        """Re-align after a window (samplers with several evaluations per step)."""
        self.done = done
        self.hooks.on_progress(min(self.done, self.total), self.total)


class PhaseTimer:
    """Seconds per phase of a chunk (:data:`PHASES`), measured with ``clock``: ``with timer("decode"): ...``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def __call__(self, phase: str):
        t0 = self.clock()
        try:
            yield
        finally:
            self.seconds[phase] += self.clock() - t0


def select_best(scores: Sequence[float]) -> int:
    """The index of the best score: the argmax, ties to the lowest index (only a strictly better score wins)."""
    if len(scores) == 0:
        raise ChunkwiseError("select_best needs at least one score, got none; score the candidates' previews first")
    best = 0
    for j in range(1, len(scores)):
        if scores[j] > scores[best]:
            best = j
    return best


def _nfe(denoiser: I2VDenoiser) -> int:
    return int(getattr(denoiser, "nfe", 0))


class ChunkSampler:
    """The model and scorer work of one chunk: preview candidate seeds, finish the chosen one.

    Works on one ``denoiser`` (:class:`~.protocols.I2VDenoiser`) and the
    conditioning ``cond`` it made from the chunk's guide
    (``denoiser.condition(guide)``). Candidate noises are drawn from their
    seeds with :func:`~.noise.make_noise`, as a stock KSampler would.

    - :meth:`sample`: the window ``[start_step, end_step)`` of a ``steps``-step
      schedule for a list of seeds, in one sampler call (``sample_batch`` for
      several seeds), continuing ``resumes`` (earlier windows' results) if given;
    - :meth:`decode_preview`: a preview's frames (the x0 prediction of an
      unfinished window), through the denoiser's ``preview_decode`` where it has
      one (``preview_stride`` frames, ``approximate`` decode: that needs it);
    - :meth:`prepare` then :meth:`score`: a scorer's context for the chunk, then
      one preview's score;
    - :meth:`finish`: the chosen seed fully denoised, or its kept truncated
      preview ``resume``-d to the end of the schedule; returns (latent, frames).

    It counts model evaluations (``nfe_preview``, ``nfe_full``), preview cost
    (``cost``: frames decoded and scored, sampler calls) and seconds per phase
    (``timer.seconds``), and advances ``progress`` by one per sampler step.
    Errors name ``chunk {index}, candidate {j}``.
    """

    def __init__(
        self,
        denoiser: I2VDenoiser,
        cond,
        *,
        index: int = 0,
        preview_stride: int = 1,
        approximate: bool = False,
        hooks: Optional[Hooks] = None,
        progress: Optional[StepProgress] = None,
        timer: Optional[PhaseTimer] = None,
    ) -> None:
        self.denoiser = denoiser
        self.cond = cond
        self.template = denoiser.latent_template(cond)
        self.index = index
        self.preview_stride = preview_stride
        self.approximate = approximate
        self.hooks = hooks or Hooks()
        self.progress = progress or StepProgress(0)
        self.timer = timer or PhaseTimer()
        self.scorer: Optional[Scorer] = None
        self.context: Optional[ScoreContext] = None
        self.nfe_preview = 0
        self.nfe_full = 0
        self.cost = {"frames_decoded": 0, "frames_scored": 0, "preview_calls": 0}

    def sample(
        self,
        seeds: list[int],
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resumes: Optional[list[SampleResult]] = None,
    ) -> list[SampleResult]:
        """One sampler call: the window ``[start_step, end_step)`` of a ``steps``-step schedule per seed.

        Several seeds need a denoiser with ``sample_batch``.
        """
        end_step = steps if end_step is None else end_step
        noises = [make_noise(self.template, s) for s in seeds]
        window = dict(steps=steps, start_step=start_step, end_step=end_step, callback=self.progress.step)
        before, done_before = _nfe(self.denoiser), self.progress.done
        with self.timer("preview"):
            if len(seeds) > 1:
                results = self.denoiser.sample_batch(self.cond, noises, resumes=resumes, seeds=list(seeds), **window)
            else:
                resume = None if resumes is None else resumes[0]
                results = [self.denoiser.sample(self.cond, noises[0], resume=resume, seed=seeds[0], **window)]
        self.cost["preview_calls"] += 1
        if len(results) != len(seeds):
            raise ChunkwiseError(
                f"sample_batch returned {len(results)} results for {len(seeds)} noises; "
                "expected one SampleResult per noise, in order: fix the denoiser's sample_batch()"
            )
        self.progress.jump_to(done_before + len(seeds) * (end_step - start_step))
        self.nfe_preview += _nfe(self.denoiser) - before
        return results

    def decode_preview(self, result: SampleResult, candidate: int = 0) -> torch.Tensor:
        """Frames ``[T', H, W, 3]`` of candidate ``candidate``'s preview ``result``."""
        where = f"chunk {self.index}, candidate {candidate}"
        check_finite(result.latent, f"preview latent of {where}")
        latent = result.latent if result.finished else result.x0
        with self.timer("decode"):
            if hasattr(self.denoiser, "preview_decode"):
                counted = getattr(self.denoiser, "frames_decoded", None)
                frames = self.denoiser.preview_decode(latent, stride=self.preview_stride, approximate=self.approximate)
                decoded = (self.denoiser.frames_decoded - counted) if counted is not None else frames.shape[0]
            else:
                frames = self.denoiser.decode(latent)
                decoded = frames.shape[0]
                if self.preview_stride > 1:
                    frames = frames[frame_indices(frames.shape[0], self.preview_stride)]
        check_finite(frames, f"preview frames of {where}")
        self.cost["frames_decoded"] += int(decoded)
        return frames

    def prepare(self, scorer: Scorer, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> None:
        """The scorer's per-chunk work (encode the guide and anchor once), for :meth:`score`."""
        with self.timer("score"):
            self.context = scorer.prepare(guide, anchor)
        self.scorer = scorer

    def score(self, frames: torch.Tensor, candidate: int = 0) -> CandidateScore:
        """Candidate ``candidate``'s preview ``frames`` scored (finite values checked); shown via ``hooks.on_preview``."""
        if self.context is None:
            raise ChunkwiseError("ChunkSampler.score needs a scorer: call prepare(scorer, guide, anchor) first")
        where = f"chunk {self.index}, candidate {candidate}"
        self.cost["frames_scored"] += int(frames.shape[0])
        with self.timer("score"):
            scored = self.context.score([frames])
        if len(scored) != 1:
            raise ChunkwiseError(
                f"scorer {self.scorer.describe()!r} returned {len(scored)} scores for 1 preview; "
                "expected exactly one score per preview: fix the scorer's score()"
            )
        value = check_score(scored[0].score, f"score of {where}")
        per_frame = [check_score(f, f"frame {i} score of {where}") for i, f in enumerate(scored[0].frame_scores)]
        self.hooks.on_preview(self.index, candidate, frames, scored[0])
        return CandidateScore(value, per_frame)

    def finish(
        self, seed: int, *, steps: int, resume: Optional[SampleResult] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate ``seed`` denoised to the end of a ``steps``-step schedule: ``(latent, frames)``.

        From its noise, or with ``resume`` (its truncated preview, kept) from the step that preview stopped at.
        """
        noise = make_noise(self.template, seed)
        start = 0 if resume is None else resume.end_step
        kept = {} if resume is None else {"resume": resume}
        before, done_before = _nfe(self.denoiser), self.progress.done
        with self.timer("full"):
            final = self.denoiser.sample(self.cond, noise, steps=steps, start_step=start, end_step=steps,
                                         callback=self.progress.step, seed=seed, **kept)
        self.progress.jump_to(done_before + (steps - start))
        self.nfe_full += _nfe(self.denoiser) - before
        latent = check_finite(final.latent, f"final latent of chunk {self.index}")
        with self.timer("decode"):
            frames = self.denoiser.decode(latent)
        check_finite(frames, f"frames of chunk {self.index}")
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
            raise ChunkwiseError(
                f"decoded chunk {self.index} must be frames [T, H, W, 3], got shape {list(frames.shape)}; "
                "check the denoiser's decode()"
            )
        return latent, frames


@dataclass
class ChunkOutcome:
    frames: torch.Tensor
    latent: torch.Tensor
    record: ChunkRecord


def check_parts(search: SearchSettings, scorer: Optional[Scorer], denoiser: I2VDenoiser) -> None:
    """What a search needs besides valid settings: a scorer, and ``preview_decode()`` for approximate previews."""
    if search.searching and scorer is None:
        raise ChunkwiseError(
            f"search with {search.candidates} candidates needs a scorer, got none; "
            "connect a CLIP_VISION or SCORER, or set candidates to 1"
        )
    if search.searching and search.preview_decode == "approx" and not hasattr(denoiser, "preview_decode"):
        raise ChunkwiseError(
            f"preview_decode='approx' needs a denoiser with preview_decode(), got {type(denoiser).__name__} "
            "without one; use preview_decode='vae'"
        )


class ChunkSearch:
    """One chunk's k-step noise search with valid ``search`` settings (see the module docstring).

    ``seed`` is the chunk's base seed (candidate j draws from seed + j).
    :meth:`run` generates the chunk from a guide frame.
    """

    def __init__(
        self,
        denoiser: I2VDenoiser,
        scorer: Optional[Scorer],
        search: SearchSettings,
        seed: int,
        *,
        index: int = 0,
        anchor: Optional[torch.Tensor] = None,
        hooks: Optional[Hooks] = None,
        clock: Callable[[], float] = time.perf_counter,
        progress: Optional[StepProgress] = None,
    ) -> None:
        self.denoiser, self.scorer, self.search, self.seed = denoiser, scorer, search, seed
        self.index, self.anchor = index, anchor
        self.hooks = hooks or Hooks()
        self.progress = progress or StepProgress(search.nfe_per_chunk(), self.hooks)
        self.timer = PhaseTimer(clock)
        self.strategy = preview_strategy(search)
        self.candidates: list[dict] = []

    def run(self, guide: torch.Tensor) -> ChunkOutcome:
        search, chunk_start = self.search, self.progress.done
        # 1. Condition once per chunk; every candidate and the full run reuse it.
        guide = check_image(guide, f"guide image of chunk {self.index}")
        with self.timer("condition"):
            sampler = ChunkSampler(self.denoiser, self.denoiser.condition(guide), index=self.index,
                                   preview_stride=search.preview_stride, approximate=search.preview_decode == "approx",
                                   hooks=self.hooks, progress=self.progress, timer=self.timer)
        self.hooks.check_interrupt()
        if search.searching:
            # 2-5. Draw, preview, score and select, as the preview strategy says.
            sampler.prepare(self.scorer, guide, self.anchor)
            chosen, kept = self.search_noise(sampler)
        else:
            chosen, kept = 0, None
            self.draw(0)
        self.hooks.check_interrupt()
        # 6. Finish the winner: denoise it fully, or continue its truncated preview from where it stopped.
        latent, frames = sampler.finish(self.candidates[chosen]["seed"], steps=search.steps, resume=kept)
        # An early-accepted chunk used fewer steps than the progress total allows for: catch up.
        self.progress.jump_to(max(self.progress.done, chunk_start + search.nfe_per_chunk()))
        return ChunkOutcome(frames=frames, latent=latent, record=self.record(sampler, chosen))

    def draw(self, j: int) -> int:
        """Candidate ``j``'s seed (seed + j); its record is made the first time it is drawn."""
        if j == len(self.candidates):
            self.candidates.append({"seed": candidate_seed(self.seed, j), "score": None, "frame_scores": []})
        return self.candidates[j]["seed"]

    def search_noise(self, sampler: ChunkSampler) -> tuple[int, Optional[SampleResult]]:
        """Steps 2-5, rung by rung: the winner's index and, when it resumes, its preview.

        Only the state the next rung or the full run needs is kept: a truncated
        preview's while a later rung extends it, on the last rung only the best one's.
        """
        search, strategy = self.search, self.strategy
        truncated = search.preview_mode == "truncated"
        batch = search.candidate_batch if hasattr(self.denoiser, "sample_batch") else 1
        rungs = strategy.rungs()
        alive, scores, states, start = list(range(search.candidates)), {}, {}, 0
        for r, rung in enumerate(rungs):
            last_rung = r == len(rungs) - 1
            alive = strategy.survivors(r, alive, scores)
            states = {j: states[j] for j in alive if j in states}
            scores, kept, kept_score = {}, None, None
            for g in range(0, len(alive), batch):
                self.hooks.check_interrupt()
                group = alive[g : g + batch]
                # 2. Draw the group's noises from their seeds.
                seeds = [self.draw(j) for j in group]
                # 3. Preview: truncated rungs extend windows of one s-step schedule, short rungs are complete runs.
                if truncated:
                    resumes = [states[j] for j in group] if start else None
                    results = sampler.sample(seeds, steps=search.steps, start_step=start, end_step=rung.k,
                                             resumes=resumes)
                else:
                    results = sampler.sample(seeds, steps=rung.k)
                # 4. Decode and score each preview.
                for j, result in zip(group, results, strict=True):
                    scores[j] = self.score(sampler, j, result)
                    if truncated and not last_rung:
                        states[j] = result
                    elif search.resumes and (kept_score is None or scores[j] > kept_score):
                        kept, kept_score = result, scores[j]
                del results
                if strategy.stop(group, scores):
                    break
            start = rung.k
        # 5. Select: the argmax of the last rung, ties to the lowest index.
        order = sorted(scores)
        return order[select_best([scores[j] for j in order])], kept

    def score(self, sampler: ChunkSampler, j: int, result: SampleResult) -> float:
        """Candidate ``j``'s preview decoded and scored, into its record."""
        scored = sampler.score(sampler.decode_preview(result, j), j)
        record = self.candidates[j]
        record["score"], record["frame_scores"] = scored.score, scored.frame_scores
        self.strategy.note(record, scored.score)
        return scored.score

    def record(self, sampler: ChunkSampler, chosen: int) -> SearchChunkRecord:
        search, cost = self.search, {}
        if search.searching and search.tuned:
            used = sampler.nfe_preview + sampler.nfe_full
            cost = {"nfe_formula": search.nfe_formula(), "nfe_saved": search.nfe_formula() - used,
                    **sampler.cost, **self.strategy.cost()}
        return SearchChunkRecord(
            index=self.index,
            candidates=self.candidates,
            chosen=chosen,
            chosen_seed=self.candidates[chosen]["seed"],
            nfe={"preview": sampler.nfe_preview, "full": sampler.nfe_full},
            seconds=self.timer.seconds,
            cost=cost,
        )


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
    progress: Optional[StepProgress] = None,
) -> ChunkOutcome:
    """Generate one chunk from ``guide``: search the initial noise, then denoise the winner.

    With the cost options of :class:`SearchSettings` off this is the paper's
    search: m previews of k steps, argmax, full run. The options change how
    previews are sampled (batched), decoded (frame subset, approximate), and
    how many are run (early accept, successive halving); the record then
    carries a ``cost`` section (see :class:`~chunkwise.search.adaptive.SearchChunkRecord`).
    Checks ``search`` first; :func:`~chunkwise.search.engine.run_chunks` checks once per run instead.
    """
    search.validate()
    check_parts(search, scorer, denoiser)
    return ChunkSearch(denoiser, scorer, search, seed, index=index, anchor=anchor, hooks=hooks, clock=clock,
                       progress=progress).run(guide)


__all__ = [
    "PHASES",
    "ChunkOutcome",
    "ChunkSampler",
    "ChunkSearch",
    "Hooks",
    "PhaseTimer",
    "StepProgress",
    "check_parts",
    "search_chunk",
    "select_best",
]
