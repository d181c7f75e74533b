"""ComfyUI plumbing for the engine: progress bar, previews, interruption, scorer choice."""

from __future__ import annotations

import logging
from typing import Optional

import comfy.model_management
import comfy.utils
import torch

from ..search.engine import Hooks
from ..search.errors import ChunkwiseError
from ..search.images import to_pil
from ..search.report import chunk_line

log = logging.getLogger("chunkwise")

PREVIEW_SIZE = 512


SUMMARY_LINES = 12
"""Per-chunk lines shown on the node while a run goes on (the latest ones)."""


def show_text(text: str, node_id) -> None:
    """Text on the node in the editor while it runs (ComfyUI's progress text); nothing without a server."""
    if node_id is None:
        return
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is not None and hasattr(instance, "send_progress_text"):
        instance.send_progress_text(text, node_id)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def widget_problem(node_cls, *, fixes: Optional[dict] = None, multiples: Optional[dict] = None,
                   **values) -> Optional[str]:
    """Check widget values against the node's own schema (min/max, combo options), plus ``multiples``.

    ComfyUI skips its own range and combo checks for every input named in a node's
    ``validate_inputs`` signature, so such a node checks them here. ``None`` values
    (linked inputs) are skipped; ``fixes`` adds a hint per input to its message.
    """
    inputs = {i.id: i for i in node_cls.define_schema().inputs}
    fixes, multiples = fixes or {}, multiples or {}
    for name, value in values.items():
        if value is None:
            continue
        widget = inputs[name]
        hint = f"; {fixes[name]}" if name in fixes else ""
        low, high = getattr(widget, "min", None), getattr(widget, "max", None)
        if low is not None and high is not None and not low <= value <= high:
            return f"{name} must be between {_number(low)} and {_number(high)}, got {value}{hint}"
        options = getattr(widget, "options", None)
        if options is not None and value not in options:
            return f"{name} must be one of {list(options)}, got {value!r}{hint}"
        multiple = multiples.get(name)
        if multiple and value % multiple:
            return f"{name} must be a multiple of {multiple}, got {value}; use {max(multiple, value // multiple * multiple)}"
    return None


def comfy_hooks(total_hint: int = 1, node_id=None) -> Hooks:
    """Hooks that drive one ComfyUI progress bar over the whole run and honour Cancel."""
    bar = comfy.utils.ProgressBar(max(1, total_hint), node_id=node_id)

    def on_progress(done: int, total: int) -> None:
        bar.update_absolute(done, max(1, total))

    def on_preview(chunk: int, candidate: int, frames: torch.Tensor, score) -> None:
        frame = frames[frames.shape[0] // 2]
        bar.update_absolute(bar.current, bar.total, ("JPEG", to_pil(frame), PREVIEW_SIZE))
        log.info("chunk %d candidate %d: score %.4f", chunk, candidate, score.score)

    lines: list[str] = []

    def on_chunk(record, frames: torch.Tensor) -> None:
        bar.update_absolute(bar.current, bar.total, ("JPEG", to_pil(frames[-1]), PREVIEW_SIZE))
        line = chunk_line(record)
        log.info("%s", line)
        lines.append(line)
        show_text("\n".join(lines[-SUMMARY_LINES:]), node_id)

    return Hooks(
        check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted,
        on_progress=on_progress,
        on_preview=on_preview,
        on_chunk=on_chunk,
    )


def resolve_scorer(clip_vision=None, scorer=None, *, needed: bool = True):
    """A SCORER wins; a CLIP_VISION becomes the paper's CLIP min-cosine scorer."""
    if scorer is not None:
        return scorer
    if clip_vision is not None:
        from ..scorers import ClipMinCosine, ComfyClipVisionEncoder

        return ClipMinCosine(ComfyClipVisionEncoder(clip_vision))
    if needed:
        raise ChunkwiseError(
            "search needs a verifier, got neither clip_vision nor scorer; connect a CLIP_VISION "
            "(e.g. CLIPVisionLoader with clip_vision_h.safetensors) or a SCORER, or set candidates to 1"
        )
    return None
