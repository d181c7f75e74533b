"""A chunk's candidates over the workers of a Ray cluster: the worker actor and the executor the engine drives.

Each worker (a Ray actor, one per GPU or CPU slot) builds its denoiser and scorer once from a picklable
``make_parts()`` and keeps them. Per chunk the driver runs the engine's own search
(``search.chunk.ChunkSearch``: rungs, survivors, early stop, ``select_best``); this module's
:class:`RayExecutor` only says where each group of candidates is previewed:

1. every worker that gets candidates conditions on the chunk's guide and prepares its scorer once
   (``search.chunk.ChunkWork``, the object the single-process run uses too);
2. the groups of a rung go round-robin to the workers, all at once; each worker previews, decodes and scores
   its share where the frames are and sends back only the scores; truncated states stay where they were made
   (a later rung extends a candidate on the worker that holds it; a state another worker needs is handed over);
3. the driver reads the scores in candidate order, so the search sees exactly what one process would;
4. the worker that previewed the winner finishes it, resuming its kept state in place; the frames of the
   finished chunk come back to the driver, which streams them into the sink (a run folder) as before.

The same seed and settings give the same winners and frames as one process: bit for bit on the CPU when
every process computes with the same number of threads (Ray gives a worker with one CPU slot one thread;
torch's multi-threaded sums depend on the count), on GPUs of one kind likewise. With early accept the
workers preview ahead of the stop; the winners are the same, the extra previews are wasted work.

Faults. Ray restarts a worker whose process died (``max_restarts``, default 3: the actor is made again and
reloads its pipeline) and retries no task (``max_task_retries=0``): the pack decides what is redone. A worker
lost during a chunk is left out for the rest of that chunk; the candidates it was previewing (and any it had
queued) are previewed again on the others, a truncated state it held is rebuilt from its noise (steps
``[0, k)`` in one window: the same result on exact-resume samplers), and a winner whose kept state is gone is
denoised from its noise (the same frames, k more evaluations). From the next chunk on the restarted worker
takes part again. A killed driver loses nothing that was finished: run the same command with the same run
folder and it resumes from the last finished chunk (``search.sinks.DiskSink``).
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Callable, Optional

import torch

from ..search.chunk import ChunkWork, PhaseTimer, PreviewWindow, StepProgress, check_parts
from ..search.errors import ChunkwiseError
from ..search.protocols import CandidateScore
from ..search.settings import SearchSettings
from .cluster import connect, worker_resources

log = logging.getLogger("chunkwise")

MAX_RESTARTS = 3
"""How often Ray makes a worker whose process died again (each time it reloads its pipeline)."""


def _snapshot(work: Optional[ChunkWork], timer: PhaseTimer) -> tuple:
    if work is None:
        return 0, 0, {}, dict(timer.seconds)
    return work.nfe_preview, work.nfe_full, dict(work.cost), dict(timer.seconds)


def _delta(before: tuple, after: tuple) -> dict:
    """What one call added: model evaluations, preview cost and seconds per phase."""
    return {"nfe_preview": after[0] - before[0], "nfe_full": after[1] - before[1],
            "cost": {k: v - before[2].get(k, 0) for k, v in after[2].items()},
            "seconds": {k: v - before[3].get(k, 0.0) for k, v in after[3].items()}}


class Worker:
    """One worker's state (the body of the Ray actor): its denoiser and scorer, and the chunk it works on."""

    def __init__(self, make_parts: Optional[Callable] = None) -> None:
        self.make_parts = make_parts
        self.parts_key, self.parts = None, None
        self.key: Optional[str] = None
        self.work: Optional[ChunkWork] = None
        self.timer = PhaseTimer()

    # -- the parts, loaded once and kept --------------------------------------------------------------

    def load(self, make_parts: Optional[Callable] = None):
        """``(denoiser, scorer)`` built by ``make_parts`` (default: the worker's own), kept while it is asked for."""
        make_parts = make_parts if make_parts is not None else self.make_parts
        if self.parts is None or self.parts_key != make_parts:
            self.parts, self.work = None, None  # one pipeline at a time
            self.parts = make_parts()
            self.parts_key = make_parts
        return self.parts

    def info(self) -> dict:
        denoiser, scorer = self.load()
        describe = getattr(denoiser, "describe", None)
        return {"pid": os.getpid(), "describe": describe() if callable(describe) else type(denoiser).__name__,
                "scorer": scorer.describe() if scorer is not None else None,
                "sample_batch": hasattr(denoiser, "sample_batch"), "fps": getattr(denoiser, "fps", None),
                "threads": torch.get_num_threads()}

    def pid(self) -> int:
        return os.getpid()

    def check(self, search: SearchSettings) -> None:
        denoiser, scorer = self.load()
        check_parts(search, scorer, denoiser)

    def call(self, fn: Callable, *args):
        """``fn(worker, *args)`` on this worker (what a batch job runs)."""
        return fn(self, *args)

    # -- one chunk ---------------------------------------------------------------------------------------

    def _chunk(self, key: str) -> ChunkWork:
        if self.key != key or self.work is None:
            raise ChunkwiseError(f"this worker (pid {os.getpid()}) holds no chunk {key}: it was restarted; "
                                 "the driver previews its candidates elsewhere")
        return self.work

    def open(self, key: str, search: SearchSettings, guide: torch.Tensor, anchor: Optional[torch.Tensor],
             index: int, prepare: bool) -> dict:
        denoiser, scorer = self.load()
        self.key, self.work, self.timer = key, None, PhaseTimer()
        before = _snapshot(None, self.timer)
        work = ChunkWork.open(denoiser, scorer, search, guide, index=index, progress=StepProgress(0),
                              timer=self.timer)
        if prepare:
            work.prepare(guide, anchor)
        self.work = work
        return _delta(before, _snapshot(work, self.timer))

    def preview(self, key: str, group: list, seeds: list, window: PreviewWindow, given: dict,
                rebuild: list) -> tuple:
        """Scores of ``group``; ``given`` holds states handed over (object refs), ``rebuild`` the members whose
        state was lost with another worker: they run from their noise to the window's end."""
        import ray

        work = self._chunk(key)
        before = _snapshot(work, self.timer)
        states = {j: ray.get(ref) for j, ref in given.items()}
        seed = dict(zip(group, seeds, strict=True))
        scores: dict = {}
        rest = [j for j in group if j not in rebuild]
        if rest:
            for j, s in zip(rest, work.preview(rest, [seed[j] for j in rest], window, states), strict=True):
                scores[j] = s
        if rebuild:
            again = PreviewWindow(window.steps, 0, window.end, extend=False, keep=window.keep)
            for j, s in zip(rebuild, work.preview(rebuild, [seed[j] for j in rebuild], again), strict=True):
                scores[j] = s
        return [scores[j] for j in group], _delta(before, _snapshot(work, self.timer))

    def retain(self, key: str, alive: list) -> None:
        if self.key == key and self.work is not None:
            self.work.retain(alive)

    def take(self, key: str, j: int):
        return self._chunk(key).take(j)

    def finish(self, key: str, j: int, seed: int, steps: int, resume: bool) -> tuple:
        work = self._chunk(key)
        before = _snapshot(work, self.timer)
        resumed = resume and work.holds(j)
        start = work.kept[2].end_step if resumed else 0
        latent, frames = work.finish(j, seed, steps, resume=resume)
        delta = _delta(before, _snapshot(work, self.timer))
        self.key, self.work = None, None
        return frames, latent, start, delta


