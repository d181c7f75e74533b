"""Verifiers that score k-step previews: CLIP min-cosine and friends.

Never imports ComfyUI, and imports open_clip/transformers only inside the
backend constructors. All scorers implement :class:`chunkwise.search.Scorer`
(``prepare(guide, anchor) -> context``, ``context.score(previews)``).
"""

from ..search.images import frame_indices
from .clip import ClipMinCosine, ClipMinCosineContext
from .colour_match import ColourMatch
from .composite import Composite, CompositeScore
from .encoders import (
    CallableEncoder,
    ComfyClipVisionEncoder,
    ImageEncoder,
    TransformersEncoder,
    load_weights_file,
)
from .open_clip_encoder import OpenClipEncoder
from .verifiers import AestheticScore, LinearHead, MotionGuard, SubjectConsistency, TemporalFlicker, load_aesthetic_head

__all__ = [
    "AestheticScore",
    "CallableEncoder",
    "ClipMinCosine",
    "ClipMinCosineContext",
    "ColourMatch",
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
    "frame_indices",
    "load_aesthetic_head",
    "load_weights_file",
]
