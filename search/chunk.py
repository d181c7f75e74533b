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

import functools
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

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


PREVIEW_KEEPS = ("none", "all", "best")


@dataclass(frozen=True)
class PreviewWindow:
    """One rung's previews: steps ``[start, end)`` of a ``steps``-step schedule for every candidate of a group.

    ``extend``: continue each candidate's kept state (a truncated rung after the first). ``keep``: what the
    previews leave behind: ``all`` (the next rung extends them), ``best`` (only the best so far, ties to the
    earlier: the state the winner resumes), ``none``.
    """

    steps: int
    start: int
    end: int
    extend: bool = False
    keep: str = "none"


class ChunkWork:
    """One chunk's model work on one denoiser and scorer: a :class:`ChunkSampler` and the preview states it keeps.

    The chunk search (:class:`ChunkSearch`) decides which groups of candidates are previewed to which step;
    this object previews them where the model is (:meth:`preview` one group, :meth:`previews` a rung's groups
    in turn), keeps what :class:`PreviewWindow` says and finishes the chosen candidate (:meth:`finish`), resuming
    its kept state when it holds it. A worker of a cluster (``chunkwise.scale``) runs one per chunk, so only
    scores leave it.
    """

    def __init__(self, sampler: ChunkSampler, scorer: Optional[Scorer] = None) -> None:
        self.sampler = sampler
        self.scorer = scorer
        self.states: dict[int, SampleResult] = {}
        self.kept: Optional[tuple[int, float, SampleResult]] = None

    @classmethod
    def open(cls, denoiser: I2VDenoiser, scorer: Optional[Scorer], search: SearchSettings, guide: torch.Tensor, *,
             index: int = 0, hooks: Optional[Hooks] = None, progress: Optional[StepProgress] = None,
             timer: Optional[PhaseTimer] = None) -> "ChunkWork":
        """Condition ``denoiser`` on the chunk's ``guide`` once; every candidate and the full run reuse it."""
        timer = timer or PhaseTimer()
        with timer("condition"):
            sampler = ChunkSampler(denoiser, denoiser.condition(guide), index=index,
                                   preview_stride=search.preview_stride, approximate=search.preview_decode == "approx",
                                   hooks=hooks, progress=progress, timer=timer)
        return cls(sampler, scorer)

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> None:
        """The scorer's per-chunk work (see :meth:`ChunkSampler.prepare`)."""
        self.sampler.prepare(self.scorer, guide, anchor)

    def preview(self, group: list[int], seeds: list[int], window: PreviewWindow,
                given: Optional[dict] = None) -> list[CandidateScore]:
        """Candidates ``group`` (seeds ``seeds``) previewed in one sampler call, decoded and scored.

        With ``window.extend`` each continues its kept state, or the one in ``given`` (moved from elsewhere).
        """
        resumes = None
        if window.extend:
            resumes = [given[j] if given and j in given else self.states.pop(j) for j in group]
        results = self.sampler.sample(seeds, steps=window.steps, start_step=window.start, end_step=window.end,
                                      resumes=resumes)
        del resumes
        scored = []
        for j, result in zip(group, results, strict=True):
            score = self.sampler.score(self.sampler.decode_preview(result, j), j)
            scored.append(score)
            if window.keep == "all":
                self.states[j] = result
            elif window.keep == "best" and (self.kept is None or score.score > self.kept[1]):
                self.kept = (j, score.score, result)
        return scored

    def previews(self, groups: list[list[int]], seed_of: Callable[[int], int], window: PreviewWindow,
                 check_interrupt: Callable[[], None] = _noop) -> Iterator[tuple[list[int], list[CandidateScore]]]:
        """``(group, its scores)`` for each group in turn, previewed when asked for (a search that stops early
        previews no more)."""
        for group in groups:
            check_interrupt()
            yield group, self.preview(group, [seed_of(j) for j in group], window)

    def retain(self, alive: Sequence[int]) -> None:
        """Drop the kept states of every candidate but ``alive``."""
        keep = set(alive)
        self.states = {j: s for j, s in self.states.items() if j in keep}

    def take(self, j: int) -> SampleResult:
        """Candidate ``j``'s kept state, handed over (to be extended elsewhere)."""
        return self.states.pop(j)

    def holds(self, j: int) -> bool:
        """Whether this work keeps the state candidate ``j``'s full run would resume."""
        return self.kept is not None and self.kept[0] == j

    def finish(self, j: int, seed: int, steps: int, resume: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate ``j`` (seed ``seed``) denoised to the end: its kept preview resumed when ``resume`` and it is
        kept here, else from its noise (the same frames for exact-resume samplers, k more evaluations)."""
        kept = self.kept[2] if resume and self.holds(j) else None
        self.states, self.kept = {}, None
        return self.sampler.finish(seed, steps=steps, resume=kept)

    @property
    def nfe_preview(self) -> int:
        return self.sampler.nfe_preview

    @property
    def nfe_full(self) -> int:
        return self.sampler.nfe_full

    @property
    def cost(self) -> dict:
        return self.sampler.cost


class LocalExecutor:
    """Where a chunk's model work runs by default: on ``denoiser`` and ``scorer`` in this process.

    :meth:`open_chunk` makes the chunk's :class:`ChunkWork`. Another executor (a cluster's, in
    ``chunkwise.scale``) offers the same four calls and hands back an object with ``prepare``, ``previews``,
    ``retain``, ``finish`` and the counters ``nfe_preview``, ``nfe_full``, ``cost``.
    """

    def __init__(self, denoiser: I2VDenoiser, scorer: Optional[Scorer]) -> None:
        self.denoiser, self.scorer = denoiser, scorer

    def check(self, search: SearchSettings) -> None:
        check_parts(search, self.scorer, self.denoiser)

    def scorer_name(self) -> str:
        return self.scorer.describe() if self.scorer is not None else "none"

    def batch(self, search: SearchSettings) -> int:
        """Candidates per sampler call: ``candidate_batch`` for a denoiser with ``sample_batch``, else 1."""
        return search.candidate_batch if hasattr(self.denoiser, "sample_batch") else 1

    def open_chunk(self, search: SearchSettings, guide: torch.Tensor, *, index: int, hooks: Hooks,
                   progress: StepProgress, timer: PhaseTimer) -> ChunkWork:
        return ChunkWork.open(self.denoiser, self.scorer, search, guide, index=index, hooks=hooks, progress=progress,
                              timer=timer)


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
    :meth:`run` generates the chunk from a guide frame. The model work runs
    where ``executor`` puts it (default: :class:`LocalExecutor` on ``denoiser``
    and ``scorer``, in this process); the search itself is the same either way.
    """

    def __init__(
        self,
        denoiser: Optional[I2VDenoiser],
        scorer: Optional[Scorer],
        search: SearchSettings,
        seed: int,
        *,
        index: int = 0,
        anchor: Optional[torch.Tensor] = None,
        hooks: Optional[Hooks] = None,
        clock: Callable[[], float] = time.perf_counter,
        progress: Optional[StepProgress] = None,
        executor=None,
    ) -> None:
        self.denoiser, self.scorer, self.search, self.seed = denoiser, scorer, search, seed
        self.index, self.anchor = index, anchor
        self.hooks = hooks or Hooks()
        self.progress = progress or StepProgress(search.nfe_per_chunk(), self.hooks)
        self.timer = PhaseTimer(clock)
        self.strategy = preview_strategy(search)
        self.executor = executor if executor is not None else LocalExecutor(denoiser, scorer)
        self.candidates: list[dict] = []

    def run(self, guide: torch.Tensor) -> ChunkOutcome:
        search, chunk_start = self.search, self.progress.done
        # 1. Condition once per chunk; every candidate and the full run reuse it.
        guide = check_image(guide, f"guide image of chunk {self.index}")
        work = self.executor.open_chunk(search, guide, index=self.index, hooks=self.hooks, progress=self.progress,
                                        timer=self.timer)
        self.hooks.check_interrupt()
        if search.searching:
            # 2-5. Draw, preview, score and select, as the preview strategy says.
            work.prepare(guide, self.anchor)
            chosen = self.search_noise(work)
        else:
            chosen = 0
            self.draw(0)
        self.hooks.check_interrupt()
        # 6. Finish the winner: denoise it fully, or continue its truncated preview from where it stopped.
        latent, frames = work.finish(chosen, self.candidates[chosen]["seed"], search.steps, resume=search.resumes)
        # An early-accepted chunk used fewer steps than the progress total allows for: catch up.
        self.progress.jump_to(max(self.progress.done, chunk_start + search.nfe_per_chunk()))
        return ChunkOutcome(frames=frames, latent=latent, record=self.record(work, chosen))

    def draw(self, j: int) -> int:
        """Candidate ``j``'s seed (seed + j); its record is made the first time it is drawn."""
        if j == len(self.candidates):
            self.candidates.append({"seed": candidate_seed(self.seed, j), "score": None, "frame_scores": []})
        return self.candidates[j]["seed"]

    def windows(self) -> list[PreviewWindow]:
        """Each rung's preview window: truncated rungs extend windows of one s-step schedule (their states
        kept for the next rung, on the last rung only the best one's when the winner resumes), short rungs are
        complete runs."""
        search, rungs = self.search, self.strategy.rungs()
        if search.preview_mode != "truncated":
            return [PreviewWindow(rung.k, 0, rung.k) for rung in rungs]
        out, start = [], 0
        for r, rung in enumerate(rungs):
            last = r == len(rungs) - 1
            keep = "all" if not last else ("best" if search.resumes else "none")
            out.append(PreviewWindow(search.steps, start, rung.k, extend=start > 0, keep=keep))
            start = rung.k
        return out

    def search_noise(self, work) -> int:
        """Steps 2-5, rung by rung: the winner's index (its state, when it resumes, stays with ``work``)."""
        search, strategy = self.search, self.strategy
        batch = self.executor.batch(search)
        alive, scores = list(range(search.candidates)), {}
        for r, window in enumerate(self.windows()):
            alive = strategy.survivors(r, alive, scores)
            work.retain(alive)
            scores = {}
            groups = [alive[g : g + batch] for g in range(0, len(alive), batch)]
            # 2-4. Draw each group's noises from their seeds, preview them, decode and score each preview.
            seed_of = functools.partial(candidate_seed, self.seed)
            for group, scored in work.previews(groups, seed_of, window, self.hooks.check_interrupt):
                for j, score in zip(group, scored, strict=True):
                    self.draw(j)
                    scores[j] = self.note(j, score)
                if strategy.stop(group, scores):
                    break
        # 5. Select: the argmax of the last rung, ties to the lowest index.
        order = sorted(scores)
        return order[select_best([scores[j] for j in order])]

    def note(self, j: int, scored: CandidateScore) -> float:
        """Candidate ``j``'s preview score, into its record."""
        record = self.candidates[j]
        record["score"], record["frame_scores"] = scored.score, scored.frame_scores
        self.strategy.note(record, scored.score)
        return scored.score

    def record(self, work, chosen: int) -> SearchChunkRecord:
        search, cost = self.search, {}
        if search.searching and search.tuned:
            used = work.nfe_preview + work.nfe_full
            cost = {"nfe_formula": search.nfe_formula(), "nfe_saved": search.nfe_formula() - used,
                    **work.cost, **self.strategy.cost()}
        return SearchChunkRecord(
            index=self.index,
            candidates=self.candidates,
            chosen=chosen,
            chosen_seed=self.candidates[chosen]["seed"],
            nfe={"preview": work.nfe_preview, "full": work.nfe_full},
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
    "ChunkWork",
    "Hooks",
    "LocalExecutor",
    "PhaseTimer",
    "PreviewWindow",
    "StepProgress",
    "check_parts",
    "search_chunk",
    "select_best",
]
