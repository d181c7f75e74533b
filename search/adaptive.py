"""Cheaper search: successive halving, early accept, preview frame subsets, cost records.

Host-agnostic (torch only). :func:`search_chunk <chunkwise.search.engine.search_chunk>`
uses these when the matching :class:`SearchSettings <chunkwise.search.engine.SearchSettings>`
options are on; with every option at its default the search is the paper's.

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

from .report import ChunkRecord


@dataclass(frozen=True)
class Rung:
    """One rung of successive halving: ``candidates`` previews, each run to step ``k``."""

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


def frame_indices(total: int, stride: int) -> list[int]:
    """Frames scored with ``preview_stride``: every ``stride``-th frame from the first, plus the last.

    The last frame always stays: it is the next chunk's guide, the frame a
    drifting chunk hurts most.
    """
    if total < 1:
        return []
    picked = list(range(0, total, max(1, int(stride))))
    if picked[-1] != total - 1:
        picked.append(total - 1)
    return picked


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
    "Rung",
    "SearchChunkRecord",
    "frame_indices",
    "halving_preview_nfe",
    "halving_rungs",
    "keep_best",
]