def _lost_errors(ray) -> tuple:
    ex = ray.exceptions
    return tuple(getattr(ex, name) for name in ("RayActorError", "WorkerCrashedError", "ObjectLostError",
                                                "OwnerDiedError") if hasattr(ex, name))


def unwrap(ray, exc: BaseException) -> BaseException:
    """A task's own error (a ChunkwiseError raised on a worker) instead of Ray's wrapper around it."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        return cause
    return exc


class WorkerPool:
    """The workers: ``count`` Ray actors (default: one per GPU of the cluster, else one per CPU slot)."""

    def __init__(self, make_parts: Optional[Callable] = None, *, workers: Optional[int] = None,
                 address: Optional[str] = None, max_restarts: int = MAX_RESTARTS) -> None:
        self.ray = ray = connect(workers, address)
        resources = worker_resources(ray)
        count = workers or max(1, int(ray.cluster_resources().get("GPU" if "num_gpus" in resources else "CPU", 1)))
        actor = ray.remote(Worker).options(max_restarts=max_restarts, max_task_retries=0, **resources)
        self.actors = [actor.remote(make_parts) for _ in range(count)]
        self.lost_errors = _lost_errors(ray)

    def __len__(self) -> int:
        return len(self.actors)

    def get(self, ref):
        """``ray.get`` with a worker's own errors unwrapped (a lost worker raises one of ``lost_errors``)."""
        try:
            return self.ray.get(ref)
        except self.lost_errors:
            raise
        except self.ray.exceptions.RayTaskError as exc:
            raise unwrap(self.ray, exc) from None

    def pids(self) -> list:
        return self.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


