"""Tiny random diffusers pipelines built from configs (no weights, CPU, seeded).

The component configurations follow diffusers' own fast tests
(``get_dummy_components`` of the SVD, CogVideoX I2V and Wan I2V pipeline tests);
the T5 text encoder is built from a config instead of downloaded, and no
tokenizer is made: tests pass text embeddings.
"""

from __future__ import annotations

import torch


def tiny_t5(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(vocab_size=64, d_model=d_model, d_ff=37, d_kv=8, num_heads=4, num_layers=2,
                      relative_attention_num_buckets=8, decoder_start_token_id=0)
    return T5EncoderModel(config).eval()


def tiny_svd(scheduler: str = "euler"):
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
        num_frames=3,
    )
    if scheduler == "euler":
        sched = EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
            num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
            steps_offset=1, timestep_spacing="leading", timestep_type="continuous", trained_betas=None,
            use_karras_sigmas=True,
        )
    else:
        sched = EulerAncestralDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
            prediction_type="v_prediction", steps_offset=1, timestep_spacing="leading",
        )
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4,
    )
    torch.manual_seed(0)
    # SVD resizes every guide to 224 x 224 for CLIP, so the tiny encoder takes 224 (16 x 16 patches of 14).
    config = CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
                              image_size=224, intermediate_size=37, patch_size=14)
    image_encoder = CLIPVisionModelWithProjection(config)
    feature_extractor = CLIPImageProcessor(crop_size=32, size=32)
    pipe = StableVideoDiffusionPipeline(unet=unet, image_encoder=image_encoder, scheduler=sched, vae=vae,
                                        feature_extractor=feature_extractor)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_cogvideox(scheduler: str = "dpm"):
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXDPMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    cls = CogVideoXDPMScheduler if scheduler == "dpm" else CogVideoXDDIMScheduler
    sched = cls(timestep_spacing="trailing", prediction_type="v_prediction", beta_schedule="scaled_linear",
                beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True, set_alpha_to_one=True,
                snr_shift_scale=1.0, clip_sample=False)
    pipe = CogVideoXImageToVideoPipeline(tokenizer=None, text_encoder=tiny_t5(), vae=vae, transformer=transformer,
                                         scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_wan():
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    sched = FlowMatchEulerDiscreteScheduler(shift=7.0)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, image_dim=4,
    )
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, intermediate_size=16, patch_size=1)
    image_encoder = CLIPVisionModelWithProjection(config)
    image_processor = CLIPImageProcessor(crop_size=32, size=32)
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=tiny_t5(), vae=vae, scheduler=sched,
                                   image_processor=image_processor, image_encoder=image_encoder,
                                   transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_wan22(boundary_ratio: float = 0.9):
    """Wan 2.2 I2V style: two experts split at ``boundary_ratio``, no CLIP image encoder."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    experts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        experts.append(WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
            text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
        ))
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=tiny_t5(), vae=vae,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), image_processor=None,
                                   image_encoder=None, transformer=experts[0], transformer_2=experts[1],
                                   boundary_ratio=boundary_ratio)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def text_embeds(dim: int = 32, length: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, length, dim, generator=g), torch.randn(1, length, dim, generator=g)


def guide_image(height: int = 32, width: int = 32, seed: int = 0):
    """A guide frame [1, H, W, 3] on the 8-bit grid (so a PIL copy is exact) and that PIL copy."""
    import numpy as np
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    u8 = torch.randint(0, 256, (height, width, 3), generator=g, dtype=torch.uint8)
    pil = Image.fromarray(u8.numpy())
    arr = np.asarray(pil).astype(np.float32) / 255.0
    return torch.from_numpy(arr).unsqueeze(0), pil
