"""Verifiers that score k-step previews: CLIP min-cosine and friends.

Never imports ComfyUI, and imports open_clip/transformers only inside the
backend constructors. All scorers implement :class:`chunkwise.search.Scorer`
(``prepare(guide, anchor) -> context``, ``context.score(previews)``).
"""

from ..search.errors import ChunkwiseError
from ..search.images import frame_indices
from ..search.protocols import Scorer
from .clip import ClipMinCosine, ClipMinCosineContext
from .composite import Composite, CompositeScore
from .encoders import (
    CallableEncoder,
    ComfyClipVisionEncoder,
    ImageEncoder,
    OpenClipEncoder,
    TransformersEncoder,
    load_weights_file,
)
from .verifiers import AestheticScore, LinearHead, MotionGuard, SubjectConsistency, TemporalFlicker, load_aesthetic_head


def as_scorer(obj, anchor_weight: float = 0.0, frame_stride: int = 1) -> Scorer:
    """A SCORER as is, or a CLIP_VISION (anything with ``encode_image``) as the paper's :class:`ClipMinCosine`.

    Nodes that accept "CLIP_VISION or SCORER" call this; ``anchor_weight`` and
    ``frame_stride`` apply only to a plain CLIP_VISION.
    """
    if isinstance(obj, Scorer):
        return obj
    if callable(getattr(obj, "encode_image", None)):
        return ClipMinCosine(ComfyClipVisionEncoder(obj), anchor_weight=anchor_weight, frame_stride=frame_stride)
    raise ChunkwiseError(
        f"expected a CLIP_VISION or a chunkwise SCORER, got {type(obj).__name__}; "
        "connect a Load CLIP Vision node or a Chunkwise scorer node"
    )


__all__ = [
    "AestheticScore",
    "CallableEncoder",
    "ClipMinCosine",
    "ClipMinCosineContext",
    "ComfyClipVisionEncoder",
    "Composite",
    "CompositeScore",
    "ImageEncoder",
    "LinearHead",
    "MotionGuard",
    "OpenClipEncoder",
    "SubjectConsistency",
    "TemporalFlicker",
    "TransformersEncoder",
    "as_scorer",
    "frame_indices",
    "load_aesthetic_head",
    "load_weights_file",
]
