"""Shared checks and helpers for the verifiers (torch only)."""

from __future__ import annotations

import logging
import math
from typing import Optional

import torch

from ..search.errors import ChunkwiseError, check_finite

logger = logging.getLogger("chunkwise")


def check_frames(frames, what: str = "preview") -> torch.Tensor:
    """Return ``frames`` as ``[T, H, W, 3]`` float, or raise a message with the shape got and the fix."""
    if not isinstance(frames, torch.Tensor):
        raise ChunkwiseError(f"{what} must be a torch.Tensor [T, H, W, 3], got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ChunkwiseError(
            f"{what} must have shape [T, H, W, 3] (ComfyUI IMAGE), got shape {list(frames.shape)}; "
            "pass decoded RGB frames, not latents"
        )
    if frames.shape[0] < 1 or frames.shape[1] < 1 or frames.shape[2] < 1:
        raise ChunkwiseError(f"{what} is empty: shape {list(frames.shape)}")
    if not frames.is_floating_point():
        raise ChunkwiseError(f"{what} must be float with values in 0..1, got dtype {frames.dtype}; divide by 255")
    return check_finite(frames, what)


def require_weight(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    value = float(value)
    if math.isnan(value) or value < low or value > high:
        raise ChunkwiseError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def same_image(a: torch.Tensor, b: Optional[torch.Tensor]) -> bool:
    """True when ``b`` is ``a`` or holds the same values (the anchor of the first chunk is its guide)."""
    if b is None:
        return False
    if a is b:
        return True
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)


def cosine_rows(ref: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Cosine of one L2-normalised reference ``[D]`` or ``[1, D]`` with each row of ``emb`` ``[N, D]``."""
    ref = ref.reshape(-1).to(device=emb.device, dtype=emb.dtype)
    return emb @ ref
