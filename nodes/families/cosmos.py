"""Cosmos Predict2 I2V (video2world): ``CosmosPredict2ImageToVideoLatent`` on each chunk's start image, pinned under
a ``noise_mask``."""

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
    name="Cosmos Predict2 I2V",
    node="CosmosPredict2ImageToVideoLatent",
    batch="batch",  # latent [1, 16, (length-1)/4 + 1, height/8, width/8]; the mask broadcasts over B
    sizes=SizeRule(multiple=16, frames="length", frames_step=4,
                   frames_why="the Wan 2.1 VAE packs 4 frames per latent", frames_fix="use e.g. 33, 61 or 93"),
    defaults=SamplerDefaults(steps=35, cfg=4.0, scheduler="karras"),  # video_cosmos_predict2_2B_video2world_480p_16fps
    latent_format="Wan21",
    noise_mask=True,
)


@dataclass(eq=False)
class CosmosPredict2Family(Family):
    """The inputs of ``CosmosPredict2ImageToVideoLatent`` (V3 node), batch size 1, no end image, and the text
    conditioning.

    The node takes no conditioning: it resizes the guide to ``width`` x ``height``
    (``comfy.utils.common_upscale(..., "bilinear", "center")``: scale to cover,
    centre crop), pads it with grey to a clip, VAE-encodes it and pins its first
    latent frame under a ``noise_mask`` (0 = keep). ``positive`` / ``negative``
    (oldt5_xxl through CLIPTextEncode) go straight to the sampler, as in the
    stock workflow.
    """

    spec = SPEC

    positive: Any
    negative: Any
    width: int
    height: int
    length: int

    def __post_init__(self) -> None:
        self.require_text("oldt5_xxl")
        super().__post_init__()

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_cosmos import CosmosPredict2ImageToVideoLatent

        (latent,) = CosmosPredict2ImageToVideoLatent.execute(vae, self.width, self.height, self.length, 1,
                                                             start_image=guide).result
        return self.positive, self.negative, latent


class I2VCosmosPredict2(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VCosmosPredict2",
            display_name="I2V Model (Cosmos Predict2)",
            category=CATEGORY,
            description="Cosmos Predict2 video2world (image to video) as an I2V model for ChunkLoop. Every chunk "
                        "starts from ComfyUI's CosmosPredict2ImageToVideoLatent on its guide frame, resized (centre "
                        "crop) to width x height and pinned in the first latent frame under a noise mask; the text "
                        "conditioning goes straight to the sampler, as in the stock workflow. Truncated previews "
                        "resume exactly with euler.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (cosmos_predict2_2B_video2world_480p_16fps"
                                                ".safetensors); no ModelSampling node, as in the stock workflow."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with oldt5_xxl, "
                                                          "CLIPLoader type cosmos)."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="wan_2.1_vae.safetensors."),
                dimension_input(SPEC, "width", 848, "Frame width, a multiple of 16 (the stock 480p: 848x480)."),
                dimension_input(SPEC, "height", 480, "Frame height, a multiple of 16."),
                frames_input(SPEC, 93, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; 93 is the stock length, about 6 s at 16 fps). Longer: fewer "
                             "seams, more memory and time per step."),
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
        family = CosmosPredict2Family(positive=positive, negative=negative, width=width, height=height,
                                      length=length)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
