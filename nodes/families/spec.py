"""What a model family declares: its :class:`FamilySpec` (data) and its :class:`Family` (the inputs of
one binding, and the small function that runs the stock conditioning node on them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

from ...search.errors import ChunkwiseError
from ..host.batching import BATCH_RULES


@dataclass(frozen=True)
class SamplerDefaults:
    """The binding node's sampler defaults: the stock template's, except the sampler, which is euler
    everywhere (a truncated preview resumes exactly with it)."""

    steps: int = 20
    cfg: float = 2.5
    sampler_name: str = "euler"
    scheduler: str = "karras"


def _multiple_problem(name: str, value, multiple: int) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < multiple:
        return (f"{name} must be a positive integer multiple of {multiple}, got {value!r}; "
                f"round it to a multiple of {multiple}")
    if value % multiple:
        return f"{name} must be a multiple of {multiple}, got {value}; use {max(multiple, value // multiple * multiple)}"
    return None


@dataclass(frozen=True)
class SizeRule:
    """The frame sizes and chunk lengths a family's stock node takes.

    Written once, checked twice: by the binding node's ``validate_inputs`` (before any model
    loads) and when the family is built (:meth:`check`).
    """

    multiple: int
    """Width and height are positive multiples of this (the VAE's and the patch size's product)."""
    frames: str
    """The name of the chunk-length input (``video_frames``, ``length``)."""
    frames_step: int = 1
    """Chunk lengths are ``frames_step * n + 1`` (Wan: 4, its VAE packs 4 frames per latent); 1: any."""
    frames_why: str = ""
    """Why the length rule holds, for its message (e.g. ``the Wan VAE packs 4 frames per latent``)."""
    frames_fix: str = ""
    """What to use instead of a length below 1 (e.g. ``use 14 (SVD) or 25 (SVD-XT)``)."""

    def problem(self, *, width=None, height=None, frames=None) -> Optional[str]:
        """The first value the stock node would refuse, as a message (None: all fine, or not given)."""
        for name, value in (("width", width), ("height", height)):
            problem = _multiple_problem(name, value, self.multiple)
            if problem:
                return problem
        if frames is None:
            return None
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            return f"{self.frames} must be an integer >= 1, got {frames!r}; {self.frames_fix}"
        if self.frames_step > 1 and (frames - 1) % self.frames_step:
            low = frames - (frames - 1) % self.frames_step
            return (f"{self.frames} must be {self.frames_step}*n + 1 frames ({self.frames_why}), got {frames}; "
                    f"use {low} or {low + self.frames_step}")
        return None

    def check(self, family: str, *, width, height, frames) -> None:
        problem = self.problem(width=width, height=height, frames=frames)
        if problem:
            raise ChunkwiseError(f"{family} {problem}")


@dataclass(frozen=True)
class FamilySpec:
    """A model family as data: everything about it that is not the call of its stock node."""

    name: str
    """Shown in describe() and in errors: ``SVD``, ``Wan I2V``."""
    node: str
    """The stock ComfyUI node that conditions a chunk on its start image (its family's condition() calls it)."""
    batch: str
    """How candidates share a sampler call (nodes/host/batching.py): ``batch`` (repeat the latent along B),
    ``frames`` (SVD: the batch dimension is the frames; stacked videos), or ``none`` (one per call)."""
    sizes: Optional[SizeRule]
    """The size and length rule; None when the conditioning comes made (the latent fixes them)."""
    defaults: SamplerDefaults
    latent_format: Optional[str] = None
    """The ``comfy.latent_formats`` class of the family's models (``SD15``, ``Wan21``). Approximate previews
    use the loaded model's own format; a binding warns when it is not this one (a wrong model connected)."""
    noise_mask: bool = False
    """The stock node pins the start image in the latent under a ``noise_mask`` (LTX, Cosmos, Wan 2.2 5B).
    A resume then restarts from the clean latent with the corrected noise (detected from the latent dict,
    so it holds for any conditioning); declared here, it also refuses two experts at construction."""

    def __post_init__(self) -> None:
        if self.batch not in BATCH_RULES:
            raise ChunkwiseError(f"{self.name}: batch must be one of {list(BATCH_RULES)}, got {self.batch!r}")


class Family:
    """One binding's conditioning inputs. A family file subclasses it as a ``@dataclass(eq=False)`` whose
    fields are its stock node's inputs, sets ``spec``, and writes :meth:`condition`.

    ``__post_init__`` checks the spec's size rule on the fields ``width``, ``height`` and the one
    named by ``spec.sizes.frames`` (the stock node's name for it, e.g. ``length``; not ``frames``,
    which is a property here); a subclass checking more calls it after its own checks. Run
    fingerprints read the fields ``clip_vision``, ``positive`` and ``negative`` where a family has them.
    """

    spec: ClassVar[FamilySpec]

    def __post_init__(self) -> None:
        if self.spec.sizes is not None:
            self.spec.sizes.check(self.spec.name, width=self.width, height=self.height, frames=self.frames)

    def require_text(self, encoder: str = "") -> None:
        """Refuse an empty ``positive`` or ``negative`` CONDITIONING, naming the family (and its text encoder)."""
        if not self.positive or not self.negative:
            hint = f" ({encoder})" if encoder else ""
            raise ChunkwiseError(f"{self.spec.name} needs positive and negative CONDITIONING, got an empty one; "
                                 f"connect CLIPTextEncode outputs{hint}")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def frames(self) -> Optional[int]:
        """Frames per chunk (None when the spec has no size rule)."""
        return getattr(self, self.spec.sizes.frames) if self.spec.sizes is not None else None

    def condition(self, vae, guide: torch.Tensor):
        """``(positive, negative, LATENT dict)`` for one chunk starting at ``guide`` (the stock node's output)."""
        raise NotImplementedError(f"{type(self).__name__} must define condition(vae, guide)")

    def patch_model(self, model):
        """The model the family samples with (a clone with its patches), or ``model`` itself."""
        return model

    def finish_latent(self, positive, latent: torch.Tensor) -> torch.Tensor:
        """A finished chunk's latent as the stock workflow hands it to VAEDecode (Kandinsky 5 puts the clean
        start frames back and normalises the first frames), given the chunk's positive conditioning."""
        return latent

    def details(self) -> list[str]:
        """Settings beyond size and length, for :meth:`describe`."""
        return []

    def describe(self) -> str:
        return f"{self.spec.name} {self.width}x{self.height}, {self.frames} frames" + "".join(
            f", {d}" for d in self.details())
