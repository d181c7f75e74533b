"""The bundled long-video workflows of the families whose stock node pins the start image under a noise mask
(Wan 2.2 5B TI2V, Cosmos Predict2 I2V), built on scripts/make_workflows.py's helpers, which it hands in as ``mw`` (no import back).

Each starts from its stock template (the model files, their download entries, sizes, sampler settings and
prompts), with the stock conditioning node and sampler replaced by the family's binding node and ChunkLoop, and
CLIP vision added for scoring: ``video_wan2_2_5B_ti2v`` from ComfyUI's ``comfyui-workflow-templates`` packages;
``video_cosmos_predict2_2B_video2world_480p_16fps`` from the templates repository (Comfy-Org/workflow_templates),
since no installed templates package carries a Cosmos Predict2 template.
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


COSMOS_PREDICT2_2B = {
    "name": "cosmos_predict2_2B_video2world_480p_16fps.safetensors",
    "url": "https://huggingface.co/Comfy-Org/Cosmos_Predict2_repackaged/resolve/main/"
           "cosmos_predict2_2B_video2world_480p_16fps.safetensors",
    "directory": "diffusion_models",
}
OLDT5 = {"name": "oldt5_xxl_fp8_e4m3fn_scaled.safetensors",
         "url": "https://huggingface.co/comfyanonymous/cosmos_1.0_text_encoder_and_VAE_ComfyUI/resolve/main/"
                "text_encoders/oldt5_xxl_fp8_e4m3fn_scaled.safetensors",
         "directory": "text_encoders"}
COSMOS_PROMPT = ("The night of the city, from the perspective of the car's front window, real shooting, real scene, "
                 "late-night emo style, emotional, sad, neon lights, sense of the future, rain, cinematic feel, "
                 "cyberpunk")
"""video_cosmos_predict2_2B_video2world_480p_16fps.json's positive prompt (its negative one is empty)."""


def cosmos_long_video(mw):
    g = mw.Graph("chunkwise_cosmos_predict2_i2v_long_video",
                 "A long Cosmos Predict2 2B video2world video: ChunkLoop chains chunks, each started from the last "
                 "frame of the one before, with k-step noise search before each chunk.")
    g.note(mw._models_note(
        "chunkwise: long video with Cosmos Predict2 2B video2world",
        "The stock Cosmos Predict2 2B image-to-video model (video_cosmos_predict2_2B_video2world_480p_16fps), bound "
        "by I2V Model (Cosmos Predict2): every chunk starts from CosmosPredict2ImageToVideoLatent on the last frame "
        "of the one before, pinned in the first latent frame, with the text conditioning going straight to the "
        "sampler. Before each chunk `candidates` noises are previewed for `k` steps and scored with clip_vision_h "
        "(used only for scoring), and only the best is fully denoised. " + mw.OPTIONS_NOTE,
        [COSMOS_PREDICT2_2B, OLDT5, mw.WAN_VAE, mw.CLIP_VISION_H]))
    unet = g.add("UNETLoader", models=[COSMOS_PREDICT2_2B],
                 widgets={"unet_name": COSMOS_PREDICT2_2B["name"], "weight_dtype": "default"})
    clip = g.add("CLIPLoader", models=[OLDT5], widgets={"clip_name": OLDT5["name"], "type": "cosmos"})
    vae = g.add("VAELoader", models=[mw.WAN_VAE], widgets={"vae_name": mw.WAN_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[mw.CLIP_VISION_H], widgets={"clip_name": mw.CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0], widgets={"text": COSMOS_PROMPT})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": ""})
    i2v = g.add("ChunkwiseI2VCosmosPredict2", model=unet[0], positive=positive[0], negative=negative[0], vae=vae[0],
                widgets={"width": 848, "height": 480, "length": 93, "steps": 35, "cfg": 4.0,
                         "sampler_name": "euler", "scheduler": "karras"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 16.0, "video/chunkwise_cosmos_predict2_long", chunks=5)
    return g


def graphs(mw) -> list:
    """This module's workflow graphs, built with make_workflows' helpers ``mw``."""
    return [wan22_5b_long_video(mw), cosmos_long_video(mw)]