class RayExecutor:
    """The engine's executor (``run_chunks(None, None, ..., executor=RayExecutor(...))``) over a pool's workers.

    The first worker reports what the run's fingerprint and report record (the denoiser's and scorer's
    descriptions), so a run folder made on one process can be continued on a cluster and back.
    """

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.infos = pool.get([a.info.remote() for a in pool.actors])  # every worker loads its pipeline now
        self.first = self.infos[0]
        self.nfe_by_worker = [0] * len(pool)  # model evaluations each worker made for the run (kept work only)

    def describe(self) -> str:
        return self.first["describe"]

    @property
    def fps(self):
        return self.first["fps"]

    def check(self, search: SearchSettings) -> None:
        self.pool.get(self.pool.actors[0].check.remote(search))

    def scorer_name(self) -> str:
        return self.first["scorer"] or "none"

    def batch(self, search: SearchSettings) -> int:
        return search.candidate_batch if self.first["sample_batch"] else 1

    def open_chunk(self, search: SearchSettings, guide: torch.Tensor, *, index: int, hooks, progress: StepProgress,
                   timer: PhaseTimer) -> "RayChunk":
        return RayChunk(self, search, guide, index=index, progress=progress, timer=timer)

    def count(self, w: int, delta: dict) -> None:
        self.nfe_by_worker[w] += delta["nfe_preview"] + delta["nfe_full"]


