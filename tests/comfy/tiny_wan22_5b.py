"""Tiny seeded Wan 2.2 5B TI2V parts built from ComfyUI's own classes (tests only).

The configuration follows ``/work/shared/recipes/tiny_comfy_families.json`` (``wan22_5b_ti2v``, checked on
CPU with ComfyUI 0.3.75 and 0.28.2): ``WAN22_T2V`` with 48 latent channels in and out, the Wan 2.2 VAE
(/16 spatial, /4 temporal). ``comfy.sd.VAE`` detects a Wan 2.2 VAE from its key names but builds the
network at full width (dim 160, dec_dim 256); :func:`tiny_wan22_vae` makes it build the narrow network
while it runs, so detection, ratios, latent channels and scaling stay ComfyUI's own. Hence tier 3 runs the
Wan 2.2 5B workflow with in-process stand-ins (tests/e2e/testpack), not files: see :data:`VAE_FILE_NOT_FEASIBLE`.
"""

from __future__ import annotations

import contextlib

import comfy.ldm.wan.vae2_2
import comfy.sd
import comfy.supported_models
import comfy.utils
import torch

from .tiny import _patcher, _randomize

TEXT_LEN = 8
UNET = {
    "image_model": "wan2.1", "model_type": "t2v", "dim": 32, "ffn_dim": 64, "num_heads": 2,
    "num_layers": 1, "in_dim": 48, "out_dim": 48, "text_dim": 16, "freq_dim": 256,
    "patch_size": [1, 2, 2], "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6,
}
VAE_NARROW = {"dim": 8, "dec_dim": 16, "num_res_blocks": 1}
"""What the Wan 2.2 VAE is built with here instead of ComfyUI's full widths."""
VAE_FILE_NOT_FEASIBLE = (
    "no tiny Wan 2.2 VAE file can be loaded by VAELoader: comfy.sd.VAE recognises a Wan 2.2 VAE by its key names "
    "and builds it with dim 160 and dec_dim 256 whatever the file holds, so a narrow state dict does not fit "
    "(size mismatch); a full-width random one is hundreds of MB."
)
VAE_CONFIG = {"z_dim": 48, "dim_mult": [1, 2, 4, 4], "attn_scales": [], "temperal_downsample": [False, True, True],
              "dropout": 0.0}


@contextlib.contextmanager
def narrow_wan22_vae():
    """While inside, ``comfy.ldm.wan.vae2_2.WanVAE`` builds with :data:`VAE_NARROW` (what comfy.sd.VAE calls)."""
    full = comfy.ldm.wan.vae2_2.WanVAE

    class NarrowWanVAE(full):
        def __init__(self, **config):
            super().__init__(**{**config, **VAE_NARROW})

    comfy.ldm.wan.vae2_2.WanVAE = NarrowWanVAE
    try:
        yield full
    finally:
        comfy.ldm.wan.vae2_2.WanVAE = full


def wan22_vae_state_dict(seed: int) -> dict:
    with narrow_wan22_vae() as full:
        net = full(**VAE_CONFIG, **VAE_NARROW)
    sd = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    _randomize(sd.items(), seed)
    return sd


def vae_from_state_dict(sd: dict) -> comfy.sd.VAE:
    """``comfy.sd.VAE(sd=sd)`` (what VAELoader calls) building the narrow network for a tiny Wan 2.2 VAE."""
    with narrow_wan22_vae():
        return comfy.sd.VAE(sd=sd)


def tiny_wan22_vae(seed: int = 2) -> comfy.sd.VAE:
    return vae_from_state_dict(wan22_vae_state_dict(seed))


def tiny_wan22_model(seed: int = 1):
    config = comfy.supported_models.WAN22_T2V(dict(UNET))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def tiny_wan22_5b(seed: int = 1):
    """``(model_patcher, vae, positive, negative)``: WAN22 (latent format Wan22), its VAE, text conditioning
    ``[[tensor [1, 8, 16], {}]]``."""
    generator = torch.Generator(device="cpu").manual_seed(seed + 2)
    positive = [[torch.randn((1, TEXT_LEN, UNET["text_dim"]), generator=generator), {}]]
    negative = [[torch.randn((1, TEXT_LEN, UNET["text_dim"]), generator=generator), {}]]
    return tiny_wan22_model(seed), tiny_wan22_vae(seed + 1), positive, negative

