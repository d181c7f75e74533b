"""The Kandinsky 5 I2V long-video workflow (built by scripts/make_workflows.py, which passes itself in as ``mw``),
from the stock ``video_kandinsky5_i2v`` template: its models, text encoders, shift and sampler settings. Made
from ComfyUI 0.28.2's /object_info (``made_on``): 0.3.75 has no Kandinsky 5."""

from __future__ import annotations

MADE_ON = (0, 28, 2)

K5_I2V = {"name": "kandinsky5lite_i2v_5s.safetensors",
          "url": "https://huggingface.co/kandinskylab/Kandinsky-5.0-I2V-Lite-5s/resolve/main/model/"
                 "kandinsky5lite_i2v_5s.safetensors",
          "directory": "diffusion_models"}
QWEN25_VL = {"name": "qwen_2.5_vl_7b_fp8_scaled.safetensors",
             "url": "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files/"
                    "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
             "directory": "text_encoders"}
CLIP_L = {"name": "clip_l.safetensors",
          "url": "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors?download=true",
          "directory": "text_encoders"}
HUNYUAN_VAE = {"name": "hunyuan_video_vae_bf16.safetensors",
               "url": "https://huggingface.co/Kijai/HunyuanVideo_comfy/resolve/main/hunyuan_video_vae_bf16.safetensors",
               "directory": "vae"}

K5_PROMPT = ("Cinematic dynamic scene in deep blue dream haze: the camera glides slowly forward, focusing on tightly "
             "closed crystal flower buds that sway gently with misty currents; sequined leaves tremble, scattering "
             "glimmers that trail light streaks, all motion flowing in a quiet, breath-like rhythm.")


def kandinsky5_long_video(mw):
    g = mw.Graph("chunkwise_kandinsky5_i2v_long_video",
                 "A long Kandinsky 5 Lite I2V video (ComfyUI 0.28.2 or newer): ChunkLoop chains chunks with k-step "
                 "noise search before each chunk.", made_on=MADE_ON)
    g.note(mw._models_note(
        "chunkwise: long video with Kandinsky 5 Lite I2V",
        "The stock Kandinsky 5 Lite image-to-video model (needs ComfyUI 0.28.2 or newer), bound by I2V Model "
        "(Kandinsky 5): every chunk is conditioned by Kandinsky5ImageToVideo, and every finished chunk gets the "
        "stock template's ReplaceVideoLatentFrames and NormalizeVideoLatentStart. The sampler is euler (exact "
        "truncated-preview resume) where the template uses euler_ancestral. ChunkLoop chains the chunks; before "
        "each chunk `candidates` noises are previewed for `k` steps and scored with clip_vision_h (used only for "
        "scoring), and only the best is fully denoised. " + mw.OPTIONS_NOTE,
        [K5_I2V, QWEN25_VL, CLIP_L, HUNYUAN_VAE, mw.CLIP_VISION_H]))
    unet = g.add("UNETLoader", models=[K5_I2V], widgets={"unet_name": K5_I2V["name"], "weight_dtype": "default"})
    clip = g.add("DualCLIPLoader", models=[QWEN25_VL, CLIP_L],
                 widgets={"clip_name1": QWEN25_VL["name"], "clip_name2": CLIP_L["name"], "type": "kandinsky5",
                          "device": "default"})
    vae = g.add("VAELoader", models=[HUNYUAN_VAE], widgets={"vae_name": HUNYUAN_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[mw.CLIP_VISION_H],
                        widgets={"clip_name": mw.CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    model = g.add("ModelSamplingSD3", model=unet[0], widgets={"shift": 5.0})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0], widgets={"text": K5_PROMPT})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": ""})
    i2v = g.add("ChunkwiseI2VKandinsky5", model=model[0], positive=positive[0], negative=negative[0], vae=vae[0],
                widgets={"width": 768, "height": 512, "length": 121, "steps": 50, "cfg": 5.0,
                         "sampler_name": "euler", "scheduler": "beta"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 24.0, "video/chunkwise_kandinsky5_long", chunks=5)
    return g
