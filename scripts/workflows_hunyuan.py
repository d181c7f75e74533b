"""The bundled HunyuanVideo long-video workflows, built with scripts/make_workflows.py's helpers.

Kept in a module of their own so each family's graph can change without touching the others'.
:func:`graphs` takes the make_workflows module (its ``Graph``, ``_models_note``, ``_loop_tail`` ...) as an
argument, so this file imports nothing from it and works both as ``chunkwise.scripts.workflows_hunyuan`` and
beside make_workflows.py run as a script.
"""

from __future__ import annotations

_HY15_REPACK = "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files/"
# video_hunyuan_video_1.5_720p_i2v.json: its loaders' file names and properties.models entries.
HY15_I2V_720P = {"name": "hunyuanvideo1.5_720p_i2v_fp16.safetensors",
                 "url": _HY15_REPACK + "diffusion_models/hunyuanvideo1.5_720p_i2v_fp16.safetensors",
                 "directory": "diffusion_models"}
HY15_QWEN = {"name": "qwen_2.5_vl_7b_fp8_scaled.safetensors",
             "url": _HY15_REPACK + "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors", "directory": "text_encoders"}
HY15_BYT5 = {"name": "byt5_small_glyphxl_fp16.safetensors",
             "url": _HY15_REPACK + "text_encoders/byt5_small_glyphxl_fp16.safetensors", "directory": "text_encoders"}
HY15_VAE = {"name": "hunyuanvideo15_vae_fp16.safetensors", "url": _HY15_REPACK + "vae/hunyuanvideo15_vae_fp16.safetensors",
            "directory": "vae"}
SIGCLIP = {"name": "sigclip_vision_patch14_384.safetensors",
           "url": "https://huggingface.co/Comfy-Org/sigclip_vision_384/resolve/main/sigclip_vision_patch14_384.safetensors",
           "directory": "clip_vision"}

HY15_PROMPT = ("A feathered young dinosaur moves alertly through a sun-dappled, dense coniferous forest; sunbeams "
               "filter through the canopy over mossy undergrowth, the camera follows it slowly.")


