"""Model families: one small file each, holding a declarative binding.

A family file declares its :class:`~.spec.FamilySpec` (stock node, batch rule, noise mask, size rule,
sampler defaults, latent format), the :class:`~.spec.Family` dataclass of its stock node's inputs with
the ``condition()`` that calls that node, and its binding node (plumbing in :mod:`.node`). Adding a
family is adding its file and its node to :data:`BINDING_NODES`; the denoiser (nodes/host/) never
changes. :class:`~.preconditioned.Preconditioned` binds conditioning made upstream.
"""

from __future__ import annotations

from . import cosmos, hunyuan, hunyuan15, kandinsky5, ltxv, svd, wan, wan22_5b
from .cosmos import CosmosPredict2Family, I2VCosmosPredict2
from .hunyuan import HunyuanVideoFamily, I2VHunyuanVideo
from .hunyuan15 import HunyuanVideo15Family, I2VHunyuanVideo15
from .kandinsky5 import I2VKandinsky5, Kandinsky5Family
from .ltxv import I2VLTXV, LTXVFamily
from .preconditioned import Preconditioned
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule
from .svd import I2VSVD, SVDFamily
from .wan import I2VWan, WanFamily
from .wan22_5b import I2VWan22TI2V, Wan22TI2VFamily

BINDING_NODES = [I2VSVD, I2VWan, I2VWan22TI2V, I2VCosmosPredict2, I2VLTXV, I2VKandinsky5, I2VHunyuanVideo15,
                 I2VHunyuanVideo]
"""One binding node per family, in the order ComfyUI lists them."""

__all__ = ["BINDING_NODES", "Family", "FamilySpec", "I2VSVD", "I2VWan", "Preconditioned", "SVDFamily",
           "SamplerDefaults", "SizeRule", "WanFamily", "svd", "wan"]
__all__ += ["I2VWan22TI2V", "Wan22TI2VFamily", "wan22_5b"]
__all__ += ["I2VKandinsky5", "I2VLTXV", "Kandinsky5Family", "LTXVFamily", "kandinsky5", "ltxv"]
__all__ += ["HunyuanVideo15Family", "HunyuanVideoFamily", "I2VHunyuanVideo", "I2VHunyuanVideo15", "hunyuan",
            "hunyuan15"]
__all__ += ["CosmosPredict2Family", "I2VCosmosPredict2", "cosmos"]
