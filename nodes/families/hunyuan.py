"""HunyuanVideo I2V: ``HunyuanImageToVideo`` on each chunk's start image, v1 (concat) or v2 (replace)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import torch
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ...search.errors import ChunkwiseError
from ..types import I2V
from .node import CATEGORY, bind, dimension_input, frames_input, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

V1, V2 = "v1 (concat)", "v2 (replace)"
GUIDANCE_TYPES = (V1, V2)
"""The stock node's guidance types this binding takes (its third, ``custom``, feeds a ``ref_latent`` that no
released I2V model reads)."""

SPEC = FamilySpec(
    name="HunyuanVideo I2V",
    node="HunyuanImageToVideo",
    batch="batch",  # latent [1, 16, (length-1)/4 + 1, height/8, width/8]; the conditioning repeats to B
    sizes=SizeRule(multiple=16, frames="length", frames_step=4, frames_why="the HunyuanVideo VAE packs 4 frames per latent",
                   frames_fix="use e.g. 53 or 73"),
    defaults=SamplerDefaults(steps=20, cfg=1.0, scheduler="simple"),  # hunyuan_video_text_to_video.json (BasicGuider)
    latent_format="HunyuanVideo",
)
"""v1 (concat): the start image goes in as ``concat_latent_image`` + ``concat_mask``; the latent stays empty."""

SPEC_V2 = replace(SPEC, noise_mask=True, batch="none")
"""v2 (replace): the node writes the start image into the latent's first frame under a ``noise_mask``. One
candidate per sampler call: with ``guiding_frame_index`` ComfyUI's HunyuanVideo model (0.3.75 to 0.28.2) adds
the embedded guidance ``[B, hidden]`` to a per-token-group modulation ``[B, 2, hidden]``, which fails for a batch
of more than two (and is right for two only because both share one guidance value)."""


@dataclass(eq=False)
class HunyuanVideoFamily(Family):
    """The inputs of ``HunyuanImageToVideo`` (V3 node), batch size 1.

    ``positive`` is the text CONDITIONING (``TextEncodeHunyuanVideo_ImageToVideo`` in ComfyUI's I2V example,
    or CLIPTextEncode); the node conditions it on every chunk's guide, which goes to it unchanged as
    ``start_image``: resized to ``width`` x ``height`` with ``comfy.utils.common_upscale(..., "bilinear",
    "center")`` (scale to cover, center crop) and VAE-encoded. ``guidance_type`` v1 (concat) hands the
    encoded guide to the model as ``concat_latent_image`` + ``concat_mask``; v2 (replace) writes it into the
    latent's first frame under a ``noise_mask`` (resumed with the corrected noise) and sets
    ``guiding_frame_index``. The node has no negative: ``negative`` goes to the sampler as given, and without
    one the stock BasicGuider graph is matched at cfg 1 (the models are guidance-distilled: set the embedded
    guidance with FluxGuidance on ``positive``).
    """

    positive: Any
    width: int
    height: int
    length: int
    guidance_type: str = V1
    negative: Optional[Any] = None

    def __post_init__(self) -> None:
        if not self.positive:
            raise ChunkwiseError("HunyuanVideo I2V needs positive CONDITIONING, got an empty one; connect a text "
                                 "encoder's output (TextEncodeHunyuanVideo_ImageToVideo or CLIPTextEncode)")
        if self.guidance_type not in GUIDANCE_TYPES:
            raise ChunkwiseError(f"guidance_type must be one of {list(GUIDANCE_TYPES)}, got {self.guidance_type!r}; "
                                 "use 'v1 (concat)' for hunyuan_video_image_to_video_720p, 'v2 (replace)' for "
                                 "hunyuan_video_v2_replace_image_to_video_720p")
        super().__post_init__()

    @property
    def spec(self) -> FamilySpec:
        return SPEC_V2 if self.guidance_type == V2 else SPEC

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_hunyuan import HunyuanImageToVideo

        positive, latent = HunyuanImageToVideo.execute(self.positive, vae, self.width, self.height, self.length, 1,
                                                       self.guidance_type, start_image=guide).result
        return positive, self.negative if self.negative is not None else [], latent

    def details(self) -> list[str]:
        return [self.guidance_type] + ([] if self.negative is not None else ["no negative"])


def _cfg_problem(cfg, negative_given: bool) -> Optional[str]:
    if cfg is not None and not negative_given and abs(float(cfg) - 1.0) > 1e-9:
        return (f"cfg must be 1.0 without a negative conditioning, got cfg={cfg}; connect negative, or use 1.0 as "
                "the stock HunyuanVideo graph (BasicGuider, embedded guidance through FluxGuidance)")
    return None


class I2VHunyuanVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VHunyuanVideo",
            display_name="I2V Model (HunyuanVideo)",
            category=CATEGORY,
            description="HunyuanVideo I2V (v1 concat or v2 replace) as an I2V model for ChunkLoop. Every chunk is "
                        "conditioned by ComfyUI's HunyuanImageToVideo on its guide frame, resized (centre crop) to "
                        "width x height. The text conditioning is made once: with "
                        "TextEncodeHunyuanVideo_ImageToVideo it carries the first start image's tokens for every "
                        "chunk.",
            inputs=[
                io.Model.Input("model", tooltip="From UNETLoader (hunyuan_video_image_to_video_720p_bf16 for v1, "
                                                "hunyuan_video_v2_replace_image_to_video_720p_bf16 for v2); add "
                                                "ModelSamplingSD3 shift 7 as in the stock HunyuanVideo workflow."),
                io.Conditioning.Input("positive", tooltip="Text conditioning (TextEncodeHunyuanVideo_ImageToVideo or "
                                                          "CLIPTextEncode with the hunyuan_video DualCLIPLoader); "
                                                          "FluxGuidance on it sets the embedded guidance (6)."),
                io.Vae.Input("vae", tooltip="hunyuan_video_vae_bf16.safetensors."),
                dimension_input(SPEC, "width", 848, "Frame width (480p: 848x480; 720p: 1280x720)."),
                dimension_input(SPEC, "height", 480, "Frame height."),
                frames_input(SPEC, 73, comfy_nodes.MAX_RESOLUTION,
                             "Frames per chunk (4n+1; the stock HunyuanVideo workflow makes 73). Longer: fewer "
                             "seams, more memory and time per step."),
                io.Combo.Input("guidance_type", options=list(GUIDANCE_TYPES), default=V1,
                               tooltip="How the start image conditions the model; it must match the model file: "
                                       "v1 (concat) for the first I2V release, v2 (replace) for the v2 replace one "
                                       "(the start frame is pinned in the latent, so it stays exactly the guide)."),
                *sampler_inputs(SPEC.defaults),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative text conditioning, for cfg > 1 (the stock graph has none and "
                                              "samples at cfg 1, half the cost per step)."),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None, guidance_type=None):
        return inputs_problem(cls, SPEC, width=width, height=height, length=length, steps=steps,
                              guidance_type=guidance_type) or True

    @classmethod
    def execute(cls, model, positive, vae, width, height, length, guidance_type, steps, cfg, sampler_name, scheduler,
                negative=None) -> io.NodeOutput:
        problem = _cfg_problem(cfg, negative is not None)
        if problem:
            raise ChunkwiseError(problem)
        family = HunyuanVideoFamily(positive=positive, width=width, height=height, length=length,
                                    guidance_type=guidance_type, negative=negative)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
