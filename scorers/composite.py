"""A weighted sum of verifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from ..search.errors import ChunkwiseError
from ..search.protocols import CandidateScore, Scorer


@dataclass
class CompositeScore(CandidateScore):
    """A :class:`CandidateScore` that also keeps each part's score, by part name."""

    components: dict[str, float] = field(default_factory=dict)


class Composite(Scorer):
    """``score = sum_i w_i * score_i`` over ``parts = [(scorer_i, w_i), ...]``.

    Weights are used as given (not normalised), so they state the trade-off in
    each part's own units: e.g. ``[(ClipMinCosine, 1.0), (MotionGuard, 0.1)]``
    costs a static preview up to 0.1 of CLIP cosine. Each part prepares once
    per chunk. ``frame_scores`` are the first part's; ``components`` holds
    every part's score (names made unique with ``#2``, ``#3``).
    """

    name = "composite"

    def __init__(self, parts: Sequence[tuple[Scorer, float]]) -> None:
        parts = list(parts)
        if not parts:
            raise ChunkwiseError("a composite scorer needs at least one (scorer, weight) part, got none")
        names: list[str] = []
        for i, part in enumerate(parts):
            if not (isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], Scorer)):
                raise ChunkwiseError(f"composite part {i} must be a (Scorer, weight) pair, got {part!r}")
            base = getattr(part[0], "name", "scorer")
            name, n = base, 2
            while name in names:
                name, n = f"{base}#{n}", n + 1
            names.append(name)
        self.parts = [(s, float(w)) for s, w in parts]
        self.names = names

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> "CompositeContext":
        return CompositeContext(self, [s.prepare(guide, anchor) for s, _ in self.parts])

    def describe(self) -> str:
        inner = " + ".join(f"{w:g}*{s.describe()}" for s, w in self.parts)
        return f"{self.name}({inner})"


class CompositeContext:
    def __init__(self, composite: Composite, contexts: list) -> None:
        self.composite = composite
        self.contexts = contexts

    def score(self, previews: Sequence[torch.Tensor]) -> list[CandidateScore]:
        per_part = [ctx.score(previews) for ctx in self.contexts]
        out = []
        for i in range(len(previews)):
            total, components = 0.0, {}
            for name, (_, weight), scores in zip(self.composite.names, self.composite.parts, per_part, strict=True):
                if len(scores) != len(previews):
                    raise ChunkwiseError(f"part {name!r} returned {len(scores)} scores for {len(previews)} previews")
                components[name] = float(scores[i].score)
                total += weight * components[name]
            out.append(
                CompositeScore(score=total, frame_scores=list(per_part[0][i].frame_scores), components=components)
            )
        return out
