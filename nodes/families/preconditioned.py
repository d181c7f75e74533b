"""Conditioning that already exists: positive, negative and a LATENT dict from a stock node upstream
(SVD_img2vid_Conditioning, WanImageToVideo, ...), bound as a family so the same denoiser samples it."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import torch

from ...search.errors import ChunkwiseError
from .spec import Family, FamilySpec, SamplerDefaults

GENERIC = FamilySpec(name="Preconditioned", node="(upstream)", batch="none", sizes=None, defaults=SamplerDefaults())
"""Without a family to borrow from: one candidate per sampler call (right for any latent layout)."""


class Preconditioned(Family):
    """A family whose :meth:`condition` hands back the conditioning it was given, for any guide.

    ``like``: the spec of the family whose stock node made the conditioning (e.g. ``svd.SPEC``
    after SVD_img2vid_Conditioning); its batch rule, noise-mask flag and latent format then hold
    here too. Sizes come with the latent, so no size rule applies. The model is used as given
    (patch it upstream, e.g. with VideoLinearCFGGuidance).
    """

    needs_vae = False
    """Nothing to encode: a VAE is needed only to decode previews."""

    def __init__(self, positive, negative, latent: dict, like: Optional[FamilySpec] = None) -> None:
        if not isinstance(latent, dict) or "samples" not in latent:
            keys = sorted(latent) if isinstance(latent, dict) else type(latent).__name__
            raise ChunkwiseError(f"latent must be a ComfyUI LATENT dict with 'samples', got {keys}; connect the "
                                 "LATENT output of the conditioning node")
        base = like if like is not None else GENERIC
        self.spec = replace(base, name=f"{base.name} (preconditioned)", sizes=None,
                            noise_mask=base.noise_mask or "noise_mask" in latent)
        self.positive = positive
        self.negative = negative
        self.latent = latent

    def condition(self, vae, guide: torch.Tensor):
        return self.positive, self.negative, dict(self.latent)

    def describe(self) -> str:
        return f"{self.spec.name}, latent {list(self.latent['samples'].shape)}"
