"""Wan 2.1 I2V / Wan 2.2 14B I2V: ``WanImageToVideo`` on each chunk's start image, one or two experts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ...search.errors import ChunkwiseError
from ..types import I2V
from .node import CATEGORY, bind, dimension_input, frames_input, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

SPEC = FamilySpec(
    name="Wan I2V",
    node="WanImageToVideo",
    batch="batch",  # latent [1, 16, (length-1)/4 + 1, height/8, width/8]; the conditioning repeats to B
    sizes=SizeRule(multiple=16, frames="length", frames_step=4, frames_why="the Wan VAE packs 4 frames per latent",
                   frames_fix="use e.g. 33, 49 or 81"),
    defaults=SamplerDefaults(steps=20, cfg=6.0, scheduler="simple"),  # image_to_video_wan.json
    latent_format="Wan21",
)


@dataclass(eq=False)
class WanFamily(Family):
    """The inputs of ``WanImageToVideo`` (V3 node), batch size 1.

    ``positive`` / ``negative`` are the text CONDITIONING (e.g. from umt5 via
    CLIPTextEncode). The guide goes to the node unchanged as ``start_image``:
    the node resizes it to ``width`` x ``height`` with
    ``comfy.utils.common_upscale(..., "bilinear", "center")`` (scale to cover,
    center crop), fills the other frames with gray and VAE-encodes the clip as
    ``concat_latent_image`` under a mask that pins the first latent frame.
    ``clip_vision`` (Wan 2.1 only; Wan 2.2 has no CLIP-vision branch) encodes
    the guide with a center crop, as ``CLIPVisionEncode(crop="center")`` does.
    """

    spec = SPEC

    positive: Any
    negative: Any
    width: int
    height: int
    length: int
    clip_vision: Any = None

    def __post_init__(self) -> None:
        self.require_text()
        super().__post_init__()

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_wan import WanImageToVideo

        clip_vision_output = None
        if self.clip_vision is not None:
            clip_vision_output = self.clip_vision.encode_image(guide, crop=True)
        out = WanImageToVideo.execute(self.positive, self.negative, vae, self.width, self.height, self.length, 1,
                                      start_image=guide, clip_vision_output=clip_vision_output)
        return out.result

    def details(self) -> list[str]:
        return ["CLIP vision"] if self.clip_vision is not None else []


def _switch_problem(steps, switch_step):
    if switch_step and steps is not None and switch_step >= steps:
        return (f"switch_step must be smaller than steps, got switch_step={switch_step}, steps={steps}; "
                f"use {max(1, steps // 2)} (half, as the stock Wan 2.2 workflow) or 0 for half")
    return None


class I2VWan(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VWan",
            display_name="I2V Model (Wan)",
            category=CATEGORY,
            description="Wan 2.1 I2V / Wan 2.2 14B I2V as an I2V model for ChunkLoop. Every chunk is conditioned "
                        "by ComfyUI's WanImageToVideo on its guide frame, resized (centre crop) to width x height. "
                        "Connect clip_vision for Wan 2.1 (clip_vision_h); Wan 2.2 does not use it. Wan 2.2 14B: "
                        "the high-noise expert as model, the low-noise expert as model_low_noise; they share one "
                        "schedule and hand over at switch_step, as the stock two-KSamplerAdvanced workflow.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (e.g. wan2.1_i2v_480p_14B_fp16.safetensors); "
                                                "add ModelSamplingSD3 shift 8 as in the stock workflow."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with umt5_xxl)."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="wan_2.1_vae.safetensors."),
                dimension_input(SPEC, "width", 832, "Frame width (480p: 832x480)."),
                dimension_input(SPEC, "height", 480, "Frame height."),
                frames_input(SPEC, 33, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; 81 is Wan's native length). Longer: fewer seams, more "
                             "memory and time per step."),
                *sampler_inputs(SPEC.defaults),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="Wan 2.1 only: clip_vision_h, encodes every chunk's guide frame."),
                io.Model.Input("model_low_noise", optional=True,
                               tooltip="Wan 2.2 14B only: the low-noise expert (wan2.2_i2v_low_noise_14B), with the "
                                       "same ModelSamplingSD3 shift as model (the high-noise expert). It denoises "
                                       "the steps from switch_step on. Empty: model denoises every step."),
                io.Int.Input("switch_step", default=0, min=0, max=10000, optional=True,
                             tooltip="The step where model_low_noise takes over (the stock Wan 2.2 workflow: 10 of "
                                     "20). 0: half the steps. Short k-step previews switch at the same fraction of "
                                     "their k steps; truncated previews that stop before it use only model."),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None, switch_step=None):
        return (inputs_problem(cls, SPEC, width=width, height=height, length=length, steps=steps,
                               switch_step=switch_step) or _switch_problem(steps, switch_step) or True)

    @classmethod
    def execute(cls, model, positive, negative, vae, width, height, length, steps, cfg, sampler_name, scheduler,
                clip_vision=None, model_low_noise=None, switch_step=0) -> io.NodeOutput:
        family = WanFamily(positive=positive, negative=negative, width=width, height=height, length=length,
                           clip_vision=clip_vision)
        experts = {}
        if model_low_noise is not None:
            switch = int(switch_step) or max(1, steps // 2)
            if not 1 <= switch < steps:
                raise ChunkwiseError(
                    f"switch_step must be between 1 and steps - 1 with a low-noise model, got switch_step={switch}, "
                    f"steps={steps}; use {max(1, steps // 2)} (half, as the stock workflow) or 0 for half"
                )
            experts = {"model_low_noise": model_low_noise, "switch_step": switch, "schedule_steps": int(steps)}
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler, **experts))
