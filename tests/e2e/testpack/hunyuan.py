"""Tiny random stand-ins for the HunyuanVideo families' loaders (tests and the demo only).

==================================  ===========================================
stand-in                            replaces
==================================  ===========================================
ChunkwiseTestHunyuan15Model         UNETLoader (MODEL): HunyuanVideo 1.5 I2V
ChunkwiseTestHunyuan15VAE           VAELoader (VAE): HunyuanVideo 1.5 VAE
ChunkwiseTestHunyuanModel           UNETLoader (MODEL): HunyuanVideo I2V, v1 (concat) or v2 (replace)
ChunkwiseTestHunyuanVAE             VAELoader (VAE): HunyuanVideo VAE
ChunkwiseTestHunyuanTextConditioning CLIPTextEncode (CONDITIONING with ``pooled_output``)
==================================  ===========================================

The builders are ``tests/comfy/tiny_hunyuan15.py`` and ``tiny_hunyuan.py``, imported under a package name of their own
(:data:`PACKAGE`) pointing at ``tests/comfy`` so their relative import of ``tiny.py`` works without the
pack being importable as ``chunkwise`` (ComfyUI loads custom nodes under their path).
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
import zlib
from pathlib import Path

import torch

_TINY_DIR = Path(__file__).resolve().parent.parent.parent / "comfy"
PACKAGE = "chunkwise_testpack_tiny_models"
CATEGORY = "chunkwise/testing"


def tiny_module(name: str):
    """``tests/comfy/<name>.py`` as ``PACKAGE.<name>``."""
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(_TINY_DIR)]
        sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.{name}")


@functools.lru_cache(maxsize=4)
def _hunyuan15_model(seed: int):
    return tiny_module("tiny_hunyuan15").tiny_hunyuan15_model(seed)


@functools.lru_cache(maxsize=4)
def _hunyuan15_vae(seed: int):
    return tiny_module("tiny_hunyuan15").tiny_hunyuan15_vae(seed)


@functools.lru_cache(maxsize=4)
def _hunyuan_model(seed: int, guidance_type: str):
    return tiny_module("tiny_hunyuan").tiny_hunyuan_model(seed, guidance_type)


@functools.lru_cache(maxsize=4)
def _hunyuan_vae(seed: int):
    return tiny_module("tiny_hunyuan").tiny_hunyuan_vae(seed)


def _seed_input(default: int):
    return ("INT", {"default": default, "min": 0, "max": 2**31 - 1,
                    "tooltip": "Seed of the random weights: the same seed gives the same model."})


class TestHunyuan15Model:
    DESCRIPTION = ("Tiny random HunyuanVideo 1.5 I2V model (hidden 32, 1+1 blocks, text width 16, CLIP-vision "
                   "width 32): UNETLoader's output.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": _seed_input(1)}, "optional": {"unet_name": ("STRING", {"default": ""})}}

    def load(self, seed, unet_name=""):
        return (_hunyuan15_model(int(seed)),)


class TestHunyuan15VAE:
    DESCRIPTION = "Tiny random HunyuanVideo 1.5 VAE (32 latent channels, /16 spatial, /4 temporal): VAELoader's output."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": _seed_input(2)}, "optional": {"vae_name": ("STRING", {"default": ""})}}

    def load(self, seed, vae_name=""):
        return (_hunyuan15_vae(int(seed)),)


class TestHunyuanModel:
    DESCRIPTION = ("Tiny random HunyuanVideo I2V model (hidden 32, 1+1 blocks, text width 16, pooled width 8, "
                   "guidance-embedded): UNETLoader's output; v1 (concat, 33 input channels) or v2 (replace, 16).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": _seed_input(1),
                             "guidance_type": (["v1 (concat)", "v2 (replace)"], {"default": "v1 (concat)"})},
                "optional": {"unet_name": ("STRING", {"default": ""})}}

    def load(self, seed, guidance_type, unet_name=""):
        return (_hunyuan_model(int(seed), guidance_type),)


class TestHunyuanVAE:
    DESCRIPTION = "Tiny random HunyuanVideo VAE (16 latent channels, /8 spatial, /4 temporal): VAELoader's output."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": _seed_input(2)}, "optional": {"vae_name": ("STRING", {"default": ""})}}

    def load(self, seed, vae_name=""):
        return (_hunyuan_vae(int(seed)),)


class TestHunyuanTextConditioning:
    DESCRIPTION = ("CONDITIONING for the tiny HunyuanVideo models without a text encoder: a seeded random "
                   "[1, tokens, width] tensor derived from the text, with the pooled_output the models read "
                   "(None for pooled_width 0, else [1, pooled_width]).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text": ("STRING", {"multiline": True, "default": ""}),
                "width": ("INT", {"default": 16, "min": 1, "max": 8192}),
                "tokens": ("INT", {"default": 8, "min": 1, "max": 512}),
                "pooled_width": ("INT", {"default": 0, "min": 0, "max": 8192}),
            }
        }

    def encode(self, text, width, tokens, pooled_width):
        generator = torch.Generator(device="cpu").manual_seed(zlib.crc32(text.encode("utf-8")))
        cond = torch.randn((1, int(tokens), int(width)), generator=generator)
        pooled = torch.randn((1, int(pooled_width)), generator=generator) if pooled_width else None
        return ([[cond, {"pooled_output": pooled}]],)


NODE_CLASS_MAPPINGS = {
    "ChunkwiseTestHunyuan15Model": TestHunyuan15Model,
    "ChunkwiseTestHunyuan15VAE": TestHunyuan15VAE,
    "ChunkwiseTestHunyuanModel": TestHunyuanModel,
    "ChunkwiseTestHunyuanVAE": TestHunyuanVAE,
    "ChunkwiseTestHunyuanTextConditioning": TestHunyuanTextConditioning,
}
