"""A tiny seeded random LTX-Video model and VAE from ComfyUI's own classes (tests only).

The configuration follows ``/work/shared/recipes/tiny_comfy_families.json`` (``ltxv``, checked on CPU with
ComfyUI 0.3.75 and 0.28.2): a 1-layer LTXV transformer (2 heads of 16, text width 16) and the LTXV causal
video VAE (/32 spatial, /8 temporal, 128 latent channels) at base width 16. ComfyUI 0.3.75's ``VideoVAE``
ignores the config's ``*_base_channels`` and builds 128-wide encoder and decoder blocks, which a 16-wide
state dict does not fit; while ``comfy.sd.VAE`` builds it, the two block classes are narrowed (the
recipe's ``vae_width_override``). Detection, ratios and latent processing stay ComfyUI's own.

Also loaded by file path from the e2e test pack (no package), hence the fallback import of tiny.py.
"""

from __future__ import annotations

import contextlib
import functools
import json

import comfy.ldm.lightricks.vae.causal_video_autoencoder as ltxv_vae
import comfy.sd
import comfy.supported_models
import torch

try:
    from .tiny import _patcher, _randomize
except ImportError:  # loaded by file path (tests/e2e/testpack)
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("chunkwise_tiny_for_ltxv", Path(__file__).with_name("tiny.py"))
    _tiny = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_tiny)
    _patcher, _randomize = _tiny._patcher, _tiny._randomize

LTXV_TEXT_LEN = 8
LTXV_TEXT_WIDTH = 16
"""The tiny model's caption_channels: its text conditioning is ``[1, 8, 16]`` with an attention_mask."""

LTXV_UNET = {
    "image_model": "ltxv", "in_channels": 128, "num_layers": 1, "attention_head_dim": 16,
    "num_attention_heads": 2, "cross_attention_dim": 32, "caption_channels": LTXV_TEXT_WIDTH,
}
LTXV_VAE_BASE_CHANNELS = 16
LTXV_VAE_CONFIG = {
    "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
    "latent_channels": 128,
    "blocks": [["res_x", 1], ["compress_all", 1], ["compress_all", 1], ["compress_all", 1], ["res_x", 1]],
    "encoder_base_channels": LTXV_VAE_BASE_CHANNELS, "decoder_base_channels": LTXV_VAE_BASE_CHANNELS,
    "scaling_factor": 1.0, "norm_layer": "pixel_norm", "patch_size": 4, "latent_log_var": "uniform",
    "use_quant_conv": False, "causal_decoder": False, "timestep_conditioning": False,
}


@contextlib.contextmanager
def _narrow_ltxv_vae():
    """While active, ComfyUI's LTXV VAE builds its encoder and decoder at the tiny base width."""
    saved = ltxv_vae.Encoder, ltxv_vae.Decoder
    ltxv_vae.Encoder = functools.partial(saved[0], base_channels=LTXV_VAE_BASE_CHANNELS)
    ltxv_vae.Decoder = functools.partial(saved[1], base_channels=LTXV_VAE_BASE_CHANNELS)
    try:
        yield
    finally:
        ltxv_vae.Encoder, ltxv_vae.Decoder = saved


def _vae_metadata() -> dict:
    return {"config": json.dumps({"vae": LTXV_VAE_CONFIG})}


def tiny_ltxv_vae(seed: int = 2) -> comfy.sd.VAE:
    """The LTXV causal video VAE, base width 16: frames (L-1)/8+1, /32 spatial, 128 channels."""
    with _narrow_ltxv_vae():
        network = ltxv_vae.VideoVAE(version=0, config=LTXV_VAE_CONFIG)
        sd = {k: v.detach().clone().float() for k, v in network.state_dict().items()}
        _randomize(sd.items(), seed)
        for key in sd:  # per-channel statistics: mean 0, std 1 (the latent scale stays O(1))
            if key.endswith("std-of-means"):
                sd[key] = torch.ones_like(sd[key])
            elif key.endswith("mean-of-means"):
                sd[key] = torch.zeros_like(sd[key])
        return comfy.sd.VAE(sd=sd, metadata=_vae_metadata())


def tiny_ltxv_model(seed: int = 1):
    config = comfy.supported_models.LTXV(dict(LTXV_UNET))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model)


def ltxv_text(generator: torch.Generator):
    """One tiny LTXV text CONDITIONING: ``[[tensor [1, 8, 16], {"attention_mask": ones [1, 8]}]]``."""
    cond = torch.randn((1, LTXV_TEXT_LEN, LTXV_TEXT_WIDTH), generator=generator)
    return [[cond, {"attention_mask": torch.ones((1, LTXV_TEXT_LEN), dtype=torch.long)}]]


def tiny_ltxv(seed: int = 1):
    """LTX-Video (ModelSamplingFlux shift 2.37 from the model config), its VAE, text conditioning.

    Returns ``(model_patcher, vae, positive, negative)``.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed + 2)
    positive, negative = ltxv_text(generator), ltxv_text(generator)
    return tiny_ltxv_model(seed), tiny_ltxv_vae(seed + 1), positive, negative
