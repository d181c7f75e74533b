"""HunyuanVideo 1.5 I2V: ``HunyuanVideo15ImageToVideo`` on each chunk's start image, with its CLIP-vision input."""

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
    name="HunyuanVideo 1.5 I2V",
    node="HunyuanVideo15ImageToVideo",
    batch="batch",  # latent [1, 32, (length-1)/4 + 1, height/16, width/16]; the conditioning repeats to B
    sizes=SizeRule(multiple=16, frames="length", frames_step=4,
                   frames_why="the HunyuanVideo 1.5 VAE packs 4 frames per latent", frames_fix="use e.g. 33 or 121"),
    defaults=SamplerDefaults(steps=20, cfg=6.0, scheduler="simple"),  # video_hunyuan_video_1.5_720p_i2v.json
    latent_format="HunyuanVideo15",
)


@dataclass(eq=False)
class HunyuanVideo15Family(Family):
    """The inputs of ``HunyuanVideo15ImageToVideo`` (V3 node), batch size 1.

    ``positive`` / ``negative`` are the text CONDITIONING (Qwen 2.5 VL + ByT5
    through CLIPTextEncode). The guide goes to the node unchanged as
    ``start_image``: the node resizes it to ``width`` x ``height`` with
    ``comfy.utils.common_upscale(..., "bilinear", "center")`` (scale to cover,
    center crop) and VAE-encodes it as ``concat_latent_image`` under a
    ``concat_mask`` marking the first latent frame; the latent itself stays
    empty (no ``noise_mask``). ``clip_vision`` (sigclip_vision_patch14_384 in
    the stock template) encodes every chunk's guide with a center crop, as the
    template's ``CLIPVisionEncode(crop="center")`` does, into the node's
    ``clip_vision_output``; without it the node runs without one.
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
        from comfy_extras.nodes_hunyuan import HunyuanVideo15ImageToVideo

        clip_vision_output = None
        if self.clip_vision is not None:
            clip_vision_output = self.clip_vision.encode_image(guide, crop=True)
        out = HunyuanVideo15ImageToVideo.execute(self.positive, self.negative, vae, self.width, self.height,
                                                 self.length, 1, start_image=guide,
                                                 clip_vision_output=clip_vision_output)
        return out.result

    def details(self) -> list[str]:
        return ["CLIP vision"] if self.clip_vision is not None else []


class I2VHunyuanVideo15(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VHunyuanVideo15",
            display_name="I2V Model (HunyuanVideo 1.5)",
            category=CATEGORY,
            description="HunyuanVideo 1.5 I2V (480p or 720p, step-distilled or not) as an I2V model for ChunkLoop. "
                        "Every chunk is conditioned by ComfyUI's HunyuanVideo15ImageToVideo on its guide frame, "
                        "resized (centre crop) to width x height, and, with clip_vision connected, by the guide's "
                        "CLIP-vision encoding (CLIPVisionEncode, centre crop), as the stock I2V template does.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (e.g. hunyuanvideo1.5_720p_i2v_fp16.safetensors); "
                                                "add ModelSamplingSD3 as in the stock template: shift 7 for 720p, "
                                                "5 for 480p."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with the "
                                                          "hunyuan_video_15 DualCLIPLoader: Qwen 2.5 VL + ByT5)."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="hunyuanvideo15_vae_fp16.safetensors."),
                dimension_input(SPEC, "width", 1280, "Frame width (720p: 1280x720; 480p: 848x480)."),
                dimension_input(SPEC, "height", 720, "Frame height."),
                frames_input(SPEC, 121, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; the stock template makes 121). Shorter: less memory and "
                             "time per step, more seams."),
                *sampler_inputs(SPEC.defaults),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="sigclip_vision_patch14_384: encodes every chunk's guide frame, as the "
                                            "stock template does. Empty: the node runs without CLIP vision."),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None):
        return inputs_problem(cls, SPEC, width=width, height=height, length=length, steps=steps) or True

    @classmethod
    def execute(cls, model, positive, negative, vae, width, height, length, steps, cfg, sampler_name, scheduler,
                clip_vision=None) -> io.NodeOutput:
        family = HunyuanVideo15Family(positive=positive, negative=negative, width=width, height=height,
                                      length=length, clip_vision=clip_vision)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
