"""More verifiers on the same protocol: consistency, flicker, motion, aesthetics.

Each class states its formula. All return higher-is-better scores; combine
them with :class:`~.composite.Composite`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..search.errors import ChunkwiseError, check_image
from ..search.images import frame_indices, require_stride
from ..search.protocols import CandidateScore, Scorer
from .base import check_frames
from .encoders import ImageEncoder, load_weights_file
from .vbench import aesthetic_values, consistency_terms, flicker_from_mae, flicker_pair_mae, to_8bit


class _Context:
    """A context that scores previews one by one with a function of the preview."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def score(self, previews: Sequence[torch.Tensor]) -> list[CandidateScore]:
        return [self.fn(check_frames(p)) for p in previews]


# ---------------------------------------------------------------- subject consistency


class SubjectConsistency(Scorer):
    """VBench subject consistency on DINO-style features ``f_t`` (L2-normalised)::

        score = 1/(T'-1) * sum_{t=2..T'} ( max(0, cos(f_1, f_t)) + max(0, cos(f_{t-1}, f_t)) ) / 2

    over the sequence ``F = [guide] + V[J]`` when ``use_guide`` (the guide
    plays VBench's first frame, so the chunk must stay the subject it was
    given), else ``F = V[J]``; ``J`` = every ``frame_stride``-th frame plus the
    last, ``T' = len(F)``. In 0..1. ``frame_scores`` are the per-frame terms
    for ``t = 2..T'``. A one-frame sequence scores 1. VBench uses DINO ViT-B/16
    features; any encoder works (a DINOv2 CLIP_VISION or transformers folder).
    The terms are :func:`~.vbench.consistency_terms`, which the evaluator shares.
    """

    name = "subject-consistency"

    def __init__(self, encoder: ImageEncoder, frame_stride: int = 1, use_guide: bool = True) -> None:
        self.encoder = encoder
        self.frame_stride = require_stride(frame_stride)
        self.use_guide = bool(use_guide)

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> _Context:
        guide_emb = self.encoder.encode(check_image(guide))[:1] if self.use_guide else None

        def fn(preview: torch.Tensor) -> CandidateScore:
            feats = self.encoder.encode(preview[frame_indices(preview.shape[0], self.frame_stride)])
            if guide_emb is not None:
                feats = torch.cat([guide_emb.to(feats.device), feats], dim=0)
            if feats.shape[0] < 2:
                return CandidateScore(1.0, [])
            terms = consistency_terms(feats).tolist()
            return CandidateScore(sum(terms) / len(terms), terms)

        return _Context(fn)

    def describe(self) -> str:
        return f"{self.name}[{self.encoder.describe()}] frame_stride={self.frame_stride} use_guide={self.use_guide}"


# ---------------------------------------------------------------- temporal flicker


class TemporalFlicker(Scorer):
    """VBench temporal flickering: frames quantised to 8 bits ``x_t`` (0..255)::

        d_t   = mean over pixels and channels of |x_{t+1} - x_t|,   t = 0..T-2
        score = (255 - mean_t d_t) / 255

    1 for a frozen video, lower the more consecutive frames differ.
    ``frame_scores`` are ``(255 - d_t) / 255``. A one-frame preview scores 1.
    It rewards stillness as much as smoothness: pair it with :class:`MotionGuard`.
    The formula is :func:`~.vbench.flicker_pair_mae`, which the evaluator shares.
    """

    name = "temporal-flicker"

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> _Context:
        def fn(preview: torch.Tensor) -> CandidateScore:
            if preview.shape[0] < 2:
                return CandidateScore(1.0, [])
            d = flicker_pair_mae(to_8bit(preview))
            per_pair = ((255.0 - d) / 255.0).tolist()
            return CandidateScore(flicker_from_mae(d), per_pair)

        return _Context(fn)


# ---------------------------------------------------------------- motion guard


