"""Tiny seeded Cosmos Predict2 I2V parts built from ComfyUI's own classes (tests only).

The configuration follows ``/work/shared/recipes/tiny_comfy_families.json`` (``cosmos_predict2_i2v``, checked
on CPU with ComfyUI 0.3.75 and 0.28.2): ``CosmosI2VPredict2`` (MiniTrainDIT, 16 latent channels + the inverted
mask concatenated, rectified-flow EDM sampling) and the Wan 2.1 VAE, which ``comfy.sd.VAE`` builds at the
state dict's own width (no override needed).
"""

from __future__ import annotations

import comfy.supported_models
import torch

from .tiny import _patcher, _randomize, tiny_wan_vae

TEXT_LEN = 8
UNET = {
    "image_model": "cosmos_predict2", "max_img_h": 240, "max_img_w": 240, "max_frames": 128, "in_channels": 17,
    "out_channels": 16, "patch_spatial": 2, "patch_temporal": 1, "model_channels": 32, "concat_padding_mask": True,
    "crossattn_emb_channels": 16, "pos_emb_cls": "rope3d", "pos_emb_learnable": True,
    "pos_emb_interpolation": "crop", "min_fps": 1, "max_fps": 30, "use_adaln_lora": True, "adaln_lora_dim": 8,
    "num_blocks": 1, "num_heads": 2, "extra_per_block_abs_pos_emb": False, "rope_h_extrapolation_ratio": 3.0,
    "rope_w_extrapolation_ratio": 3.0, "rope_t_extrapolation_ratio": 1.0, "extra_h_extrapolation_ratio": 1.0,
    "extra_w_extrapolation_ratio": 1.0, "extra_t_extrapolation_ratio": 1.0, "rope_enable_fps_modulation": False,
}


def tiny_cosmos_model(seed: int = 1):
    config = comfy.supported_models.CosmosI2VPredict2(dict(UNET))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def tiny_cosmos(seed: int = 1):
    """``(model_patcher, vae, positive, negative)``: CosmosPredict2 (latent format Wan21), a Wan 2.1 VAE, text
    conditioning ``[[tensor [1, 8, 16], {}]]``."""
    generator = torch.Generator(device="cpu").manual_seed(seed + 2)
    width = UNET["crossattn_emb_channels"]
    positive = [[torch.randn((1, TEXT_LEN, width), generator=generator), {}]]
    negative = [[torch.randn((1, TEXT_LEN, width), generator=generator), {}]]
    return tiny_cosmos_model(seed), tiny_wan_vae(seed + 1), positive, negative
