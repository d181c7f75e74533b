"""A tiny seeded random Kandinsky 5 video model and HunyuanVideo VAE from ComfyUI's own classes (tests only;
ComfyUI 0.28.2: 0.3.75 has neither the model nor ``Kandinsky5ImageToVideo``).

The configuration follows ``/work/shared/recipes/tiny_comfy_families.json`` (``kandinsky5_i2v``): a 1+1
block Kandinsky 5 DiT (model_dim 32, text width 16, pooled width 8) and the HunyuanVideo VAE (conv3d,
/8 spatial, /4 temporal, 16 channels). ``comfy.sd.VAE`` builds that VAE at ``ch`` 128, ``ch_mult``
1,2,4,4; while it runs, ``comfy.sd.AutoencoderKL`` gets the recipe's narrow widths (the recipe's
``vae_width_override``). Detection, ratios and latent processing stay ComfyUI's own.

Also loaded by file path from the e2e test pack (no package), hence the fallback import of tiny.py.
"""

from __future__ import annotations

import contextlib

import comfy.sd
import comfy.supported_models
import torch

try:
    from .tiny import _patcher, _randomize
except ImportError:  # loaded by file path (tests/e2e/testpack)
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("chunkwise_tiny_for_k5", Path(__file__).with_name("tiny.py"))
    _tiny = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_tiny)
    _patcher, _randomize = _tiny._patcher, _tiny._randomize

KANDINSKY5_COMFY = (0, 28, 2)
"""The ComfyUI with Kandinsky 5 that the tests run on (0.3.75 has neither the model nor its node)."""
K5_TEXT_LEN = 8
K5_TEXT_WIDTH = 16
K5_POOLED_WIDTH = 8
K5_UNET = {
    "image_model": "kandinsky5", "in_visual_dim": 16, "out_visual_dim": 16, "in_text_dim": K5_TEXT_WIDTH,
    "in_text_dim2": K5_POOLED_WIDTH, "time_dim": 32, "model_dim": 32, "ff_dim": 64, "visual_embed_dim": 132,
    "patch_size": [1, 2, 2], "num_text_blocks": 1, "num_visual_blocks": 1, "axes_dims": [4, 6, 6],
    "rope_scale_factor": [1.0, 2.0, 2.0],
}
VAE_OVERRIDES = {"ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1}
HUNYUAN_VAE = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
               "conv3d": True, "time_compress": 4}
"""What ``comfy.sd.VAE`` builds for a HunyuanVideo VAE state dict (16 channels); VAE_OVERRIDES narrow it."""


@contextlib.contextmanager
def _narrow_hunyuan_vae():
    """While active, ``comfy.sd.VAE`` builds its AutoencoderKL with the tiny widths."""
    saved = comfy.sd.AutoencoderKL

    def narrow(ddconfig, embed_dim, **kwargs):
        return saved(ddconfig={**ddconfig, **VAE_OVERRIDES}, embed_dim=embed_dim, **kwargs)

    comfy.sd.AutoencoderKL = narrow
    try:
        yield
    finally:
        comfy.sd.AutoencoderKL = saved


def tiny_kandinsky5_vae(seed: int = 2) -> comfy.sd.VAE:
    network = comfy.sd.AutoencoderKL(ddconfig={**HUNYUAN_VAE, **VAE_OVERRIDES}, embed_dim=16)
    sd = {k: v.detach().clone().float() for k, v in network.state_dict().items()}
    _randomize(sd.items(), seed)
    with _narrow_hunyuan_vae():
        return comfy.sd.VAE(sd=sd)


def tiny_kandinsky5_model(seed: int = 1):
    config = comfy.supported_models.Kandinsky5(dict(K5_UNET))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def kandinsky5_text(generator: torch.Generator):
    """One tiny text CONDITIONING: ``[[tensor [1, 8, 16], {"pooled_output": tensor [1, 8]}]]``."""
    cond = torch.randn((1, K5_TEXT_LEN, K5_TEXT_WIDTH), generator=generator)
    return [[cond, {"pooled_output": torch.randn((1, K5_POOLED_WIDTH), generator=generator)}]]


def tiny_kandinsky5(seed: int = 1):
    """Kandinsky 5 (flow, shift 10 from the model config), HunyuanVideo VAE, text conditioning.

    Returns ``(model_patcher, vae, positive, negative)``.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed + 2)
    positive, negative = kandinsky5_text(generator), kandinsky5_text(generator)
    return tiny_kandinsky5_model(seed), tiny_kandinsky5_vae(seed + 1), positive, negative
