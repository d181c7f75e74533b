"""Diffusers I2V Model: a local diffusers folder from ``models/diffusers`` as the I2V type ChunkLoop drives.

Supports ``StableVideoDiffusionPipeline``, ``CogVideoXImageToVideoPipeline``
(which ComfyUI 0.3.75 has no native nodes for) and ``WanImageToVideoPipeline``
through the diffusers host in ``search/hosts``. diffusers is imported only when
the node runs, so ComfyUI starts as fast without it; without diffusers or
transformers (or accelerate, for cpu_offload) the node stays listed, the log
says what to install at start-up, and the node fails with that message.
"""

from __future__ import annotations

import json
import logging
import os

import comfy.model_management
import folder_paths
from comfy_api.latest import io

from ..search.errors import ChunkwiseError
from ..search.hosts import PIPELINE_FAMILIES, resolve_dtype
from .optional import Needs, require
from .types import I2V

log = logging.getLogger("chunkwise")

CATEGORY = "chunkwise/models"
DTYPES = ("auto", "float32", "float16", "bfloat16")
FAMILY_CFG = {"svd": 3.0, "cogvideox": 6.0, "wan": 5.0, "ltx": 3.0, "hunyuan15": None, "kandinsky5": 5.0}
"""The guidance each family's stock pipeline uses by default (SVD: the maximum of its per-frame ramp;
HunyuanVideo 1.5: None, the scale of the folder's own guider, 1 for the step-distilled checkpoints)."""


