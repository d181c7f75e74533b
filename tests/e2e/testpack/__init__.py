"""chunkwise test pack: tiny random stand-ins for ComfyUI's loaders (tests and the demo only).

Loaded by a real ComfyUI server from custom_nodes/ (``scripts/comfy_server.py``
links it there); never shipped to users. Every loader returns exactly the types
the real loader returns (``ModelPatcher``, ``comfy.sd.VAE``,
``comfy.clip_vision.ClipVisionModel``, CONDITIONING lists), built by
``tests/comfy/tiny.py`` from ComfyUI's own classes with seeded weights, so a
bundled workflow runs unchanged once its loader nodes are swapped for these.

The output slots of each stand-in match the node it replaces, so links in an
API prompt stay valid when only ``class_type`` and ``inputs`` change:

==================================  ===========================================
stand-in                            replaces
==================================  ===========================================
ChunkwiseTestSVDCheckpoint          ImageOnlyCheckpointLoader (MODEL, CLIP_VISION, VAE)
ChunkwiseTestWanModel               UNETLoader (MODEL)
ChunkwiseTestWanVAE                 VAELoader (VAE)
ChunkwiseTestCLIPVision             CLIPVisionLoader (CLIP_VISION)
ChunkwiseTestWan22Model             UNETLoader (MODEL), Wan 2.2 TI2V 5B
ChunkwiseTestWan22VAE               VAELoader (VAE), the Wan 2.2 VAE
ChunkwiseTestLTXVCheckpoint         CheckpointLoaderSimple for LTX-Video (MODEL, CLIP: None, VAE)
ChunkwiseTestKandinsky5Model        UNETLoader for Kandinsky 5 (MODEL; ComfyUI 0.28.2)
ChunkwiseTestKandinsky5VAE          VAELoader for Kandinsky 5 (VAE: HunyuanVideo's)
ChunkwiseTestCosmosModel            UNETLoader (MODEL), Cosmos Predict2 I2V
ChunkwiseTestTextConditioning       CLIPTextEncode (CONDITIONING), no CLIPLoader needed
ChunkwiseTestImage                  LoadImage (IMAGE, MASK)
ChunkwiseTestSaveTensor             an output node: saves an IMAGE batch losslessly
==================================  ===========================================
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import zlib
from pathlib import Path

import comfy.utils
import folder_paths
import torch

from . import hunyuan

_TINY_PATH = Path(__file__).resolve().parent.parent.parent / "comfy" / "tiny.py"
_TINY_LTXV_PATH = _TINY_PATH.with_name("tiny_ltxv.py")
_TINY_K5_PATH = _TINY_PATH.with_name("tiny_kandinsky5.py")
CATEGORY = "chunkwise/testing"


@functools.lru_cache(maxsize=1)
def tiny():
    """tests/comfy/tiny.py, loaded by file path (no sys.path edit, no package import needed)."""
    spec = importlib.util.spec_from_file_location("chunkwise_testpack_tiny", _TINY_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def tiny_module(name: str):
    """``tests/comfy/<name>.py`` (a family's tiny builders) as a submodule of a package over tests/comfy/, so
    its relative import of tiny.py resolves (the package is put in sys.modules; sys.path stays as it is)."""
    package = "chunkwise_testpack_comfy"
    if package not in sys.modules:
        folder = _TINY_PATH.parent
        spec = importlib.util.spec_from_file_location(package, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{package}.{name}")


@functools.lru_cache(maxsize=1)
def tiny_ltxv():
    """tests/comfy/tiny_ltxv.py, loaded by file path like :func:`tiny`."""
    spec = importlib.util.spec_from_file_location("chunkwise_testpack_tiny_ltxv", _TINY_LTXV_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def tiny_kandinsky5():
    """tests/comfy/tiny_kandinsky5.py, loaded by file path like :func:`tiny`."""
    spec = importlib.util.spec_from_file_location("chunkwise_testpack_tiny_kandinsky5", _TINY_K5_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The builders are cached per seed: a server run builds each tiny model once.
@functools.lru_cache(maxsize=4)
def _svd(seed: int):
    return tiny().tiny_svd(seed)


@functools.lru_cache(maxsize=4)
def _wan(seed: int):
    return tiny().tiny_wan(seed)


@functools.lru_cache(maxsize=4)
def _clip_vision(seed: int):
    return tiny().tiny_clip_vision(seed)


@functools.lru_cache(maxsize=4)
def _ltxv(seed: int):
    return tiny_ltxv().tiny_ltxv(seed)


@functools.lru_cache(maxsize=4)
def _kandinsky5(seed: int):
    return tiny_kandinsky5().tiny_kandinsky5(seed)


def _seed_input(default: int):
    return ("INT", {"default": default, "min": 0, "max": 2**31 - 1,
                    "tooltip": "Seed of the random weights: the same seed gives the same model."})


def _stand_in(name: str, description: str, return_types: tuple, file_input: str, seed: int, build):
    """A loader stand-in node class: a ``seed`` input (the random weights), the loader's file-name input (ignored,
    so a workflow's saved name still validates) and ``build(seed)``'s outputs in ``return_types`` order."""

    def load(self, seed, **_file_name):
        return build(int(seed))

    def input_types(cls):
        return {"required": {"seed": _seed_input(seed)}, "optional": {file_input: ("STRING", {"default": ""})}}

    return type(name, (), {"DESCRIPTION": description, "CATEGORY": CATEGORY, "RETURN_TYPES": return_types,
                           "FUNCTION": "load", "INPUT_TYPES": classmethod(input_types), "load": load})


@functools.lru_cache(maxsize=4)
def _wan22_model(seed: int):
    return tiny_module("tiny_wan22_5b").tiny_wan22_model(seed)


@functools.lru_cache(maxsize=4)
def _wan22_vae(seed: int):
    return tiny_module("tiny_wan22_5b").tiny_wan22_vae(seed)


@functools.lru_cache(maxsize=4)
def _cosmos_model(seed: int):
    return tiny_module("tiny_cosmos").tiny_cosmos_model(seed)


def _svd_outputs(seed: int) -> tuple:
    model, vae, clip_vision = _svd(seed)
    return (model, clip_vision, vae)


def _ltxv_outputs(seed: int) -> tuple:
    model, vae, _, _ = _ltxv(seed)
    return (model, None, vae)


TestSVDCheckpoint = _stand_in(
    "TestSVDCheckpoint",
    "Tiny random SVD img2vid (UNet 64 channels), SD-style VAE and CLIP vision: ImageOnlyCheckpointLoader's outputs.",
    ("MODEL", "CLIP_VISION", "VAE"), "ckpt_name", 5, _svd_outputs)
TestWanModel = _stand_in(
    "TestWanModel",
    "Tiny random Wan I2V model (dim 32, 1 layer, in_dim 36, text_dim 16): UNETLoader's output. "
    "Use ChunkwiseTestTextConditioning for its text conditioning (width 16).",
    ("MODEL",), "unet_name", 1, lambda seed: (_wan(seed)[0],))
TestWanVAE = _stand_in(
    "TestWanVAE",
    "Tiny random Wan 2.1 VAE (dim 8; spatial /8, temporal /4, 16 latent channels): VAELoader's output.",
    ("VAE",), "vae_name", 1, lambda seed: (_wan(seed)[1],))
TestCLIPVision = _stand_in(
    "TestCLIPVision", "Tiny random CLIP vision model (2 layers, width 32, 28 px): CLIPVisionLoader's output.",
    ("CLIP_VISION",), "clip_name", 3, lambda seed: (_clip_vision(seed),))
TestWan22Model = _stand_in(
    "TestWan22Model",
    "Tiny random Wan 2.2 TI2V 5B model (WAN22, 48 latent channels, dim 32, 1 layer, text_dim 16): "
    "UNETLoader's output. Use ChunkwiseTestTextConditioning for its text conditioning (width 16).",
    ("MODEL",), "unet_name", 1, lambda seed: (_wan22_model(seed),))
TestWan22VAE = _stand_in(
    "TestWan22VAE",
    "Tiny random Wan 2.2 VAE (dim 8; spatial /16, temporal /4, 48 latent channels): VAELoader's "
    "output. VAELoader itself cannot load it: it builds every Wan 2.2 VAE at full width.",
    ("VAE",), "vae_name", 2, lambda seed: (_wan22_vae(seed),))
TestLTXVCheckpoint = _stand_in(
    "TestLTXVCheckpoint",
    "Tiny random LTX-Video model (1 layer, text width 16) and LTXV VAE (base width 16): "
    "CheckpointLoaderSimple's MODEL and VAE; its CLIP output is None (the LTX-Video template encodes "
    "text with a separate CLIPLoader). Text: ChunkwiseTestTextConditioning, width 16, attention_mask.",
    ("MODEL", "CLIP", "VAE"), "ckpt_name", 1, _ltxv_outputs)
TestKandinsky5Model = _stand_in(
    "TestKandinsky5Model",
    "Tiny random Kandinsky 5 video model (model_dim 32, 1+1 blocks, text width 16, pooled width 8): "
    "UNETLoader's output (ComfyUI 0.28.2). Text: ChunkwiseTestTextConditioning, width 16, pooled 8.",
    ("MODEL",), "unet_name", 1, lambda seed: (_kandinsky5(seed)[0],))
TestKandinsky5VAE = _stand_in(
    "TestKandinsky5VAE",
    "Tiny random HunyuanVideo VAE (ch 32; spatial /8, temporal /4, 16 channels): VAELoader's output.",
    ("VAE",), "vae_name", 1, lambda seed: (_kandinsky5(seed)[1],))
TestCosmosModel = _stand_in(
    "TestCosmosModel",
    "Tiny random Cosmos Predict2 I2V model (MiniTrainDIT, 1 block, width 32, text width 16): "
    "UNETLoader's output. Its VAE is the Wan 2.1 one (ChunkwiseTestWanVAE).",
    ("MODEL",), "unet_name", 1, lambda seed: (_cosmos_model(seed),))


class TestTextConditioning:
    DESCRIPTION = ("CONDITIONING for the tiny Wan model without a text encoder: a seeded random [1, tokens, width] "
                   "tensor derived from the text, so different prompts give different conditioning.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text": ("STRING", {"multiline": True, "default": ""}),
                "width": ("INT", {"default": 16, "min": 1, "max": 8192,
                                  "tooltip": "The model's text_dim: 16 for ChunkwiseTestWanModel, 4096 for a "
                                             "UNETLoader-loadable tiny Wan file."}),
                "tokens": ("INT", {"default": 8, "min": 1, "max": 512}),
            },
            "optional": {
                "attention_mask": ("BOOLEAN", {"default": False,
                                               "tooltip": "Add a text attention_mask (T5 text for LTX-Video)."}),
                "pooled_width": ("INT", {"default": 0, "min": 0, "max": 8192,
                                         "tooltip": "Add a pooled_output of this width (Kandinsky 5: 8); 0: none."}),
            },
        }

    def encode(self, text, width, tokens, attention_mask=False, pooled_width=0):
        generator = torch.Generator(device="cpu").manual_seed(zlib.crc32(text.encode("utf-8")))
        cond = torch.randn((1, int(tokens), int(width)), generator=generator)
        extra = {"attention_mask": torch.ones((1, int(tokens)), dtype=torch.long)} if attention_mask else {}
        if pooled_width:
            extra["pooled_output"] = torch.randn((1, int(pooled_width)), generator=generator)
        return ([[cond, extra]],)


class TestImage:
    DESCRIPTION = "A seeded smooth colour image (a stand-in for LoadImage): IMAGE [1, H, W, 3] and an empty MASK."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 8}),
                "height": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 8}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
            },
            "optional": {"image": ("STRING", {"default": ""})},
        }

    def make(self, width, height, seed, image=""):
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        # Low-frequency colour field: a few random blobs upsampled, so CLIP sees structure, not noise.
        coarse = torch.rand((1, 3, 4, 4), generator=generator)
        img = torch.nn.functional.interpolate(coarse, size=(int(height), int(width)), mode="bicubic",
                                              align_corners=False).clamp(0.0, 1.0)
        img = img.permute(0, 2, 3, 1).contiguous()
        mask = torch.zeros((1, int(height), int(width)))
        return (img, mask)


class TestSaveTensor:
    DESCRIPTION = "Save an IMAGE batch losslessly (float32 safetensors) under output/, for exact comparisons."
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "chunkwise_test"})}}

    def save(self, images, filename_prefix):
        out_dir = folder_paths.get_output_directory()
        full, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, out_dir, int(images.shape[2]), int(images.shape[1])
        )
        filename = f"{name}_{counter:05}_.safetensors"
        comfy.utils.save_torch_file({"images": images.detach().float().cpu().contiguous()},
                                    os.path.join(full, filename))
        return {"ui": {"tensors": [{"filename": filename, "subfolder": subfolder, "type": "output",
                                    "shape": list(images.shape)}]}}


NODE_CLASS_MAPPINGS = {
    "ChunkwiseTestSVDCheckpoint": TestSVDCheckpoint,
    "ChunkwiseTestWanModel": TestWanModel,
    "ChunkwiseTestWanVAE": TestWanVAE,
    "ChunkwiseTestCLIPVision": TestCLIPVision,
    "ChunkwiseTestLTXVCheckpoint": TestLTXVCheckpoint,
    "ChunkwiseTestKandinsky5Model": TestKandinsky5Model,
    "ChunkwiseTestKandinsky5VAE": TestKandinsky5VAE,
    "ChunkwiseTestTextConditioning": TestTextConditioning,
    "ChunkwiseTestImage": TestImage,
    "ChunkwiseTestSaveTensor": TestSaveTensor,
    "ChunkwiseTestWan22Model": TestWan22Model,
    "ChunkwiseTestWan22VAE": TestWan22VAE,
    "ChunkwiseTestCosmosModel": TestCosmosModel,
}
NODE_CLASS_MAPPINGS.update(hunyuan.NODE_CLASS_MAPPINGS)  # the HunyuanVideo families' stand-ins
NODE_DISPLAY_NAME_MAPPINGS = {k: k.replace("Chunkwise", "chunkwise test: ") for k in NODE_CLASS_MAPPINGS}
