"""Tiny seeded random HunyuanVideo I2V parts (v1 "concat" and v2 "replace") from ComfyUI's own classes.

Built the way ``/work/shared/recipes/tiny_comfy_families.json`` builds its families (no recipe entry for this
one): ``comfy.supported_models.HunyuanVideoI2V`` (v1: in_channels 33 = 16 noise + 16 start-image latent + 1
mask, concat_keys concat_image / mask_inverted) and ``comfy.supported_models.HunyuanVideo`` (v2 replace: the
start image is written into the 16-channel latent under a noise_mask and flagged by ``guiding_frame_index``),
both guidance-embedded with a pooled text vector, and the HunyuanVideo VAE (``comfy.sd.AutoencoderKL``, conv3d,
/8 spatial, /4 temporal, 16 channels) built narrow.
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import comfy.ldm.hunyuan_video.model
import comfy.sd
import comfy.supported_models
import torch

from .tiny import _patcher, _randomize, tiny_clip_vision

TEXT_LEN = 8
TEXT_WIDTH = 16
POOLED_WIDTH = 8

UNET = {
    "image_model": "hunyuan_video", "in_channels": 33, "out_channels": 16, "patch_size": [1, 2, 2],
    "vec_in_dim": POOLED_WIDTH, "context_in_dim": TEXT_WIDTH, "hidden_size": 32, "mlp_ratio": 4.0, "num_heads": 2,
    "depth": 1, "depth_single_blocks": 1, "axes_dim": [4, 6, 6], "theta": 256, "qkv_bias": True,
    "guidance_embed": True, "byt5": False, "meanflow": False, "use_cond_type_embedding": False, "vision_in_dim": None,
    "meanflow_sum": False,
}
"""v1 (concat); v2 (replace) is the same with in_channels 16. sum(axes_dim) = hidden_size / num_heads; keys this
ComfyUI's HunyuanVideoParams does not have (0.3.75: meanflow_sum) are left out."""

VAE_WIDTHS = {"ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1}
"""ComfyUI builds the HunyuanVideo VAE with ch 128, ch_mult 1,2,4,4 whatever the state dict holds; these narrow
widths (ch a multiple of 32 for GroupNorm) are what it is built with while the tiny VAE is made."""

VAE_DDCONFIG = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3,
                "attn_resolutions": [], "dropout": 0.0, "conv3d": True, "time_compress": 4, **VAE_WIDTHS}


def _unet_config(in_channels: int) -> dict:
    known = {f.name for f in dataclasses.fields(comfy.ldm.hunyuan_video.model.HunyuanVideoParams)}
    return {k: v for k, v in {**UNET, "in_channels": in_channels}.items() if k in known or k == "image_model"}


class _NarrowAutoencoderKL(comfy.sd.AutoencoderKL):
    def __init__(self, ddconfig, **kwargs):
        super().__init__(ddconfig={**ddconfig, **VAE_WIDTHS}, **kwargs)


def narrow_vae_widths():
    """While active, ComfyUI's HunyuanVideo VAE builds with :data:`VAE_WIDTHS`."""
    return mock.patch.object(comfy.sd, "AutoencoderKL", _NarrowAutoencoderKL)


def tiny_hunyuan_vae(seed: int = 2) -> comfy.sd.VAE:
    """ComfyUI's HunyuanVideo VAE (16 latent channels, /8 spatial, /4 temporal), detected from its keys."""
    net = comfy.sd.AutoencoderKL(ddconfig=VAE_DDCONFIG, embed_dim=16)
    sd = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    _randomize(sd.items(), seed)
    with narrow_vae_widths():
        vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae


def tiny_hunyuan_model(seed: int = 1, guidance_type: str = "v1 (concat)"):
    """The v1 (``HunyuanVideoI2V``) or v2 replace (``HunyuanVideo``, 16 input channels) diffusion model."""
    if guidance_type.startswith("v1"):
        config = comfy.supported_models.HunyuanVideoI2V(_unet_config(33))
    else:
        config = comfy.supported_models.HunyuanVideo(_unet_config(16))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def tiny_hunyuan_text(seed: int = 3):
    """Positive and negative CONDITIONING with the pooled vector the model reads (``pooled_output`` -> y)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    positive = [[torch.randn((1, TEXT_LEN, TEXT_WIDTH), generator=generator),
                 {"pooled_output": torch.randn((1, POOLED_WIDTH), generator=generator)}]]
    negative = [[torch.zeros((1, TEXT_LEN, TEXT_WIDTH)), {"pooled_output": torch.zeros((1, POOLED_WIDTH))}]]
    return positive, negative


def tiny_hunyuan(seed: int = 1, guidance_type: str = "v1 (concat)"):
    """``(model_patcher, vae, positive, negative, clip_vision)``; the CLIP vision model only scores."""
    positive, negative = tiny_hunyuan_text(seed + 2)
    return (tiny_hunyuan_model(seed, guidance_type), tiny_hunyuan_vae(seed + 1), positive, negative,
            tiny_clip_vision(seed + 3))
