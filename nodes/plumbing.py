"""ComfyUI plumbing for the engine: progress bar, previews, interruption, scorer choice."""

from __future__ import annotations

import logging

import comfy.model_management
import comfy.utils
import torch
from PIL import Image

from ..search.engine import Hooks
from ..search.errors import ChunkwiseError

log = logging.getLogger("chunkwise")

PREVIEW_SIZE = 512


def to_pil(frame: torch.Tensor) -> Image.Image:
    """One IMAGE frame [H, W, 3] in 0..1 -> PIL image."""
    array = (frame.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype("uint8")
    return Image.fromarray(array)


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
        scores = " ".join("-" if c["score"] is None else f"{c['score']:.4f}" for c in record.candidates)
        line = (f"chunk {record.index}: winner {record.chosen} (seed {record.chosen_seed}) of [{scores}], "
                f"{sum(record.seconds.values()):.1f}s")
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
