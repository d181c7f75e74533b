"""Model families: one small file each, holding a declarative binding.

A family file declares its :class:`~.spec.FamilySpec` (stock node, batch rule, noise mask, size rule,
sampler defaults, latent format), the :class:`~.spec.Family` dataclass of its stock node's inputs with
the ``condition()`` that calls that node, and its binding node (plumbing in :mod:`.node`). Adding a
family is adding its file and its node to :data:`BINDING_NODES`; the denoiser (nodes/host/) never
changes. :class:`~.preconditioned.Preconditioned` binds conditioning made upstream.
"""

from __future__ import annotations

from . import hunyuan, hunyuan15, svd, wan
from .hunyuan import HunyuanVideoFamily, I2VHunyuanVideo
from .hunyuan15 import HunyuanVideo15Family, I2VHunyuanVideo15
from .preconditioned import Preconditioned
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule
from .svd import I2VSVD, SVDFamily
from .wan import I2VWan, WanFamily

BINDING_NODES = [I2VSVD, I2VWan, I2VHunyuanVideo15, I2VHunyuanVideo]
"""One binding node per family, in the order ComfyUI lists them."""

__all__ = ["BINDING_NODES", "Family", "FamilySpec", "I2VSVD", "I2VWan", "Preconditioned", "SVDFamily",
           "SamplerDefaults", "SizeRule", "WanFamily", "svd", "wan",
           "HunyuanVideo15Family", "I2VHunyuanVideo15", "hunyuan15", "HunyuanVideoFamily", "I2VHunyuanVideo", "hunyuan"]
