"""The LTX-Video long-video workflow (built by scripts/make_workflows.py, which passes itself in as ``mw``),
from the stock ``ltxv_image_to_video`` template: its checkpoint, text encoder, prompts and frame rate."""

from __future__ import annotations

LTXV_2B = {"name": "ltx-video-2b-v0.9.5.safetensors",
           "url": "https://huggingface.co/Lightricks/LTX-Video/resolve/main/ltx-video-2b-v0.9.5.safetensors",
           "directory": "checkpoints"}
T5XXL = {"name": "t5xxl_fp16.safetensors",
         "url": "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors",
         "directory": "text_encoders"}

LTXV_PROMPT = ("A red fox moving gracefully, its russet coat vibrant against the white landscape, leaving perfect "
               "star-shaped prints behind as steam rises from its breath in the crisp winter air. The scene is wrapped "
               "in snow-muffled silence, broken only by the gentle murmur of water still flowing beneath the ice.")
LTXV_NEGATIVE = ("low quality, worst quality, deformed, distorted, disfigured, motion smear, motion artifacts, fused "
                 "fingers, bad anatomy, weird hand, ugly")
"""The stock template's prompts (it asks for long, descriptive ones)."""


def ltxv_long_video(mw):
    g = mw.Graph("chunkwise_ltxv_i2v_long_video",
                 "A long LTX-Video 0.9.5 video: ChunkLoop chains chunks with k-step noise search before each chunk.")
    g.note(mw._models_note(
        "chunkwise: long video with LTX-Video",
        "The stock LTX-Video 2B v0.9.5 image-to-video model, bound by I2V Model (LTX-Video): every chunk is "
        "conditioned by LTXVImgToVideo (its start frame pinned in the latent, strength 1.0 so the chunks join) and "
        "LTXVConditioning (25 fps), as the stock template. ChunkLoop chains the chunks; before each chunk "
        "`candidates` noises are previewed for `k` steps and scored with clip_vision_h (used only for scoring), "
        "and only the best is fully denoised. LTX-Video wants long, descriptive prompts. " + mw.OPTIONS_NOTE,
        [LTXV_2B, T5XXL, mw.CLIP_VISION_H]))
    ckpt = g.add("CheckpointLoaderSimple", models=[LTXV_2B], widgets={"ckpt_name": LTXV_2B["name"]})
    clip = g.add("CLIPLoader", models=[T5XXL], widgets={"clip_name": T5XXL["name"], "type": "ltxv"})
    clip_vision = g.add("CLIPVisionLoader", models=[mw.CLIP_VISION_H],
                        widgets={"clip_name": mw.CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": mw.START_IMAGE})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0], widgets={"text": LTXV_PROMPT})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": LTXV_NEGATIVE})
    i2v = g.add("ChunkwiseI2VLTXV", model=ckpt[0], positive=positive[0], negative=negative[0], vae=ckpt[2],
                widgets={"width": 768, "height": 512, "length": 97, "strength": 1.0, "frame_rate": 25.0,
                         "steps": 30, "cfg": 3.0, "sampler_name": "euler", "scheduler": "simple"})
    mw._loop_tail(g, i2v, image, clip_vision[0], 24.0, "video/chunkwise_ltxv_long", chunks=5)
    return g
