"""VBench's quality dimensions as plain formulas, shared by the verifiers and the evaluator.

Each function follows one file of VBench (Vchitect/VBench, ``vbench/*.py``); the
file is named in its docstring. VBench is not a dependency (it pins numpy < 2 and
an old transformers): only its definitions are followed, on torch tensors.

Frames are taken as VBench reads a saved video: 8-bit RGB values. ``to_8bit``
turns frames in 0..1 into those values (rounded to nearest, as the pack writes
PNG frames), kept as float so the means below are exact.

Every function is torch in, torch out; none imports a model.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..search.errors import ChunkwiseError

VBENCH_SOURCES = {
    "subject_consistency": "vbench/subject_consistency.py (preprocessing: vbench/utils.py dino_transform)",
    "background_consistency": "vbench/background_consistency.py (preprocessing: vbench/utils.py clip_transform)",
    "temporal_flickering": "vbench/temporal_flickering.py",
    "motion_smoothness": "vbench/motion_smoothness.py (AMT-S; third_party/amt/utils/utils.py tensor2img)",
    "aesthetic_quality": "vbench/aesthetic_quality.py (preprocessing: vbench/utils.py clip_transform)",
}
"""Where each dimension's definition comes from in VBench's repository."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_SIZE = 224

Interpolator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``interpolate(first [n, H, W, 3], second [n, H, W, 3]) -> middle [n, H, W, 3]``, all in 0..1.

The frame half-way between each pair (VBench: AMT-S with ``embt = 0.5``); any
padding the model needs is its own business (AMT pads to a multiple of 16 and
crops back)."""


def to_8bit(frames: torch.Tensor) -> torch.Tensor:
    """Frames in 0..1 -> their 8-bit values 0..255 (rounded to nearest), as float32."""
    return (frames.float().clamp(0, 1) * 255).round()


# ---------------------------------------------------------------- subject / background consistency


def consistency_terms(features: torch.Tensor) -> torch.Tensor:
    """The per-frame terms of VBench's subject and background consistency.

    Follows ``vbench/subject_consistency.py`` and ``vbench/background_consistency.py``:
    with L2-normalised features ``f_0 .. f_{N-1}`` of one video, for ``i = 1..N-1``::

        term_i = ( max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i)) ) / 2

    and the video's score is the mean of the terms (:func:`consistency_score`).
    Returns ``[N-1]`` (empty for one frame). The ``f_0`` term is what catches
    drift over a long video; the ``f_{i-1}`` term catches jumps between frames.
    """
    if features.ndim != 2:
        raise ChunkwiseError(f"consistency needs features [N, D], got shape {list(features.shape)}")
    feats = F.normalize(features.float(), dim=-1)
    if feats.shape[0] < 2:
        return feats.new_zeros(0)
    to_first = (feats[1:] @ feats[0]).clamp(min=0)
    to_prev = (feats[1:] * feats[:-1]).sum(dim=-1).clamp(min=0)
    return (to_first + to_prev) / 2


def consistency_score(features: torch.Tensor) -> Optional[float]:
    """Mean of :func:`consistency_terms`; ``None`` for fewer than two frames (VBench divides by N-1)."""
    terms = consistency_terms(features)
    return float(terms.mean()) if terms.numel() else None


def dino_preprocess(frames: torch.Tensor, size: int = DINO_SIZE) -> torch.Tensor:
    """VBench's ``dino_transform(224)`` (``vbench/utils.py``) on frames ``[n, H, W, 3]`` in 0..1.

    On the 8-bit values: resize so the short side is ``size`` (bilinear,
    antialiased; the long side ``int(size * long / short)``, as torchvision's
    ``Resize(size)``), divide by 255, normalise with ImageNet's mean/std. There
    is no crop: the DINO ViT sees the whole frame, with its position embeddings
    resampled to the frame's patch grid. Returns ``[n, 3, h, w]``.
    """
    x = to_8bit(frames).movedim(-1, 1)
    h, w = x.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    hw = (size, new_long) if h <= w else (new_long, size)
    if (h, w) != hw:
        x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


# ---------------------------------------------------------------- temporal flickering


def flicker_pair_mae(frames8: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each pair of consecutive 8-bit frames ``[T, H, W, 3]`` -> ``[T-1]``.

    Follows ``vbench/temporal_flickering.py`` (``calculate_mae``: the mean over
    every pixel and channel of ``|x_{t+1} - x_t|``, in float).
    """
    if frames8.shape[0] < 2:
        return frames8.new_zeros(0)
    return (frames8[1:] - frames8[:-1]).abs().mean(dim=tuple(range(1, frames8.ndim)))


