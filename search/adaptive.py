"""Preview strategies (plain, successive halving, early accept), their schedules, and cost records.

Host-agnostic (torch only). A preview strategy decides which candidates the
chunk search (:class:`~chunkwise.search.chunk.ChunkSearch`) previews, to which
step, and when it stops; the search itself draws, previews, scores and selects
the same way for each of them. :func:`preview_strategy` picks the one the
:class:`SearchSettings <chunkwise.search.settings.SearchSettings>` ask for; with
every cost option at its default it is :class:`PlainPreview`, the paper's search.

Successive halving (``halving_k`` > 0): all m candidates are previewed at
``halving_k`` steps, the better half (rounded up) is kept and extended to twice
as many steps, and so on until the rung reaches k or one candidate is left.
"Extending" depends on the preview mode: in ``truncated`` mode a survivor's
preview resumes from the step where the last rung stopped (the rungs are
windows of one s-step schedule, so no step is repeated), in ``short`` mode each
rung is a new complete schedule of that rung's step count. Every rung scores
its previews; the winner is the argmax of the last rung (ties to the lower
candidate index).

Early accept (``accept_score``): candidates are drawn in order and the search
stops after the first preview (or batch of previews) whose score reaches the
threshold; its winner is the best candidate drawn so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .images import frame_indices
from .report import ChunkRecord


@dataclass(frozen=True)
class Rung:
    """One rung of a preview strategy: ``candidates`` previews, each run to step ``k``."""

    k: int
    candidates: int


def halving_rungs(m: int, k: int, first_k: int) -> list[Rung]:
    """The rungs for m candidates, final preview length k, first rung ``first_k`` steps.

    The step count doubles (capped at k) and the candidate count halves
    (rounded up) from rung to rung; the schedule stops at the rung that reaches
    k, or before a rung that would hold a single candidate (nothing left to
    compare). ``first_k`` >= k gives one rung: the plain search.
    """
    if m < 1 or k < 1 or first_k < 1:
        raise ValueError(f"halving needs m, k, first_k >= 1, got m={m}, k={k}, first_k={first_k}")
    rungs = []
    n, kr = m, min(first_k, k)
    while True:
        rungs.append(Rung(kr, n))
        if kr >= k:
            break
        n = math.ceil(n / 2)
        if n <= 1:
            break
        kr = min(2 * kr, k)
    return rungs


def halving_preview_nfe(rungs: list[Rung], truncated: bool) -> int:
    """Model evaluations of the previews: truncated rungs extend, short rungs restart."""
    total, previous = 0, 0
    for rung in rungs:
        total += rung.candidates * (rung.k - previous if truncated else rung.k)
        previous = rung.k
    return total


def keep_best(indices: list[int], scores: dict[int, float], count: int) -> list[int]:
    """The ``count`` best of ``indices`` by score (ties to the lower index), in index order."""
    ranked = sorted(indices, key=lambda j: (-scores[j], j))
    return sorted(ranked[:count])


# ---------------------------------------------------------------------------- preview strategies


class PlainPreview:
    """The paper's search: one rung, every one of m candidates previewed to step k.

    The chunk search asks a strategy, rung by rung, who is previewed
    (:meth:`survivors`), tells it each score (:meth:`note`), asks after each
    group of previews whether to stop (:meth:`stop`), and adds :meth:`cost`
    to the chunk's cost record. A strategy object serves one chunk.
    """

    def __init__(self, candidates: int, k: int) -> None:
        self.plan = [Rung(k, candidates)]

    def rungs(self) -> list[Rung]:
        return self.plan

    def survivors(self, rung: int, alive: list[int], scores: dict[int, float]) -> list[int]:
        """The candidates previewed on rung ``rung``, from those of the rung before and their ``scores``."""
        return alive

    def note(self, record: dict, score: float) -> None:
        """Each preview's score, with its candidate's record (``seed``, ``score``, ``frame_scores``)."""

    def stop(self, group: list[int], scores: dict[int, float]) -> bool:
        """After each group of previews: whether to stop previewing (``scores``: this rung's so far)."""
        return False

    def cost(self) -> dict:
        """What this strategy adds to the chunk's ``cost`` record."""
        return {}


class SuccessiveHalving(PlainPreview):
    """Rungs of growing preview length; each keeps the better half of the rung before (``cost["rungs"]``)."""

    def __init__(self, candidates: int, k: int, first_k: int) -> None:
        self.plan = halving_rungs(candidates, k, first_k)
        self.log: list[dict] = []

    def survivors(self, rung: int, alive: list[int], scores: dict[int, float]) -> list[int]:
        if rung > 0:
            alive = keep_best(alive, scores, self.plan[rung].candidates)
        self.log.append({"k": self.plan[rung].k, "candidates": list(alive)})
        return alive

    def note(self, record: dict, score: float) -> None:
        record.setdefault("rung_scores", []).append(score)

    def cost(self) -> dict:
        return {"rungs": self.log}


class EarlyAccept(PlainPreview):
    """The plain rung, stopped after the first group with a score of at least ``threshold`` (``cost["accepted"]``)."""

    def __init__(self, candidates: int, k: int, threshold: float) -> None:
        super().__init__(candidates, k)
        self.threshold = threshold
        self.accepted = None

    def stop(self, group: list[int], scores: dict[int, float]) -> bool:
        if max(scores.values()) < self.threshold:
            return False
        self.accepted = next(j for j in group if scores[j] >= self.threshold)
        return True

    def cost(self) -> dict:
        return {"accepted": self.accepted}


def preview_strategy(search) -> PlainPreview:
    """A fresh strategy for one chunk of ``search`` (:class:`SearchSettings`)."""
    if search.halving_k:
        return SuccessiveHalving(search.candidates, search.k, search.halving_k)
    if search.accept_score is not None:
        return EarlyAccept(search.candidates, search.k, search.accept_score)
    return PlainPreview(search.candidates, search.k)


@dataclass
class SearchChunkRecord(ChunkRecord):
    """A chunk record with a ``cost`` section, written only when a cost option is on.

    ``cost`` keys: ``nfe_formula`` (the plain search's m*k + s, or m*k + s - k
    with resume), ``nfe_saved`` (formula minus what this chunk used),
    ``frames_decoded`` (preview frames the VAE decoded), ``frames_scored``
    (preview frames handed to the scorer), ``preview_calls`` (sampler calls
    for previews: fewer than candidates when batched), and, when on,
    ``rungs`` (successive halving: k and candidate indices per rung) and
    ``accepted`` (early accept: the index that reached the threshold, or null).
    """

    cost: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = super().to_json()
        if not self.cost:
            data.pop("cost", None)
        return data


__all__ = [
    "EarlyAccept",
    "PlainPreview",
    "Rung",
    "SearchChunkRecord",
    "SuccessiveHalving",
    "frame_indices",
    "halving_preview_nfe",
    "halving_rungs",
    "keep_best",
    "preview_strategy",
]
