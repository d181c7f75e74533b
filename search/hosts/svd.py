"""Stable Video Diffusion (diffusers ``StableVideoDiffusionPipeline``) as a search denoiser.

Mirrors ``StableVideoDiffusionPipeline.__call__`` step for step, for a guide of
any size: CLIP sees the guide as it came, the VAE the guide resized like the
stock call's ``video_processor``. With a deterministic scheduler (Euler, the
default) one chunk equals the stock call with ``latents=noise`` and
``generator=torch.Generator().manual_seed(seed)`` (the generator draws the
noise augmentation of the guide). With an ancestral scheduler it does not: the
stock loop passes no generator to ``scheduler.step``, so its step noise comes
from torch's global generator, while the host draws it from the run's seeded
generator (reproducible and resumable).
"""

from __future__ import annotations

import torch

from .base import DiffusersCond, DiffusersDenoiser


class SVDDenoiser(DiffusersDenoiser):
    """SVD image-to-video. Conditioning: CLIP image embedding, VAE latent of the
    noise-augmented guide and the added time ids (fps, motion bucket, noise
    augmentation), computed once per chunk."""

    family = "svd"
    batched_tensors = ("embeds", "image_latents", "add_time_ids")

    def __init__(
        self,
        pipe,
        *,
        width: int = 1024,
        height: int = 576,
        num_frames=None,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 3.0,
        decode_chunk_size=None,
        seed: int = 0,
        device=None,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        self.width, self.height = int(width), int(height)
        self.num_frames = int(num_frames if num_frames is not None else pipe.unet.config.num_frames)
        self.motion_bucket_id = int(motion_bucket_id)
        self.noise_aug_strength = float(noise_aug_strength)
        self.min_guidance_scale = float(min_guidance_scale)
        self.max_guidance_scale = float(max_guidance_scale)
        self.decode_chunk_size = decode_chunk_size
        self._check_size(self.height, self.width, pipe.vae_scale_factor)

    @property
    def do_cfg(self) -> bool:
        return self.max_guidance_scale > 1.0

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        generator = self._condition_generator()

        # 1. CLIP image embedding of the guide as it came (the stock PIL path: antialiased resize to the
        #    encoder's 224 x 224, whatever the output size).
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing,
        )

        image = self._guide_image(guide)  # [1, 3, H, W] in 0..1, the guide's own size
        size = pipe.image_encoder.config.image_size
        clip_in = (_resize_with_antialiasing(image * 2.0 - 1.0, (size, size)) + 1.0) / 2.0
        clip_in = pipe.feature_extractor(
            images=clip_in, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
            return_tensors="pt",
        ).pixel_values
        enc_dtype = next(pipe.image_encoder.parameters()).dtype
        embeds = pipe.image_encoder(clip_in.to(device=device, dtype=enc_dtype)).image_embeds.unsqueeze(1)
        if self.do_cfg:
            embeds = torch.cat([torch.zeros_like(embeds), embeds])

        # 2. VAE latent of the guide resized to width x height like the stock call's video_processor, noise-augmented
        #    with the generator's first draw.
        vae_in = self._vae_pixels(guide, self.height, self.width).to(device)
        draws: list = []
        aug = self._draw(generator, draws, vae_in.shape, vae_in.dtype).to(device)
        vae_in = vae_in + self.noise_aug_strength * aug
        upcast = pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast
        if upcast:
            pipe.vae.to(dtype=torch.float32)
        image_latents = pipe.vae.encode(vae_in.to(dtype=pipe.vae.dtype)).latent_dist.mode()
        if upcast:
            pipe.vae.to(dtype=torch.float16)
        if self.do_cfg:
            image_latents = torch.cat([torch.zeros_like(image_latents), image_latents])
        image_latents = image_latents.to(embeds.dtype).unsqueeze(1).repeat(1, self.num_frames, 1, 1, 1)

        # 3. Added time ids (SVD was trained on fps - 1) and the per-frame guidance scale.
        add_time_ids = pipe._get_add_time_ids(
            self.fps - 1, self.motion_bucket_id, self.noise_aug_strength, embeds.dtype, 1, 1, self.do_cfg
        ).to(device)
        guidance = torch.linspace(self.min_guidance_scale, self.max_guidance_scale, self.num_frames)
        guidance = guidance.to(device, embeds.dtype).view(1, self.num_frames, 1, 1, 1)

        s = pipe.vae_scale_factor
        shape = (1, self.num_frames, pipe.unet.config.in_channels // 2, self.height // s, self.width // s)
        return DiffusersCond(
            height=self.height,
            width=self.width,
            num_frames=self.num_frames,
            latent_shape=shape,
            latent_dtype=embeds.dtype,
            tensors={"embeds": embeds, "image_latents": image_latents, "add_time_ids": add_time_ids,
                     "guidance": guidance},
            seed=self.seed,
            draws=draws,
        )

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        pipe, c = self.pipe, cond.tensors
        t = timesteps[i]
        model_in = torch.cat([latents] * 2) if self.do_cfg else latents
        model_in = scheduler.scale_model_input(model_in, t)
        model_in = torch.cat([model_in, c["image_latents"]], dim=2)
        noise_pred = pipe.unet(model_in, t, encoder_hidden_states=c["embeds"], added_time_ids=c["add_time_ids"],
                               return_dict=False)[0]
        self.network_calls += 1
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + c["guidance"] * (text - uncond)
        prev, x0 = self._scheduler_step(scheduler, noise_pred, t, latents, generator, i)
        return prev, x0

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        pipe = self.pipe
        latent = latent.to(self.device)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        num_frames = latent.shape[1]
        # Like the stock call: decode in the VAE's own dtype, decode_chunk_size frames at a time.
        video = pipe.decode_latents(latent.to(pipe.vae.dtype), num_frames, self.decode_chunk_size or num_frames)
        return self._frames_from_video(video)
