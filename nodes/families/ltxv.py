"""LTX-Video 0.9.x: ``LTXVImgToVideo`` + ``LTXVConditioning`` on each chunk's start image (the start image sits
in the latent under a ``noise_mask``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ...search.errors import ChunkwiseError
from ..types import I2V
from .node import CATEGORY, bind, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

MIN_SIZE, MIN_LENGTH = 64, 9
"""LTXVImgToVideo's own minimum width/height and length."""

SPEC = FamilySpec(
    name="LTX-Video",
    node="LTXVImgToVideo",
    batch="batch",  # latent [1, 128, (length-1)/8 + 1, height/32, width/32] + noise_mask [1, 1, T', 1, 1]
    sizes=SizeRule(multiple=32, frames="length", frames_step=8, frames_why="the LTX VAE packs 8 frames per latent",
                   frames_fix="use e.g. 97 (the stock template), 65 or 33"),
    defaults=SamplerDefaults(steps=30, cfg=3.0, scheduler="simple"),  # ltxv_image_to_video.json
    latent_format="LTXV",
    noise_mask=True,
)


@dataclass(eq=False)
class LTXVFamily(Family):
    """The inputs of ``LTXVImgToVideo`` (V3 node, batch size 1) and ``LTXVConditioning``, as the stock
    ``ltxv_image_to_video`` template chains them.

    ``positive`` / ``negative`` are the text CONDITIONING (T5-XXL through CLIPTextEncode; each carries its
    ``attention_mask``). The guide goes to the node unchanged as ``image``: it resizes it to ``width`` x
    ``height`` with ``comfy.utils.common_upscale(..., "bilinear", "center")`` (scale to cover, centre
    crop), VAE-encodes it into the first latent frame and pins that frame under a ``noise_mask`` of
    ``1 - strength``. ``LTXVConditioning`` then sets ``frame_rate`` on both conditionings.
    """

    spec = SPEC

    positive: Any
    negative: Any
    width: int
    height: int
    length: int
    strength: float = 1.0
    frame_rate: float = 25.0

    def __post_init__(self) -> None:
        self.require_text()
        super().__post_init__()
        problem = _minimum_problem(width=self.width, height=self.height, length=self.length)
        if problem:
            raise ChunkwiseError(f"LTX-Video {problem}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ChunkwiseError(f"strength must be between 0 and 1, got {self.strength}; use 1.0 (start image kept)")
        self.strength, self.frame_rate = float(self.strength), float(self.frame_rate)

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_lt import LTXVConditioning, LTXVImgToVideo

        positive, negative, latent = LTXVImgToVideo.execute(
            positive=self.positive, negative=self.negative, image=guide, vae=vae, width=self.width,
            height=self.height, length=self.length, batch_size=1, strength=self.strength).result
        positive, negative = LTXVConditioning.execute(positive=positive, negative=negative,
                                                      frame_rate=self.frame_rate).result
        return positive, negative, latent

    def details(self) -> list[str]:
        return [f"strength {self.strength}", f"{self.frame_rate:g} fps"]


def _minimum_problem(**values):
    for name, value in values.items():
        low = MIN_LENGTH if name == "length" else MIN_SIZE
        if isinstance(value, int) and not isinstance(value, bool) and value < low:
            return f"{name} must be at least {low} (LTXVImgToVideo's minimum), got {value}; use {low} or more"
    return None


class I2VLTXV(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VLTXV",
            display_name="I2V Model (LTX-Video)",
            category=CATEGORY,
            description="LTX-Video 0.9.x as an I2V model for ChunkLoop. Every chunk is conditioned by ComfyUI's "
                        "LTXVImgToVideo on its guide frame, resized (centre crop) to width x height and pinned in "
                        "the first latent frame under a noise_mask, then by LTXVConditioning (frame_rate), as the "
                        "stock ltxv_image_to_video template.",
            inputs=[
                io.Model.Input("model", tooltip="From CheckpointLoaderSimple (e.g. ltx-video-2b-v0.9.5.safetensors). "
                                                "Its own schedule is ModelSamplingFlux, shift 2.37; the stock "
                                                "template samples with LTXVScheduler (max_shift 2.05, base_shift "
                                                "0.95) instead, which is not a KSampler scheduler: put "
                                                "ModelSamplingLTXV on the model for that shift."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (CLIPTextEncode with t5xxl, type ltxv). "
                                                          "LTX-Video wants long, descriptive prompts."),
                io.Conditioning.Input("negative", tooltip="Negative text conditioning."),
                io.Vae.Input("vae", tooltip="The checkpoint's VAE (CheckpointLoaderSimple)."),
                io.Int.Input("width", default=768, min=MIN_SIZE, max=comfy_nodes.MAX_RESOLUTION, step=32,
                             tooltip="Frame width, a multiple of 32 (the stock template: 768x512)."),
                io.Int.Input("height", default=512, min=MIN_SIZE, max=comfy_nodes.MAX_RESOLUTION, step=32,
                             tooltip="Frame height, a multiple of 32."),
                io.Int.Input("length", default=97, min=MIN_LENGTH, max=comfy_nodes.MAX_RESOLUTION, step=8,
                             tooltip="Frames per chunk (8n+1; the stock template: 97, about 4 s at 25 fps). "
                                     "Longer: fewer seams, more memory and time per step."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="How firmly the start frame is kept (noise_mask = 1 - strength on the first "
                                       "latent frame). 1.0 keeps it exactly, so each chunk starts on the previous "
                                       "chunk's last frame and the seams join. The stock single-clip template uses "
                                       "0.15 (the start image only guides; more motion, visible seams in a chain). "
                                       "Truncated previews resume exactly at any strength."),
                io.Float.Input("frame_rate", default=25.0, min=0.0, max=1000.0, step=0.01,
                               tooltip="Frame-rate conditioning (LTXVConditioning; the stock template: 25)."),
                *sampler_inputs(SPEC.defaults),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None):
        return inputs_problem(cls, SPEC, width=width, height=height, length=length, steps=steps) or True

    @classmethod
    def execute(cls, model, positive, negative, vae, width, height, length, strength, frame_rate, steps, cfg,
                sampler_name, scheduler) -> io.NodeOutput:
        family = LTXVFamily(positive=positive, negative=negative, width=width, height=height, length=length,
                            strength=strength, frame_rate=frame_rate)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
