"""The paper's verifier: minimum over frames of CLIP cosine to the guide image."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..search.errors import check_image
from ..search.images import frame_indices, require_stride
from ..search.protocols import CandidateScore, Scorer
from .base import check_frames, cosine_rows, require_weight, same_image
from .encoders import ImageEncoder


class ClipMinCosine(Scorer):
    """Score a k-step preview ``V`` (frames ``V[0..T-1]``) against the guide ``g`` and anchor ``a``::

        s_j   = (1 - w) * cos(E(g), E(V[j])) + w * cos(E(a), E(V[j]))
        score = min over j in J of s_j

    with ``E`` the encoder's L2-normalised embedding, ``w = anchor_weight`` and
    ``J = {0, n, 2n, ...} ∪ {T-1}`` for ``n = frame_stride`` (frame 0 and the
    last frame are always scored). With ``w = 0`` (the default), or with no
    anchor given, this is exactly the paper's ``min_j cos(CLIP(g), CLIP(V[j]))``
    (arXiv 2411.18668). The anchor is the original first image of the video:
    scoring against it too penalises drift that earlier chunks already
    accumulated, which the current guide alone has absorbed.

    ``frame_scores`` are the ``s_j`` for ``j`` in ``J``, in frame order.
    ``prepare`` encodes the guide and the anchor once per chunk (one encoder
    call; the anchor is not encoded again when it equals the guide); each
    ``score`` call then encodes only the previews' scored frames.
    """

    name = "clip-min-cos"

    def __init__(self, encoder: ImageEncoder, anchor_weight: float = 0.0, frame_stride: int = 1) -> None:
        self.encoder = encoder
        self.anchor_weight = require_weight("anchor_weight", anchor_weight)
        self.frame_stride = require_stride(frame_stride)

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> "ClipMinCosineContext":
        # 1. Check the references.
        guide = check_image(guide, "guide image")
        use_anchor = anchor is not None and self.anchor_weight > 0
        if use_anchor:
            anchor = check_image(anchor, "anchor image")
        # 2. Encode guide (and anchor) once for every candidate of this chunk.
        if not use_anchor or same_image(guide, anchor):
            g = self.encoder.encode(guide)[0]
            a = g
        elif guide.shape == anchor.shape:
            both = self.encoder.encode(torch.cat([guide, anchor.to(guide.device, guide.dtype)], dim=0))
            g, a = both[0], both[1]
        else:
            g = self.encoder.encode(guide)[0]
            a = self.encoder.encode(anchor)[0]
        weight = self.anchor_weight if use_anchor else 0.0
        return ClipMinCosineContext(self, g, a, weight)

    def describe(self) -> str:
        return (
            f"{self.name}[{self.encoder.describe()}] anchor_weight={self.anchor_weight:g} "
            f"frame_stride={self.frame_stride}"
        )


class ClipMinCosineContext:
    """One chunk's cached guide/anchor embeddings; scores any number of previews."""

    def __init__(self, scorer: ClipMinCosine, guide_emb: torch.Tensor, anchor_emb: torch.Tensor, weight: float):
        self.scorer = scorer
        self.guide_emb = guide_emb
        self.anchor_emb = anchor_emb
        self.weight = weight

    def frame_similarities(self, preview: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        """The scored frame indices and their ``s_j`` (float32, on the encoder's device)."""
        preview = check_frames(preview)
        idx = frame_indices(preview.shape[0], self.scorer.frame_stride)
        emb = self.scorer.encoder.encode(preview[idx])
        sims = cosine_rows(self.guide_emb, emb)
        if self.weight > 0:
            sims = (1.0 - self.weight) * sims + self.weight * cosine_rows(self.anchor_emb, emb)
        return idx, sims

    def score(self, previews: Sequence[torch.Tensor]) -> list[CandidateScore]:
        out = []
        for preview in previews:
            _, sims = self.frame_similarities(preview)
            per_frame = sims.tolist()
            out.append(CandidateScore(score=min(per_frame), frame_scores=per_frame))
        return out
