"""Tiny random LTX-Video, HunyuanVideo 1.5 and Kandinsky 5 image-to-video pipelines built from configs (no weights,
CPU, seeded).

The shapes follow diffusers' own fast tests of these pipelines, shrunk further: LTX's VAE compresses 4x in space
and time (the published one 32x and 8x), HunyuanVideo 1.5's 4x and 4x (16x and 4x), Kandinsky 5's (HunyuanVideo's
VAE) 8x and 4x as published. The schedulers carry the
published settings that change the schedule (LTX's sequence-length shift, HunyuanVideo 1.5's shift). No tokenizer
or text encoder is made: tests pass text embeddings with their attention masks.
"""

from __future__ import annotations

import torch


def tiny_ltx(timestep_conditioning: bool = False):
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=timestep_conditioning,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )
    # Random latents statistics, so normalising the guide's latent is not the identity.
    g = torch.Generator().manual_seed(1)
    vae.latents_mean.copy_(torch.randn(8, generator=g) * 0.1)
    vae.latents_std.copy_(torch.rand(8, generator=g) + 0.5)
    sched = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                            base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1)
    pipe = LTXImageToVideoPipeline(scheduler=sched, vae=vae, text_encoder=None, tokenizer=None,
                                   transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_hunyuan15(guidance_scale: float = 6.0, use_meanflow: bool = False):
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        ClassifierFreeGuidance,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    channels = 4
    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=2 * channels + 1, out_channels=channels, num_attention_heads=2, attention_head_dim=8,
        num_layers=1, num_refiner_layers=1, text_embed_dim=16, text_embed_2_dim=8, image_embed_dim=12,
        rope_axes_dim=(2, 2, 4), target_size=32, task_type="i2v", use_meanflow=use_meanflow,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(latent_channels=channels, block_out_channels=(8, 8, 8), layers_per_block=1,
                                      spatial_compression_ratio=4, temporal_compression_ratio=4)
    torch.manual_seed(0)
    config = SiglipVisionConfig(hidden_size=12, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                                image_size=16, patch_size=4)
    pipe = HunyuanVideo15ImageToVideoPipeline(
        text_encoder=None, tokenizer=None, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), text_encoder_2=None, tokenizer_2=None,
        guider=ClassifierFreeGuidance(guidance_scale=guidance_scale), image_encoder=SiglipVisionModel(config),
        feature_extractor=SiglipImageProcessor(size={"height": 16, "width": 16}),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_kandinsky5():
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5I2VPipeline,
        Kandinsky5Transformer3DModel,
    )

    torch.manual_seed(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, out_visual_dim=4, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=1, axes_dims=(2, 2, 4), visual_cond=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True,
    )
    pipe = Kandinsky5I2VPipeline(transformer=transformer, vae=vae, text_encoder=None, tokenizer=None,
                                 text_encoder_2=None, tokenizer_2=None,
                                 scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def kandinsky5_text(seed: int = 0):
    """Qwen2.5-VL hidden states and the CLIP pooled embedding, positive and negative, for the tiny Kandinsky 5."""
    g = torch.Generator().manual_seed(seed)
    return dict(prompt_embeds_qwen=torch.randn(1, 7, 16, generator=g), prompt_embeds_clip=torch.randn(1, 8, generator=g),
                negative_prompt_embeds_qwen=torch.randn(1, 5, 16, generator=g),
                negative_prompt_embeds_clip=torch.randn(1, 8, generator=g))


def kandinsky5_stock_text(seed: int = 0):
    """:func:`kandinsky5_text` with the cumulative sequence lengths the stock call also needs."""
    text = kandinsky5_text(seed)
    for prefix in ("", "negative_"):
        length = text[f"{prefix}prompt_embeds_qwen"].shape[1]
        text[f"{prefix}prompt_cu_seqlens"] = torch.tensor([0, length], dtype=torch.int32)
    return text


def ltx_text(seed: int = 0):
    """``prompt_embeds``, ``negative_prompt_embeds`` and their masks for the tiny LTX (the last tokens padding)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(1, 16, dtype=torch.bool)
    mask[:, 12:] = False
    return dict(prompt_embeds=torch.randn(1, 16, 32, generator=g), prompt_attention_mask=mask,
                negative_prompt_embeds=torch.randn(1, 16, 32, generator=g), negative_prompt_attention_mask=mask)


def hunyuan15_text(seed: int = 0):
    """The eight embeddings and masks of HunyuanVideo 1.5 (Qwen2.5-VL and ByT5, positive and negative)."""
    g = torch.Generator().manual_seed(seed)
    mask, mask_2 = torch.ones(1, 10), torch.ones(1, 6)
    mask[:, 7:] = 0
    mask_2[:, 4:] = 0
    return dict(prompt_embeds=torch.randn(1, 10, 16, generator=g), prompt_embeds_mask=mask,
                prompt_embeds_2=torch.randn(1, 6, 8, generator=g), prompt_embeds_mask_2=mask_2,
                negative_prompt_embeds=torch.randn(1, 10, 16, generator=g), negative_prompt_embeds_mask=mask,
                negative_prompt_embeds_2=torch.randn(1, 6, 8, generator=g), negative_prompt_embeds_mask_2=mask_2)