class MotionGuard(Scorer):
    """Penalty for near-static previews; 0 for any preview that moves enough::

        y_t   = frame t averaged over RGB, area-downsampled so its short side is at most ``size`` px
        m_t   = mean |y_{t+1} - y_t|           (0..1 scale),  t = 0..T-2
        m     = mean_t m_t
        score = -max(0, 1 - m / min_motion)    (in -1..0)

    A frozen preview scores -1, one with mean motion ``>= min_motion`` scores 0,
    so in a :class:`~.composite.Composite` it never reorders candidates that
    all move, only pushes down those that barely do (which a min-over-frames
    CLIP score favours). Downsampling first makes ``m`` measure motion of
    structures rather than decoder noise. ``frame_scores`` are the ``m_t``.
    A one-frame preview scores -1.
    """

    name = "motion-guard"

    def __init__(self, min_motion: float = 0.02, size: int = 64) -> None:
        if not (0 < float(min_motion) <= 1):
            raise ChunkwiseError(f"min_motion must be in (0, 1], got {min_motion}; try 0.01-0.05")
        if int(size) < 1:
            raise ChunkwiseError(f"size must be at least 1 pixel, got {size}")
        self.min_motion = float(min_motion)
        self.size = int(size)

    def motion(self, preview: torch.Tensor) -> torch.Tensor:
        """Per-pair motion ``m_t`` of a preview ``[T, H, W, 3]`` (float32)."""
        y = preview.float().clamp(0, 1).mean(dim=-1, keepdim=True).movedim(-1, 1)  # [T, 1, H, W]
        short = min(y.shape[-2:])
        if short > self.size:
            scale = self.size / short
            hw = (max(1, round(y.shape[-2] * scale)), max(1, round(y.shape[-1] * scale)))
            y = F.interpolate(y, size=hw, mode="area")
        return (y[1:] - y[:-1]).abs().mean(dim=(1, 2, 3))

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> _Context:
        def fn(preview: torch.Tensor) -> CandidateScore:
            if preview.shape[0] < 2:
                return CandidateScore(-1.0, [])
            m_t = self.motion(preview)
            penalty = max(0.0, 1.0 - float(m_t.mean()) / self.min_motion)
            return CandidateScore(-penalty, m_t.tolist())

        return _Context(fn)

    def describe(self) -> str:
        return f"{self.name} min_motion={self.min_motion:g}"


# ---------------------------------------------------------------- aesthetic head


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


class LinearHead(torch.nn.Module):
    """A chain of linear layers with no activations between them.

    This covers both LAION heads: the linear aesthetic predictor
    (``nn.Linear(768, 1)``: keys ``weight``, ``bias``) and the "improved"
    predictor's MLP (``layers.0/2/4/6/7``; it has dropouts but no
    non-linearities, so at inference it is a chain of linears).
    """

    def __init__(self, state_dict: dict[str, torch.Tensor], source: str = "aesthetic head") -> None:
        super().__init__()
        weights = sorted((k for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2), key=_natural)
        if not weights:
            raise ChunkwiseError(
                f"{source} holds no linear layer weights (keys: {list(state_dict)[:6]}); expected a LAION "
                "aesthetic head, e.g. sa_0_4_vit_l_14_linear.pth (weight [1, 768], bias [1])"
            )
        layers = []
        for key in weights:
            w = state_dict[key].float()
            b = state_dict.get(key[: -len("weight")] + "bias")
            if layers and layers[-1].out_features != w.shape[1]:
                raise ChunkwiseError(
                    f"{source}: layer {key} takes {w.shape[1]} inputs, the one before gives {layers[-1].out_features}"
                )
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b.float())
            layers.append(lin)
        if layers[-1].out_features != 1:
            raise ChunkwiseError(f"{source} must end in one output, got {layers[-1].out_features}")
        self.layers = torch.nn.Sequential(*layers)
        self.in_features = layers[0].in_features
        self.requires_grad_(False)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.layers(emb).squeeze(-1)


def load_aesthetic_head(path) -> LinearHead:
    """A LAION-style aesthetic head from a local file (safetensors or ``torch.load(weights_only=True)``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"aesthetic head not found: {str(path)!r}; put a LAION aesthetic predictor for CLIP ViT-L/14 "
            "(e.g. sa_0_4_vit_l_14_linear.pth from LAION-AI/aesthetic-predictor) in ComfyUI's models/aesthetic/"
        )
    return LinearHead(load_weights_file(path), source=repr(str(path)))


class AestheticScore(Scorer):
    """LAION-style aesthetic head on CLIP ViT-L/14 image embeddings ``e_j`` (L2-normalised)::

        a_j   = head(e_j)                 (about 1..10 for the LAION predictors)
        score = mean over j in J of a_j / 10      (VBench's aesthetic-quality normalisation)

    ``J`` = every ``frame_stride``-th frame plus the last. ``frame_scores``
    are the ``a_j / 10``. The head must take the encoder's embedding size
    (768 for ViT-L/14); the guide is not used. The values are
    :func:`~.vbench.aesthetic_values`, which the evaluator shares.
    """

    name = "aesthetic"

    def __init__(self, encoder: ImageEncoder, head: torch.nn.Module, frame_stride: int = 1) -> None:
        self.encoder = encoder
        self.head = head.eval()
        self.frame_stride = require_stride(frame_stride)

    def prepare(self, guide: torch.Tensor, anchor: Optional[torch.Tensor] = None) -> _Context:
        def fn(preview: torch.Tensor) -> CandidateScore:
            emb = self.encoder.encode(preview[frame_indices(preview.shape[0], self.frame_stride)])
            a = aesthetic_values(emb, self.head, self.encoder.describe())
            return CandidateScore(float(a.mean()), a.tolist())

        return _Context(fn)

    def describe(self) -> str:
        return f"{self.name}[{self.encoder.describe()}] frame_stride={self.frame_stride}"
