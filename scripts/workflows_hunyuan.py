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


def graphs(mw) -> list:
    """The HunyuanVideo workflows' graphs."""
    return [hunyuan15_long_video(mw)]
