"""The bundled long-video workflows of the families whose stock node pins the start image under a noise mask
(Wan 2.2 5B TI2V), built on scripts/make_workflows.py's helpers, which it hands in as ``mw`` (no import back).

Each starts from its stock template in ComfyUI's ``comfyui-workflow-templates`` packages (the model files,
their download entries, sizes, sampler settings and prompts), with the stock conditioning node and sampler
replaced by the family's binding node and ChunkLoop, and CLIP vision added for scoring.
"""

from __future__ import annotations

_WAN22_REPACK = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
WAN22_TI2V_5B = {"name": "wan2.2_ti2v_5B_fp16.safetensors",
                 "url": _WAN22_REPACK + "diffusion_models/wan2.2_ti2v_5B_fp16.safetensors",
                 "directory": "diffusion_models"}
WAN22_VAE = {"name": "wan2.2_vae.safetensors", "url": _WAN22_REPACK + "vae/wan2.2_vae.safetensors", "directory": "vae"}
WAN22_5B_PROMPT = ("Low contrast. In a retro 1970s-style subway station, a street musician plays in dim colors and rough "
                   "textures. He wears an old jacket, playing guitar with focus. Commuters hurry by, and a small crowd "
                   "gathers to listen. The camera slowly moves right, capturing the blend of music and city noise, "
                   "with old subway signs and mottled walls in the background.")
"""video_wan2_2_5B_ti2v.json's positive prompt."""


def wan22_5b_long_video(mw):
    g = mw.Graph("chunkwise_wan22_5b_ti2v_long_video",
                 "A long Wan 2.2 TI2V 5B video: ChunkLoop chains chunks, each started from the last frame of the "
                 "one before, with k-step noise search before each chunk.")
    g.note(mw._models_note(
        "chunkwise: long video with Wan 2.2 TI2V 5B",
        "The stock Wan 2.2 5B text-and-image-to-video model (video_wan2_2_5B_ti2v), bound by I2V Model (Wan 2.2 5B "
        "TI2V): every chunk starts from Wan22ImageToVideoLatent on the last frame of the one before, pinned in the "
        "first latent frame, with the text conditioning going straight to the sampler. Before each chunk "
        "`candidates` noises are previewed for `k` steps and scored with clip_vision_h (used only for scoring: the "
        "5B model has no CLIP-vision input), and only the best is fully denoised. " + mw.OPTIONS_NOTE,
        [WAN22_TI2V_5B, mw.UMT5, WAN22_VAE, mw.CLIP_VISION_H]))
    unet = g.add("UNETLoader", models=[WAN22_TI2V_5B],
                 widgets={"unet_name": WAN22_TI2V_5B["name"], "weight_dtype": "default"})
    clip = g.add("CLIPLoader", models=[mw.UMT5], widgets={"clip_name": mw.UMT5["name"], "type": "wan"})
    vae = g.add("VAELoader", models=[WAN22_VAE], widgets={"vae_name": WAN22_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[mw.CLIP_VISION_H], widgets={"clip_name": mw.CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    model = g.add("ModelSamplingSD3", model=unet[0], widgets={"shift": 8.0})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0], widgets={"text": WAN22_5B_PROMPT})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": mw.WAN_NEGATIVE})
    i2v = g.add("ChunkwiseI2VWan22TI2V", model=model[0], positive=positive[0], negative=negative[0], vae=vae[0],
                widgets={"width": 1280, "height": 704, "length": 121, "steps": 20, "cfg": 5.0,
                         "sampler_name": "uni_pc", "scheduler": "simple"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 24.0, "video/chunkwise_wan22_5b_long", chunks=5)
    return g


def graphs(mw) -> list:
    """This module's workflow graphs, built with make_workflows' helpers ``mw``."""
    return [wan22_5b_long_video(mw)]
