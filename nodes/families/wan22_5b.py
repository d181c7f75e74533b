"""Wan 2.2 5B TI2V: ``Wan22ImageToVideoLatent`` on each chunk's start image, pinned under a ``noise_mask``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ..types import I2V
from .node import CATEGORY, bind, dimension_input, frames_input, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

SPEC = FamilySpec(
    name="Wan 2.2 5B TI2V",
    node="Wan22ImageToVideoLatent",
    batch="batch",  # latent [1, 48, (length-1)/4 + 1, height/16, width/16]; the mask broadcasts over B
    sizes=SizeRule(multiple=32, frames="length", frames_step=4,
                   frames_why="the Wan 2.2 VAE packs 4 frames per latent", frames_fix="use e.g. 49, 81 or 121"),
    defaults=SamplerDefaults(steps=20, cfg=5.0, scheduler="simple"),  # video_wan2_2_5B_ti2v.json
    latent_format="Wan22",
    noise_mask=True,
)


@dataclass(eq=False)
class Wan22TI2VFamily(Family):
    """The inputs of ``Wan22ImageToVideoLatent`` (V3 node), batch size 1, and the text conditioning.

    The node takes no conditioning: it resizes the guide to ``width`` x ``height``
    (``comfy.utils.common_upscale(..., "bilinear", "center")``: scale to cover,
    centre crop), VAE-encodes it into the first latent frame and pins that frame
    under a ``noise_mask`` (0 = keep). ``positive`` / ``negative`` (umt5 through
    CLIPTextEncode) go straight to the sampler, as in the stock workflow.
    """

    spec = SPEC

    positive: Any
    negative: Any
    width: int
    height: int
    length: int

    def __post_init__(self) -> None:
        self.require_text("umt5_xxl")
        super().__post_init__()

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_wan import Wan22ImageToVideoLatent

        (latent,) = Wan22ImageToVideoLatent.execute(vae, self.width, self.height, self.length, 1,
                                                    start_image=guide).result
        return self.positive, self.negative, latent


class I2VWan22TI2V(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VWan22TI2V",
            display_name="I2V Model (Wan 2.2 5B TI2V)",
            category=CATEGORY,
            description="Wan 2.2 TI2V 5B as an I2V model for ChunkLoop. Every chunk starts from ComfyUI's "
                        "Wan22ImageToVideoLatent on its guide frame, resized (centre crop) to width x height and "
                        "pinned in the first latent frame under a noise mask; the text conditioning goes straight "
                        "to the sampler, as in the stock workflow. Truncated previews resume exactly with euler.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (wan2.2_ti2v_5B_fp16.safetensors); add "
                                                "ModelSamplingSD3 shift 8 as in the stock workflow."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with umt5_xxl)."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="wan2.2_vae.safetensors (48 latent channels, 16x smaller frames)."),
                dimension_input(SPEC, "width", 1280, "Frame width, a multiple of 32 (the stock 720p: 1280x704)."),
                dimension_input(SPEC, "height", 704, "Frame height, a multiple of 32."),
                frames_input(SPEC, 121, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; 121 is the stock 5 s at 24 fps). Longer: fewer seams, more "
                             "memory and time per step."),
                *sampler_inputs(SPEC.defaults),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None):
        return inputs_problem(cls, SPEC, width=width, height=height, length=length, steps=steps) or True

    @classmethod
    def execute(cls, model, positive, negative, vae, width, height, length, steps, cfg, sampler_name,
                scheduler) -> io.NodeOutput:
        family = Wan22TI2VFamily(positive=positive, negative=negative, width=width, height=height, length=length)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