def flicker_from_mae(mae: torch.Tensor) -> Optional[float]:
    """VBench's temporal flickering from the pairs' MAE ``d_t``: ``(255 - mean_t d_t) / 255``; ``None`` for no pair."""
    return float((255.0 - mae.mean()) / 255.0) if mae.numel() else None


# ---------------------------------------------------------------- motion smoothness


def interpolation_triples(start: int, stop: int) -> list[int]:
    """The frames VBench's motion smoothness rebuilds in the video ``[start, stop)``.

    Follows ``vbench/motion_smoothness.py``: the even frames (counted from the
    video's first) are the model's inputs, each odd frame is interpolated from
    the two even frames around it, and an odd last frame (no even frame after
    it) is not scored. Returns the first frame ``s`` of each triple
    ``(s, s+1, s+2)``: ``start, start+2, ...`` while ``s + 2 < stop``.
    """
    return list(range(start, stop - 2, 2))


def interpolation_mae(first8: torch.Tensor, middle8: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """MAE between each real middle frame and the interpolated one, in 8-bit units ``[n]``.

    ``predicted`` (0..1, from the interpolation model) becomes 8-bit the way AMT's
    ``tensor2img`` does it (``vbench/third_party/amt/utils/utils.py``: times 255,
    clipped, cast to uint8, which truncates); the MAE is VBench's ``get_diff``
    (mean of ``cv2.absdiff`` over pixels and channels). ``first8`` only fixes the
    expected shape.
    """
    if predicted.shape != middle8.shape or first8.shape != middle8.shape:
        raise ChunkwiseError(
            f"the interpolation model returned frames of shape {list(predicted.shape)} for pairs of shape "
            f"{list(first8.shape)}; expected one middle frame [n, H, W, 3] per pair, at the frames' size"
        )
    pred8 = (predicted.float().to(middle8.device) * 255.0).clamp(0, 255).floor()
    return (pred8 - middle8).abs().mean(dim=tuple(range(1, middle8.ndim)))


def smoothness_from_mae(mae: torch.Tensor) -> Optional[float]:
    """VBench's motion smoothness from the rebuilt frames' MAE: ``(255 - mean) / 255``; ``None`` for none."""
    return float((255.0 - mae.mean()) / 255.0) if mae.numel() else None


def run_interpolator(interpolate: Interpolator, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Call ``interpolate`` without autograd and check it returned finite frames."""
    with torch.no_grad():
        out = interpolate(first, second)
    if not isinstance(out, torch.Tensor) or not torch.isfinite(out).all():
        raise ChunkwiseError(
            f"the interpolation model returned {type(out).__name__} with non-finite values or no tensor; "
            "expected the middle frames [n, H, W, 3] in 0..1"
        )
    return out


# ---------------------------------------------------------------- aesthetic quality


def aesthetic_values(embeddings: torch.Tensor, head: torch.nn.Module, source: str = "encoder") -> torch.Tensor:
    """Per-frame VBench aesthetic quality: the LAION head on L2-normalised CLIP embeddings, divided by 10.

    Follows ``vbench/aesthetic_quality.py`` (``aesthetic_model(normalize(encode_image(x))) / 10``;
    the video's score is the mean over its frames). The head must take the
    embedding size (768 for CLIP ViT-L/14, the model the LAION heads were trained on).
    """
    expected = getattr(head, "in_features", embeddings.shape[-1])
    if embeddings.shape[-1] != expected:
        raise ChunkwiseError(
            f"aesthetic head takes {expected}-dim embeddings, encoder {source!r} gives "
            f"{embeddings.shape[-1]}; use a CLIP ViT-L/14 encoder (768) with a LAION ViT-L/14 head"
        )
    param = next(head.parameters(), None)
    emb = F.normalize(embeddings.float(), dim=-1)
    if param is not None:
        emb = emb.to(param.device, param.dtype)
    with torch.no_grad():
        return head(emb).float().reshape(-1) / 10.0


def mean_or_none(values: Sequence[float] | torch.Tensor) -> Optional[float]:
    """The mean of ``values``, or ``None`` when there are none; never NaN."""
    if isinstance(values, torch.Tensor):
        return float(values.float().mean()) if values.numel() else None
    values = list(values)
    if not values:
        return None
    mean = sum(values) / len(values)
    return mean if math.isfinite(mean) else None


__all__ = [
    "DINO_SIZE",
    "Interpolator",
    "VBENCH_SOURCES",
    "aesthetic_values",
    "consistency_score",
    "consistency_terms",
    "dino_preprocess",
    "flicker_from_mae",
    "flicker_pair_mae",
    "interpolation_mae",
    "interpolation_triples",
    "mean_or_none",
    "run_interpolator",
    "smoothness_from_mae",
    "to_8bit",
]
