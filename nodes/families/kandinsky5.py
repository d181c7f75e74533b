"""Kandinsky 5 I2V (Lite): ``Kandinsky5ImageToVideo`` on each chunk's start image, and the stock template's
``ReplaceVideoLatentFrames`` + ``NormalizeVideoLatentStart`` on each finished chunk (ComfyUI 0.28.2; older
ComfyUI has no Kandinsky 5, and the binding node says so before any model loads)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Optional

import torch
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ...search.errors import ChunkwiseError
from ..types import I2V
from .node import CATEGORY, bind, dimension_input, frames_input, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

SPEC = FamilySpec(
    name="Kandinsky 5 I2V",
    node="Kandinsky5ImageToVideo",
    batch="batch",  # latent [1, 16, (length-1)/4 + 1, height/8, width/8]; the conditioning repeats to B
    sizes=SizeRule(multiple=16, frames="length", frames_step=4,
                   frames_why="the HunyuanVideo VAE packs 4 frames per latent",
                   frames_fix="use e.g. 121 (5 s, the stock template), 61 or 33"),
    defaults=SamplerDefaults(steps=50, cfg=5.0, scheduler="beta"),  # video_kandinsky5_i2v.json
    latent_format="HunyuanVideo",
)
NORMALIZE_START, NORMALIZE_REFERENCE = 4, 5
"""The stock template's NormalizeVideoLatentStart: the first 4 latent frames take the statistics of the next 5."""


def stock_node_problem() -> Optional[str]:
    """Why this ComfyUI cannot run the binding (None: it has ``Kandinsky5ImageToVideo``)."""
    try:
        module = importlib.import_module("comfy_extras.nodes_kandinsky5")
    except ImportError:
        module = None
    if module is not None and hasattr(module, "Kandinsky5ImageToVideo"):
        return None
    try:
        version = importlib.import_module("comfyui_version").__version__
    except (ImportError, AttributeError):
        version = "this version"
    return (f"Kandinsky 5 needs ComfyUI's Kandinsky5ImageToVideo node, which ComfyUI {version} does not have "
            "(tested with 0.28.2); update ComfyUI")


@dataclass(eq=False)
class Kandinsky5Family(Family):
    """The inputs of ``Kandinsky5ImageToVideo`` (V3 node, batch size 1).

    ``positive`` / ``negative`` are the text CONDITIONING (Qwen 2.5 VL + CLIP-L through CLIPTextEncode;
    each carries its ``pooled_output``). The guide goes to the node as ``start_image``: it resizes it to
    ``width`` x ``height`` with ``comfy.utils.common_upscale(..., "bilinear", "center")`` (scale to cover,
    centre crop), VAE-encodes it and hands it to the model as ``time_dim_replace`` under a ``concat_mask``
    (the model replaces the first latent frame of its input); the latent is empty (no noise_mask). A
    finished chunk gets the stock template's post-processing (:meth:`finish_latent`).
    """

    spec = SPEC

    positive: Any
    negative: Any
    width: int
    height: int
    length: int

    def __post_init__(self) -> None:
        problem = stock_node_problem()
        if problem:
            raise ChunkwiseError(problem)
        self.require_text()
        super().__post_init__()

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_kandinsky5 import Kandinsky5ImageToVideo

        positive, negative, latent, _ = Kandinsky5ImageToVideo.execute(
            self.positive, self.negative, vae, self.width, self.height, self.length, 1, start_image=guide).result
        return positive, negative, latent

    def finish_latent(self, positive, latent: torch.Tensor) -> torch.Tensor:
        """``ReplaceVideoLatentFrames`` (the clean encoded start frame, the node's ``cond_latent``, at index 0)
        then ``NormalizeVideoLatentStart(4, 5)``, as the stock template does before VAEDecode. A chunk of at most
        4 latent frames (length <= 13) has no reference frames to normalise to (the stock node would give NaN):
        it is only replaced."""
        import comfy_extras.nodes_post_processing  # noqa: F401  (first: it and nodes_latent import each other)
        from comfy_extras.nodes_kandinsky5 import NormalizeVideoLatentStart
        from comfy_extras.nodes_latent import ReplaceVideoLatentFrames

        start = next(c[1]["time_dim_replace"] for c in positive if "time_dim_replace" in c[1])
        replaced = ReplaceVideoLatentFrames.execute({"samples": latent}, 0,
                                                    {"samples": start.to(latent)}).result[0]
        if replaced["samples"].shape[2] <= NORMALIZE_START:
            return replaced["samples"]
        return NormalizeVideoLatentStart.execute(replaced, NORMALIZE_START, NORMALIZE_REFERENCE).result[0]["samples"]


class I2VKandinsky5(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VKandinsky5",
            display_name="I2V Model (Kandinsky 5)",
            category=CATEGORY,
            description="Kandinsky 5 Lite I2V as an I2V model for ChunkLoop (ComfyUI 0.28.2 or newer; older "
                        "ComfyUI has no Kandinsky 5 and this node says so when queued). Every chunk is conditioned "
                        "by ComfyUI's Kandinsky5ImageToVideo on its guide frame, resized (centre crop) to width x "
                        "height; every finished chunk gets the stock template's ReplaceVideoLatentFrames and "
                        "NormalizeVideoLatentStart before decoding.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (kandinsky5lite_i2v_5s.safetensors); add "
                                                "ModelSamplingSD3 shift 5 as in the stock template."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with DualCLIPLoader "
                                                          "qwen_2.5_vl_7b + clip_l, type kandinsky5)."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="hunyuan_video_vae_bf16.safetensors."),
                dimension_input(SPEC, "width", 768, "Frame width, a multiple of 16 (the stock template: 768x512)."),
                dimension_input(SPEC, "height", 512, "Frame height, a multiple of 16."),
                frames_input(SPEC, 121, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; 121 is 5 s at 24 fps, the 5 s model's length). Longer: fewer "
                             "seams, more memory and time per step."),
                *sampler_inputs(SPEC.defaults),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None):
        return (stock_node_problem() or inputs_problem(cls, SPEC, width=width, height=height, length=length,
                                                       steps=steps) or True)

    @classmethod
    def execute(cls, model, positive, negative, vae, width, height, length, steps, cfg, sampler_name,
                scheduler) -> io.NodeOutput:
        family = Kandinsky5Family(positive=positive, negative=negative, width=width, height=height, length=length)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
