"""Model binding nodes: one per family, each making the I2V object ChunkLoop drives.

Each binds MODEL, VAE and what the family's conditioning needs, plus the
sampler settings, into a :class:`ComfyI2V` (the search/ denoiser protocol).
Per chunk it calls ComfyUI's own conditioning node (SVD_img2vid_Conditioning,
WanImageToVideo), so no family logic is rewritten here.
"""

from __future__ import annotations

from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ..search.errors import ChunkwiseError
from .chunk_nodes import _sampler_inputs
from .comfy_i2v import ComfyI2V, SVDFamily, WanFamily
from .plumbing import widget_problem
from .types import I2V

CATEGORY = "chunkwise/models"


def _bind(model, vae, family, steps, cfg, sampler_name, scheduler, **experts) -> ComfyI2V:
    i2v = ComfyI2V(model, vae, family, sampler_name=sampler_name, scheduler=scheduler, cfg=cfg, **experts)
    i2v.steps = int(steps)
    return i2v


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
                io.Int.Input("width", default=1024, min=16, max=comfy_nodes.MAX_RESOLUTION, step=8,
                             tooltip="Frame width. svd_xt is trained at 1024x576; smaller is faster but softer."),
                io.Int.Input("height", default=576, min=16, max=comfy_nodes.MAX_RESOLUTION, step=8,
                             tooltip="Frame height."),
                io.Int.Input("video_frames", default=25, min=1, max=4096,
                             tooltip="Frames per chunk: 25 for svd_xt, 14 for svd. More frames: longer chunks, "
                                     "more memory per step."),
                io.Int.Input("motion_bucket_id", default=127, min=1, max=1023,
                             tooltip="Amount of motion. Higher: more motion, more risk of the chain drifting."),
                io.Int.Input("fps", default=6, min=1, max=1024, tooltip="Frame-rate conditioning."),
                io.Float.Input("augmentation_level", default=0.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Noise added to the guide frame. Higher: less like the guide, more motion."),
                *_sampler_inputs(steps_default=20),
            ],
            outputs=[I2V.Output("i2v", tooltip="The bound model, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, video_frames=None, steps=None):
        problem = widget_problem(cls, width=width, height=height, video_frames=video_frames, steps=steps,
                                 multiples={"width": 8, "height": 8})
        return problem or True

    @classmethod
    def execute(cls, model, clip_vision, vae, width, height, video_frames, motion_bucket_id, fps, augmentation_level,
                steps, cfg, sampler_name, scheduler) -> io.NodeOutput:
        family = SVDFamily(
            clip_vision=clip_vision,
            width=width,
            height=height,
            video_frames=video_frames,
            motion_bucket_id=motion_bucket_id,
            fps=fps,
            augmentation_level=augmentation_level,
        )
        return io.NodeOutput(_bind(model, vae, family, steps, cfg, sampler_name, scheduler))


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
                io.Int.Input("width", default=832, min=16, max=comfy_nodes.MAX_RESOLUTION, step=16,
                             tooltip="Frame width (480p: 832x480)."),
                io.Int.Input("height", default=480, min=16, max=comfy_nodes.MAX_RESOLUTION, step=16,
                             tooltip="Frame height."),
                io.Int.Input("length", default=33, min=1, max=comfy_nodes.MAX_RESOLUTION, step=4,
                             tooltip="Frames per chunk (4n+1; 81 is Wan's native length). Longer: fewer seams, more "
                                     "memory and time per step."),
                *_sampler_inputs(steps_default=20, cfg_default=6.0, scheduler_default="simple"),
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
        problem = widget_problem(cls, width=width, height=height, length=length, steps=steps, switch_step=switch_step,
                                 multiples={"width": 16, "height": 16})
        if problem:
            return problem
        if length is not None and (length - 1) % 4:
            return (f"length must be 4*n + 1 frames (the Wan VAE packs 4 frames per latent), got {length}; "
                    f"use {length - (length - 1) % 4} or {length - (length - 1) % 4 + 4}")
        if switch_step and steps is not None and switch_step >= steps:
            return (f"switch_step must be smaller than steps, got switch_step={switch_step}, steps={steps}; "
                    f"use {max(1, steps // 2)} (half, as the stock Wan 2.2 workflow) or 0 for half")
        return True

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
        return io.NodeOutput(_bind(model, vae, family, steps, cfg, sampler_name, scheduler, **experts))


BINDING_NODES = [I2VSVD, I2VWan]
