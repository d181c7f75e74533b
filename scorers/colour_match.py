"""A verifier that needs no weights: how far each preview frame's colours moved from the guide's, in CIE Lab.

CLIP's min-cosine asks, through a learned embedding, whether every frame still
looks like the guide. Without any model file, the part of that question that can
be answered honestly is the colour: the drift users of long-video workflows
complain about most (colour casts, contrast and saturation creeping up chunk
after chunk). This scorer measures exactly that, with the same statistic the
evaluation reports as colour drift (``search.colour.colour_drift``), worst frame
first, in the shape of the paper's score. It needs nothing downloaded, so it is
what the toy world demo (``nodes/toy_world.py``) searches with.

What it does not see: shapes. Statistics over all pixels ignore where the pixels
are, so motion costs nothing (unlike CLIP's min-cosine, it does not reward still
chunks), and neither does a distortion that keeps the colours, a changed subject
or lost detail. Use it with a CLIP or DINO scorer (Chunkwise Composite Scorer)
when those matter.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..search.colour import colour_stats
from ..search.errors import ChunkwiseError, check_image
from ..search.images import frame_indices, require_stride
from ..search.protocols import CandidateScore, Scorer
from .base import check_frames, require_weight

LAB_SCALE = 100.0
"""Lab distances are divided by this (the L axis spans 0..100): a score of 1 means the same colours."""


def _require_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise ChunkwiseError(f"thumbnail size must be an integer in 8..1024, got {size!r}; use 64")
    return size


def thumbnails(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images ``[N, H, W, 3]`` area-averaged so the longer side is at most ``size`` (aspect kept)."""
    h, w = images.shape[1:3]
    scale = min(1.0, size / max(h, w))
    if scale == 1.0:
        return images[..., :3].float()
    out = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(images[..., :3].movedim(-1, 1).float(), size=out, mode="area").movedim(1, -1)


def lab_distance(stats: tuple[torch.Tensor, torch.Tensor], ref: tuple[torch.Tensor, torch.Tensor]) -> float:
    """``|mean - mean_ref| + |std - std_ref|`` of per-channel Lab statistics (``search.colour.colour_drift``)."""
    return float(torch.linalg.vector_norm(stats[0] - ref[0]) + torch.linalg.vector_norm(stats[1] - ref[1]))


class ColourMatch(Scorer):
    """Score a k-step preview ``V`` against the guide ``g`` (and the anchor ``a``) with no model::

        D(x, y) = |mean_Lab(x) - mean_Lab(y)| + |std_Lab(x) - std_Lab(y)|      (per-channel statistics)
        s_j     = 1 - ((1 - w) * D(V[j], g) + w * D(V[j], a)) / 100
        score   = min over j in J of s_j

    statistics over the pixels of a thumbnail whose longer side is ``size``, ``w = anchor_weight``,
    ``J = {0, n, 2n, ...} ∪ {T-1}`` for ``n = frame_stride``. ``D`` is the evaluation's colour drift
    (about 2.3 is just noticeable); 1 means the frame has the guide's colours. With an anchor (the
    video's first image) and ``w > 0``, drift that earlier chunks already accumulated counts too.
    """

    name = "colour-match"

    def __init__(self, size: int = 64, anchor_weight: float = 0.0, frame_stride: int = 1) -> None:
        self.size = _require_size(size)
        self.anchor_weight = require_weight("anchor_weight", anchor_weight)
        self.frame_stride = require_stride(frame_stride)

    def stats(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return colour_stats(thumbnails(image, self.size), "lab")

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> "_ColourContext":
        reference = self.stats(check_image(guide, "guide image"))
        anchor_ref, weight = reference, 0.0
        if anchor is not None and self.anchor_weight > 0:
            anchor_ref, weight = self.stats(check_image(anchor, "anchor image")), self.anchor_weight
        return _ColourContext(self, reference, anchor_ref, weight)

    def describe(self) -> str:
        return (f"{self.name}[Lab mean/std, thumbnails {self.size}px, no weights] "
                f"anchor_weight={self.anchor_weight:g} frame_stride={self.frame_stride}")


class _ColourContext:
    def __init__(self, scorer: ColourMatch, guide, anchor, weight: float) -> None:
        self.scorer, self.guide, self.anchor, self.weight = scorer, guide, anchor, weight

    def frame_scores(self, preview: torch.Tensor) -> list[float]:
        preview = check_frames(preview)
        thumbs = thumbnails(preview[frame_indices(preview.shape[0], self.scorer.frame_stride)], self.scorer.size)
        out = []
        for frame in thumbs:
            stats = colour_stats(frame, "lab")
            d = lab_distance(stats, self.guide)
            if self.weight > 0:
                d = (1.0 - self.weight) * d + self.weight * lab_distance(stats, self.anchor)
            out.append(1.0 - d / LAB_SCALE)
        return out

    def score(self, previews: Sequence[torch.Tensor]) -> list[CandidateScore]:
        out = []
        for preview in previews:
            per_frame = self.frame_scores(preview)
            out.append(CandidateScore(score=min(per_frame), frame_scores=per_frame))
        return out


__all__ = ["ColourMatch", "lab_distance", "thumbnails"]