def diffusers_folders() -> list[str]:
    """Folders under ComfyUI's ``models/diffusers`` paths whose model_index.json names a supported pipeline.

    Symbolic links are followed (models often live elsewhere), each real folder once: a link back to a folder
    above it would otherwise be walked again and again while ComfyUI builds the node list. A pipeline folder's
    own subfolders (unet, vae ...) are not searched.
    """
    found: list[str] = []
    seen: set[str] = set()
    for base in folder_paths.get_folder_paths("diffusers"):
        if not os.path.isdir(base):
            continue
        for root, dirs, files in os.walk(base, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
            if "model_index.json" not in files:
                continue
            dirs[:] = []
            try:
                with open(os.path.join(root, "model_index.json"), encoding="utf-8") as f:
                    name = json.load(f).get("_class_name")
            except (OSError, ValueError, AttributeError):
                continue
            if name in PIPELINE_FAMILIES:
                rel = os.path.relpath(root, base).replace(os.sep, "/")
                if rel not in found:
                    found.append(rel)
    return sorted(found)


def resolve_folder(folder: str) -> str:
    index = folder_paths.get_full_path("diffusers", f"{folder}/model_index.json")
    if index is not None:
        return os.path.dirname(index)
    raise ChunkwiseError(
        f"diffusers folder {folder!r} was not found under {folder_paths.get_folder_paths('diffusers')}; "
        "put the pipeline folder (the one with model_index.json) into ComfyUI/models/diffusers/ and refresh"
    )


def comfy_dtype(dtype: str, family: str, device):
    """``auto``: float32 on the CPU, else the family's published dtype if the device runs it well."""
    import torch

    if dtype != "auto":
        return resolve_dtype(dtype, family, device)
    chosen = resolve_dtype("auto", family, device)
    if chosen == torch.bfloat16 and not comfy.model_management.should_use_bf16(device):
        chosen = torch.float16
    if chosen == torch.float16 and not comfy.model_management.should_use_fp16(device):
        chosen = torch.float32
    return chosen


class ChunkwiseDiffusersI2V(io.ComfyNode):
    NEEDS = (
        Needs("diffusers", "diffusers"),
        Needs("transformers", "transformers"),  # every supported pipeline has a transformers encoder
        Needs("accelerate", "accelerate", option="cpu_offload"),  # diffusers' model CPU offload
    )

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseDiffusersI2V",
            display_name="Diffusers I2V Model",
            category=CATEGORY,
            description="Loads a local diffusers image-to-video folder from models/diffusers (Stable Video "
                        "Diffusion, CogVideoX-I2V, Wan I2V, LTX-Video, HunyuanVideo 1.5 I2V, Kandinsky 5 I2V) as an I2V model for ChunkLoop. Each chunk's image "
                        "conditioning is computed once and shared by all candidates; the prompt is encoded once. "
                        "Needs the diffusers and transformers packages.",
            inputs=[
                io.Combo.Input("folder", options=diffusers_folders(),
                               tooltip="A pipeline folder (with model_index.json) under ComfyUI/models/diffusers."),
                io.Int.Input("steps", default=25, min=1, max=1000,
                             tooltip="Steps of the full schedule (s), with the pipeline's own scheduler. More: finer "
                                     "detail, proportionally more time (search adds m*k per chunk)."),
                io.Float.Input("cfg", default=0.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance; 0 = the model's default (SVD 3, CogVideoX 6, "
                                       "Wan 5, LTX-Video 3, Kandinsky 5 5, HunyuanVideo 1.5 its folder's guider). "
                                       "1 or less skips the negative pass (half the cost per step)."),
                io.Combo.Input("dtype", options=DTYPES, default="auto",
                               tooltip="Weights dtype. auto: float32 on the CPU, else the model's own (SVD float16, "
                                       "the others bfloat16, float16 where bfloat16 is slow). float32 doubles "
                                       "memory."),
                io.Int.Input("width", default=0, min=0, max=8192, step=8,
                             tooltip="Frame width; 0 = the model's own (SVD 1024, CogVideoX 720, Wan 832, LTX-Video "
                                     "704, Kandinsky 5 768; HunyuanVideo 1.5: the stock size for the image's aspect "
                                     "ratio, set both or neither). Smaller is faster and lighter but softer."),
                io.Int.Input("height", default=0, min=0, max=8192, step=8,
                             tooltip="Frame height; 0 = the model's own (SVD 576, CogVideoX 480, Wan 480, LTX-Video "
                                     "512, Kandinsky 5 512)."),
                io.Int.Input("frames", default=0, min=0, max=4096,
                             tooltip="Frames per chunk; 0 = the model's own (SVD 14/25, CogVideoX 49, Wan 81, "
                                     "LTX-Video 121, HunyuanVideo 1.5 121, Kandinsky 5 121; LTX-Video needs 8n+1, "
                                     "the others 4n+1, Kandinsky 5 at least 17). Longer chunks: fewer seams, more memory per step."),
                io.Boolean.Input("cpu_offload", default=False,
                                 tooltip="Keep the pipeline on the CPU and move each part to the GPU only while it "
                                         "runs (needs accelerate): far less GPU memory, slower."),
                io.String.Input("prompt", multiline=True, default="", optional=True,
                                tooltip="All but SVD: what the video shows. Encoded once per run. "
                                        "Ignored by SVD."),
                io.String.Input("negative_prompt", multiline=True, default="", optional=True,
                                tooltip="All but SVD: what to avoid (used when cfg > 1; empty: the model's "
                                        "default, Kandinsky 5's stock negative prompt). Ignored by SVD."),
            ],
            outputs=[I2V.Output("i2v", tooltip="The loaded model bound to these settings, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, steps=None, width=None, height=None):
        if steps is not None and steps < 1:
            return f"steps must be at least 1, got {steps}"
        for name, value in (("width", width), ("height", height)):
            if value is not None and value < 0:
                return f"{name} must be 0 (the model's own) or positive, got {value}"
        return True

    @classmethod
    def execute(cls, folder, steps, cfg, dtype, width, height, frames, cpu_offload, prompt="",
                negative_prompt="") -> io.NodeOutput:
        from ..search.hosts import load_denoiser, pipeline_class_name

        # 1. Check the packages, the folder and the settings before loading anything.
        require(cls, cpu_offload=cpu_offload)
        path = resolve_folder(folder)
        family = PIPELINE_FAMILIES[pipeline_class_name(path)]
        if dtype not in DTYPES:
            raise ChunkwiseError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        device = comfy.model_management.get_torch_device()
        torch_dtype = comfy_dtype(dtype, family, device)
        options: dict = {}
        if width:
            options["width"] = int(width)
        if height:
            options["height"] = int(height)
        if frames:
            options["num_frames"] = int(frames)
        guidance = float(cfg) if cfg > 0 else FAMILY_CFG[family]
        if family == "svd":
            options["max_guidance_scale"] = guidance
        else:
            options["prompt"] = prompt or ""
            if negative_prompt:
                options["negative_prompt"] = negative_prompt
            if guidance is not None:
                options["guidance_scale"] = guidance

        # 2. Load; ComfyUI does not manage these weights, so it first frees their size on the device.
        def make_room(nbytes: int) -> None:
            comfy.model_management.free_memory(int(nbytes * 1.2), device)

        i2v = load_denoiser(path, device=device, dtype=torch_dtype, offload=bool(cpu_offload), before_move=make_room,
                            **options)
        i2v.steps = int(steps)
        log.info("chunkwise: %s from %s, %d steps, cfg %s, %s", i2v.describe(), path, steps,
                 "the folder's guider" if guidance is None else f"{guidance:.2f}", torch_dtype)
        return io.NodeOutput(i2v)


DIFFUSERS_NODES = [ChunkwiseDiffusersI2V]
