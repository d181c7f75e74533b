"""Stable Video Diffusion (svd / svd_xt): ``SVD_img2vid_Conditioning`` on each chunk's start image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from comfy_api.latest import io

from ...search.errors import ChunkwiseError
from ..types import I2V
from .node import CATEGORY, bind, dimension_input, frames_input, inputs_problem, sampler_inputs
from .spec import Family, FamilySpec, SamplerDefaults, SizeRule

SPEC = FamilySpec(
    name="SVD",
    node="SVD_img2vid_Conditioning",
    batch="frames",  # latent [video_frames, 4, height/8, width/8]: batch = frames
    sizes=SizeRule(multiple=8, frames="video_frames", frames_fix="use 14 (SVD) or 25 (SVD-XT)"),
    defaults=SamplerDefaults(steps=20, cfg=2.5, scheduler="karras"),  # image_to_video.json
    latent_format="SD15",
)


@dataclass(eq=False)
class SVDFamily(Family):
    """The inputs of ``SVD_img2vid_Conditioning`` (V1 node).

    The guide goes to the node unchanged: it encodes the guide with CLIP vision
    at CLIP's own resolution (center crop) and resizes it to ``width`` x
    ``height`` with ``comfy.utils.common_upscale(..., "bilinear", "center")``
    (scale to cover, then center crop) before the VAE encode, like the stock
    workflow.

    ``min_cfg``: when set, the model is patched once with
    ``VideoLinearCFGGuidance(min_cfg)`` (cfg ramps from min_cfg on the first
    frame to cfg on the last), as the stock SVD workflow does.
    ``augmentation_level > 0`` makes the node draw noise from torch's global
    generator; it is drawn under ``augmentation_seed`` so chunks reproduce.
    """

    spec = SPEC

    clip_vision: Any
    width: int
    height: int
    video_frames: int
    motion_bucket_id: int = 127
    fps: int = 6
    augmentation_level: float = 0.0
    min_cfg: Optional[float] = None
    augmentation_seed: int = 0

    def __post_init__(self) -> None:
        if self.clip_vision is None:
            raise ChunkwiseError("SVD needs a CLIP_VISION model, got None; connect the checkpoint's CLIP_VISION output")
        super().__post_init__()
        self.augmentation_level = float(self.augmentation_level)
        self.augmentation_seed = int(self.augmentation_seed)

    def patch_model(self, model):
        if self.min_cfg is None:
            return model
        from comfy_extras.nodes_video_model import VideoLinearCFGGuidance

        return VideoLinearCFGGuidance().patch(model, float(self.min_cfg))[0]

    def condition(self, vae, guide: torch.Tensor):
        from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning

        args = (self.clip_vision, guide, vae, self.width, self.height, self.video_frames, self.motion_bucket_id,
                self.fps, self.augmentation_level)
        if self.augmentation_level > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.augmentation_seed)
                return SVD_img2vid_Conditioning().encode(*args)
        return SVD_img2vid_Conditioning().encode(*args)

    def details(self) -> list[str]:
        return [f"motion {self.motion_bucket_id}", f"fps {self.fps}", f"aug {self.augmentation_level}"] + (
            [f"min_cfg {self.min_cfg}"] if self.min_cfg is not None else [])


class I2VSVD(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseI2VSVD",
            display_name="I2V Model (SVD)",
            category=CATEGORY,
            description="Stable Video Diffusion (svd / svd_xt) as an I2V model for ChunkLoop. Every chunk is "
                        "conditioned by ComfyUI's SVD_img2vid_Conditioning on its guide frame, resized (centre crop) "
                        "to width x height. Put VideoLinearCFGGuidance on the model as in the stock workflow.",
            inputs=[
                io.Model.Input("model", tooltip="From ImageOnlyCheckpointLoader (svd_xt.safetensors)."),
                io.ClipVision.Input("clip_vision", tooltip="From ImageOnlyCheckpointLoader (the SVD checkpoint's own)."),
                io.Vae.Input("vae", tooltip="From ImageOnlyCheckpointLoader."),
                dimension_input(SPEC, "width", 1024,
                                "Frame width. svd_xt is trained at 1024x576; smaller is faster but softer."),
                dimension_input(SPEC, "height", 576, "Frame height."),
                frames_input(SPEC, 25, 4096, "Frames per chunk: 25 for svd_xt, 14 for svd. More frames: longer "
                                             "chunks, more memory per step."),
                io.Int.Input("motion_bucket_id", default=127, min=1, max=1023,
                             tooltip="Amount of motion. Higher: more motion, more risk of the chain drifting."),
                io.Int.Input("fps", default=6, min=1, max=1024, tooltip="Frame-rate conditioning."),
                io.Float.Input("augmentation_level", default=0.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Noise added to the guide frame. Higher: less like the guide, more motion."),
                *sampler_inputs(SPEC.defaults),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, video_frames=None, steps=None):
        return inputs_problem(cls, SPEC, width=width, height=height, video_frames=video_frames, steps=steps) or True

    @classmethod
    def execute(cls, model, clip_vision, vae, width, height, video_frames, motion_bucket_id, fps, augmentation_level,
                steps, cfg, sampler_name, scheduler) -> io.NodeOutput:
        family = SVDFamily(clip_vision=clip_vision, width=width, height=height, video_frames=video_frames,
                           motion_bucket_id=motion_bucket_id, fps=fps, augmentation_level=augmentation_level)
        return io.NodeOutput(bind(model, vae, family, steps, cfg, sampler_name, scheduler))
