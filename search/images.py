"""Frames as 8-bit pictures, and which frames of a preview are scored: written once for every host.

Frames are ``[T, H, W, 3]`` float tensors in 0..1 (ComfyUI's IMAGE layout).
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ChunkwiseError


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames ``[..., H, W, 3]`` in 0..1 -> a uint8 array of the same shape, rounded to nearest, on the CPU."""
    return (frames.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()


def to_pil(frame: torch.Tensor):
    """One frame ``[H, W, 3]`` in 0..1 -> an 8-bit RGB PIL image (see :func:`to_uint8`)."""
    from PIL import Image

    return Image.fromarray(to_uint8(frame))


def require_stride(frame_stride) -> int:
    """``frame_stride`` as an integer >= 1, or raise."""
    if isinstance(frame_stride, bool) or not isinstance(frame_stride, int) or frame_stride < 1:
        raise ChunkwiseError(
            f"frame_stride must be an integer >= 1, got {frame_stride!r}; use 1 to score every frame, "
            "2-4 to score faster"
        )
    return frame_stride


def frame_indices(count: int, frame_stride: int = 1) -> list[int]:
    """Frames scored out of ``count``: every ``frame_stride``-th from the first, and always the last one.

    The last frame always stays: it is the next chunk's guide, the frame a
    drifting chunk hurts most.

    >>> frame_indices(25, 4)
    [0, 4, 8, 12, 16, 20, 24]
    >>> frame_indices(10, 4)
    [0, 4, 8, 9]
    """
    if count < 1:
        raise ChunkwiseError(f"a preview needs at least one frame, got {count}; check the denoiser's decode()")
    picked = list(range(0, count, require_stride(frame_stride)))
    if picked[-1] != count - 1:
        picked.append(count - 1)
    return picked


__all__ = ["frame_indices", "require_stride", "to_pil", "to_uint8"]