def hunyuan15_long_video(mw):
    g = mw.Graph("chunkwise_hunyuan15_i2v_long_video",
                 "A long HunyuanVideo 1.5 I2V 720p video: ChunkLoop chains chunks with k-step noise search before "
                 "each chunk.")
    g.note(mw._models_note(
        "chunkwise: long video with HunyuanVideo 1.5 I2V",
        "The stock HunyuanVideo 1.5 image-to-video template's models (720p I2V, Qwen 2.5 VL + ByT5, SigCLIP "
        "vision), bound by I2V Model (HunyuanVideo 1.5): every chunk is conditioned by HunyuanVideo15ImageToVideo "
        "and the SigCLIP encoding of its start frame, which is the last frame of the chunk before. Before each "
        "chunk `candidates` noises are previewed for `k` steps and scored with the same SigCLIP model; only the "
        "best is fully denoised. For the 480p (step-distilled) models use 848x480 and ModelSamplingSD3 shift 5 "
        "(the distilled ones: cfg 1). " + mw.OPTIONS_NOTE,
        [HY15_I2V_720P, HY15_QWEN, HY15_BYT5, HY15_VAE, SIGCLIP]))
    unet = g.add("UNETLoader", models=[HY15_I2V_720P],
                 widgets={"unet_name": HY15_I2V_720P["name"], "weight_dtype": "default"})
    clip = g.add("DualCLIPLoader", models=[HY15_QWEN, HY15_BYT5],
                 widgets={"clip_name1": HY15_QWEN["name"], "clip_name2": HY15_BYT5["name"], "type": "hunyuan_video_15",
                          "device": "default"})
    vae = g.add("VAELoader", models=[HY15_VAE], widgets={"vae_name": HY15_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[SIGCLIP], widgets={"clip_name": SIGCLIP["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    model = g.add("ModelSamplingSD3", model=unet[0], widgets={"shift": 7.0})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0], widgets={"text": HY15_PROMPT})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": ""})
    i2v = g.add("ChunkwiseI2VHunyuanVideo15", model=model[0], positive=positive[0], negative=negative[0], vae=vae[0],
                clip_vision=clip_vision[0],
                widgets={"width": 1280, "height": 720, "length": 121, "steps": 20, "cfg": 6.0,
                         "sampler_name": "euler", "scheduler": "simple"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 24.0, "video/chunkwise_hunyuan15_long", chunks=5)
    return g


_HY_REPACK = "https://huggingface.co/Comfy-Org/HunyuanVideo_repackaged/resolve/main/split_files/"
# No installed template uses HunyuanImageToVideo: the text encoders and VAE are hunyuan_video_text_to_video.json's
# (its file names and properties.models entries), the I2V model and llava vision files those of the same repackage.
HY_I2V_V1 = {"name": "hunyuan_video_image_to_video_720p_bf16.safetensors",
             "url": _HY_REPACK + "diffusion_models/hunyuan_video_image_to_video_720p_bf16.safetensors",
             "directory": "diffusion_models"}
HY_I2V_V2 = {"name": "hunyuan_video_v2_replace_image_to_video_720p_bf16.safetensors",
             "url": _HY_REPACK + "diffusion_models/hunyuan_video_v2_replace_image_to_video_720p_bf16.safetensors",
             "directory": "diffusion_models"}
HY_CLIP_L = {"name": "clip_l.safetensors",
             "url": "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors?download=true",
             "directory": "text_encoders"}
HY_LLAVA = {"name": "llava_llama3_fp8_scaled.safetensors",
            "url": _HY_REPACK + "text_encoders/llava_llama3_fp8_scaled.safetensors?download=true",
            "directory": "text_encoders"}
HY_VAE = {"name": "hunyuan_video_vae_bf16.safetensors", "url": _HY_REPACK + "vae/hunyuan_video_vae_bf16.safetensors?download=true",
          "directory": "vae"}
HY_LLAVA_VISION = {"name": "llava_llama3_vision.safetensors",
                   "url": _HY_REPACK + "clip_vision/llava_llama3_vision.safetensors", "directory": "clip_vision"}

HY_PROMPT = "a calm lake at sunrise, mist over the water, the camera slowly pans right"


def hunyuan_long_video(mw):
    g = mw.Graph("chunkwise_hunyuan_i2v_long_video",
                 "A long HunyuanVideo I2V video: ChunkLoop chains chunks with k-step noise search before each chunk.")
    g.note(mw._models_note(
        "chunkwise: long video with HunyuanVideo I2V",
        "The HunyuanVideo image-to-video model (v1, concat), bound by I2V Model (HunyuanVideo): every chunk is "
        "conditioned by HunyuanImageToVideo on its start frame, the last frame of the chunk before. The prompt is "
        "encoded once, with the llava vision tokens of the first start image (TextEncodeHunyuanVideo_ImageToVideo), "
        "and FluxGuidance sets the embedded guidance. Before each chunk `candidates` noises are previewed for `k` "
        "steps and scored with the llava vision model; only the best is fully denoised. For the v2 model load "
        f"{HY_I2V_V2['name']} ([download]({HY_I2V_V2['url']})) and set guidance_type to v2 (replace). "
        + mw.OPTIONS_NOTE,
        [HY_I2V_V1, HY_CLIP_L, HY_LLAVA, HY_VAE, HY_LLAVA_VISION]))
    unet = g.add("UNETLoader", models=[HY_I2V_V1], widgets={"unet_name": HY_I2V_V1["name"], "weight_dtype": "default"})
    clip = g.add("DualCLIPLoader", models=[HY_CLIP_L, HY_LLAVA],
                 widgets={"clip_name1": HY_CLIP_L["name"], "clip_name2": HY_LLAVA["name"], "type": "hunyuan_video",
                          "device": "default"})
    vae = g.add("VAELoader", models=[HY_VAE], widgets={"vae_name": HY_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[HY_LLAVA_VISION], widgets={"clip_name": HY_LLAVA_VISION["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    model = g.add("ModelSamplingSD3", model=unet[0], widgets={"shift": 7.0})
    vision = g.add("CLIPVisionEncode", clip_vision=clip_vision[0], image=image[0], widgets={"crop": "none"})
    text = g.add("TextEncodeHunyuanVideo_ImageToVideo", title="Prompt (with the start image)", clip=clip[0],
                 clip_vision_output=vision[0], widgets={"prompt": HY_PROMPT, "image_interleave": 2})
    positive = g.add("FluxGuidance", conditioning=text[0], widgets={"guidance": 6.0})
    i2v = g.add("ChunkwiseI2VHunyuanVideo", model=model[0], positive=positive[0], vae=vae[0],
                widgets={"width": 848, "height": 480, "length": 73, "guidance_type": "v1 (concat)", "steps": 20,
                         "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 24.0, "video/chunkwise_hunyuan_long", chunks=5)
    return g


def graphs(mw) -> list:
    """The HunyuanVideo workflows' graphs."""
    return [hunyuan15_long_video(mw), hunyuan_long_video(mw)]