class RayChunk:
    """One chunk's model work spread over the workers (see the module docstring); the counters add up theirs."""

    def __init__(self, executor: RayExecutor, search: SearchSettings, guide: torch.Tensor, *, index: int,
                 progress: StepProgress, timer: PhaseTimer) -> None:
        self.executor, self.pool, self.ray = executor, executor.pool, executor.pool.ray
        self.search, self.index, self.progress, self.timer = search, index, progress, timer
        self.key = f"{uuid.uuid4().hex}-{index}"
        self.guide = self.ray.put(guide)
        self.anchor, self.prepared = None, False
        self.opened: dict = {}  # worker -> its open() ref, until collected
        self.lost: set = set()
        self.where: dict = {}  # candidate -> the worker holding its state (or that previewed it last)
        self.nfe_preview, self.nfe_full = 0, 0
        self.cost = {"frames_decoded": 0, "frames_scored": 0, "preview_calls": 0}

    # -- bookkeeping ------------------------------------------------------------------------------------

    def live(self) -> list:
        live = [w for w in range(len(self.pool)) if w not in self.lost]
        if not live:
            raise ChunkwiseError(
                f"every worker was lost during chunk {self.index} ({len(self.pool)} of {len(self.pool)}); the "
                "finished chunks are in the run folder: check the workers (memory, drivers) and run the same "
                "command again to resume"
            )
        return live

    def add(self, delta: dict, w: int) -> None:
        self.executor.count(w, delta)
        self.nfe_preview += delta["nfe_preview"]
        self.nfe_full += delta["nfe_full"]
        for k, v in delta["cost"].items():
            self.cost[k] = self.cost.get(k, 0) + v
        for k, v in delta["seconds"].items():
            self.timer.seconds[k] = self.timer.seconds.get(k, 0.0) + v

    def lose(self, w: int, exc: BaseException) -> None:
        log.warning("chunkwise: worker %d was lost during chunk %d (%s); its candidates run on the others", w,
                    self.index, type(exc).__name__)
        self.lost.add(w)
        self.opened.pop(w, None)
        self.where = {j: h for j, h in self.where.items() if h != w}

    def ensure_open(self, w: int) -> None:
        if w not in self.opened:
            actor = self.pool.actors[w]
            self.opened[w] = actor.open.remote(self.key, self.search, self.guide, self.anchor, self.index,
                                               self.prepared)

    def collect_open(self, w: int) -> None:
        ref = self.opened.get(w)
        if ref is not None and not isinstance(ref, bool):
            self.add(self.pool.get(ref), w)
            self.opened[w] = True

    # -- what ChunkSearch calls -------------------------------------------------------------------------

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> None:
        self.anchor = self.ray.put(anchor) if anchor is not None else None
        self.prepared = True

    def retain(self, alive) -> None:
        keep = set(alive)
        self.where = {j: w for j, w in self.where.items() if j in keep}
        for w in self.live():
            if w in self.opened:
                self.pool.actors[w].retain.remote(self.key, list(alive))

    def submit(self, w: int, group: list, seed_of: Callable, window: PreviewWindow):
        self.ensure_open(w)
        given, rebuild = {}, []
        if window.extend:
            for j in group:
                home = self.where.get(j)
                if home is None:
                    rebuild.append(j)
                elif home != w:
                    given[j] = self.pool.actors[home].take.remote(self.key, j)
        ref = self.pool.actors[w].preview.remote(self.key, group, [seed_of(j) for j in group], window, given,
                                                 rebuild)
        return w, ref

    def previews(self, groups: list, seed_of: Callable, window: PreviewWindow, check_interrupt=None):
        """``(group, scores)`` in group order; all groups are submitted at once, round-robin (a truncated
        rung's group goes to the worker holding its first member's state)."""
        live = self.live()
        pending = []
        for g, group in enumerate(groups):
            home = self.where.get(group[0]) if window.extend else None
            pending.append(self.submit(home if home is not None else live[g % len(live)], group, seed_of, window))
        try:
            for g, group in enumerate(groups):
                if check_interrupt is not None:
                    check_interrupt()
                scores = self.collect(g, groups, pending, seed_of, window)
                self.progress.jump_to(self.progress.done + len(group) * (window.end - window.start))
                yield group, scores
        finally:
            for _w, ref in pending:  # a search that stopped early needs no more previews
                try:
                    self.ray.cancel(ref)
                except Exception:  # noqa: BLE001 - cancelling what already ran is harmless
                    pass

    def collect(self, g: int, groups: list, pending: list, seed_of: Callable, window: PreviewWindow) -> list:
        while True:
            w, ref = pending[g]
            try:
                self.collect_open(w)
                scores, delta = self.pool.get(ref)
                break
            except self.pool.lost_errors as exc:
                self.lose(w, exc)
                live = self.live()
                for h in range(g, len(groups)):  # this group and the lost worker's queued ones, on the others
                    if pending[h][0] == w:
                        pending[h] = self.submit(live[h % len(live)], groups[h], seed_of, window)
        self.add(delta, w)
        for j in groups[g]:
            self.where[j] = w
        return [s if isinstance(s, CandidateScore) else CandidateScore(*s) for s in scores]

    def finish(self, j: int, seed: int, steps: int, resume: bool = False):
        home = self.where.get(j)
        w = home if home is not None and home not in self.lost else self.live()[0]
        while True:
            self.ensure_open(w)
            try:
                self.collect_open(w)
                frames, latent, start, delta = self.pool.get(
                    self.pool.actors[w].finish.remote(self.key, j, seed, steps, resume))
                break
            except self.pool.lost_errors as exc:
                self.lose(w, exc)
                w = self.live()[0]
        self.add(delta, w)
        self.progress.jump_to(self.progress.done + steps - start)
        return latent, frames


__all__ = ["MAX_RESTARTS", "RayChunk", "RayExecutor", "Worker", "WorkerPool"]
