"""Text embeddings for the text-conditioned families, encoded once per run (CogVideoX, Wan here; LTX-Video and
HunyuanVideo 1.5, whose embeddings come with attention masks, in their own modules)."""

from __future__ import annotations

import torch

from ..errors import ChunkwiseError


def check_text_encoders(pipe, family: str, names=("tokenizer", "text_encoder"),
                        keys: str = "'prompt_embeds' and 'negative_prompt_embeds'") -> None:
    """Encoding a prompt needs the pipeline's tokenizers and text encoders ``names``: an error naming what is absent."""
    if all(getattr(pipe, name, None) is not None for name in names):
        return
    have = ", ".join(f"{name}={type(getattr(pipe, name, None)).__name__}" for name in names)
    raise ChunkwiseError(
        f"{family}: the prompt needs the pipeline's tokenizer and text encoder, but this pipeline has {have}; "
        f"add them to the model folder or pass prompt embeddings (--prompt-embeds FILE with {keys})"
    )


def encode_text(pipe, family: str, do_cfg: bool, device, text: dict, *, max_sequence_length: int, dtype=None):
    """Return ``(prompt_embeds, negative_prompt_embeds)`` (the negative is None without guidance).

    Embeddings passed in ``text`` are used as they are (cast to ``dtype``, the
    denoising model's); prompts need the pipeline's tokenizer and text encoder.
    """
    prompt_embeds = text.get("prompt_embeds")
    negative_embeds = text.get("negative_prompt_embeds")
    need_encoder = prompt_embeds is None or (do_cfg and negative_embeds is None)
    if need_encoder:
        check_text_encoders(pipe, family)
    with torch.no_grad():
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt=None if prompt_embeds is not None else (text.get("prompt") or ""),
            negative_prompt=None if negative_embeds is not None else (text.get("negative_prompt") or ""),
            do_classifier_free_guidance=do_cfg,
            num_videos_per_prompt=1,
            prompt_embeds=None if prompt_embeds is None else prompt_embeds.to(device),
            negative_prompt_embeds=None if negative_embeds is None else negative_embeds.to(device),
            max_sequence_length=max_sequence_length,
            device=device,
        )
    if prompt_embeds.shape[0] != 1:
        raise ChunkwiseError(
            f"{family}: expected one prompt, got prompt embeddings of batch {prompt_embeds.shape[0]} "
            f"(shape {list(prompt_embeds.shape)}); pass a single prompt"
        )
    if dtype is not None:
        prompt_embeds = prompt_embeds.to(dtype)
        negative_embeds = negative_embeds.to(dtype) if negative_embeds is not None else None
    return prompt_embeds, (negative_embeds if do_cfg else None)
