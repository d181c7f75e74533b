"""Tiny seeded random HunyuanVideo 1.5 I2V parts built from ComfyUI's own classes (tests and the e2e test pack).

The configuration is ``hunyuan_video_15_i2v`` of ``/work/shared/recipes/tiny_comfy_families.json`` (checked on
CPU with ComfyUI 0.3.75 and 0.28.2), copied here so the tests read nothing outside the repository.
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import comfy.ldm.hunyuan_video.model
import comfy.ldm.hunyuan_video.vae_refiner as vae_refiner
import comfy.sd
import comfy.supported_models
import torch

from .tiny import _patcher, _randomize, tiny_clip_vision

TEXT_LEN = 8
"""Tokens in the tiny text conditioning."""

UNET = {
    "image_model": "hunyuan_video", "in_channels": 65, "out_channels": 32, "patch_size": [1, 1, 1],
    "vec_in_dim": None, "context_in_dim": 16, "hidden_size": 32, "mlp_ratio": 4.0, "num_heads": 2, "depth": 1,
    "depth_single_blocks": 1, "axes_dim": [4, 6, 6], "theta": 256, "qkv_bias": True, "guidance_embed": False,
    "byt5": False, "meanflow": False, "use_cond_type_embedding": True, "vision_in_dim": 32, "meanflow_sum": True,
}
"""in_channels 65 = 32 noise + 32 start-image latent + 1 mask; vision_in_dim = the tiny CLIP vision's width."""

VAE_WIDTHS = {"block_out_channels": [8, 16, 32, 32, 64], "num_res_blocks": 1}
"""ComfyUI builds the HunyuanVideo 1.5 VAE at full width (128..1024) whatever the state dict holds; these
narrow widths are what its Encoder/Decoder are built with while the tiny VAE is made."""

VAE_CONFIG = {"in_channels": 3, "out_channels": 3, "z_channels": 32, "ffactor_spatial": 16, "ffactor_temporal": 4,
              "downsample_match_channel": True, "upsample_match_channel": True, **VAE_WIDTHS}


def _unet_config() -> dict:
    """The recipe's config, less the keys this ComfyUI's HunyuanVideoParams does not have (0.3.75: meanflow_sum)."""
    known = {f.name for f in dataclasses.fields(comfy.ldm.hunyuan_video.model.HunyuanVideoParams)}
    return {k: v for k, v in UNET.items() if k in known or k == "image_model"}


def _narrow(cls):
    class Narrow(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, **VAE_WIDTHS})

    return Narrow


def narrow_vae_widths():
    """While active, ComfyUI's HunyuanVideo 1.5 VAE networks build with :data:`VAE_WIDTHS`."""
    return mock.patch.multiple(vae_refiner, Encoder=_narrow(vae_refiner.Encoder), Decoder=_narrow(vae_refiner.Decoder))


def tiny_hunyuan15_vae(seed: int = 2) -> comfy.sd.VAE:
    """ComfyUI's HunyuanVideo 1.5 VAE (32 latent channels, /16 spatial, /4 temporal), detected from its keys."""
    with narrow_vae_widths():
        net = vae_refiner.Encoder(**VAE_CONFIG), vae_refiner.Decoder(**VAE_CONFIG)
        sd = {f"encoder.{k}": v for k, v in net[0].state_dict().items()}
        sd.update({f"decoder.{k}": v for k, v in net[1].state_dict().items()})
        sd = {k: v.detach().clone().float() for k, v in sd.items()}
        _randomize(sd.items(), seed)
        vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae


def tiny_hunyuan15_model(seed: int = 1):
    config = comfy.supported_models.HunyuanVideo15(_unet_config())
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def tiny_hunyuan15_text(seed: int = 3, width: int = 16):
    """Positive and negative CONDITIONING ``[[tensor [1, L, width], {"pooled_output": None}]]`` (the model
    reads ``pooled_output``; None since the tiny model has no vector input)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    positive = [[torch.randn((1, TEXT_LEN, width), generator=generator), {"pooled_output": None}]]
    negative = [[torch.zeros((1, TEXT_LEN, width)), {"pooled_output": None}]]
    return positive, negative


def tiny_hunyuan15(seed: int = 1):
    """``(model_patcher, vae, positive, negative, clip_vision)`` for HunyuanVideo 1.5 I2V."""
    positive, negative = tiny_hunyuan15_text(seed + 2)
    return (tiny_hunyuan15_model(seed), tiny_hunyuan15_vae(seed + 1), positive, negative,
            tiny_clip_vision(seed + 3))
