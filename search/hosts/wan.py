"""Wan image-to-video (diffusers ``WanImageToVideoPipeline``) as a search denoiser.

Mirrors ``WanImageToVideoPipeline.__call__`` (Wan 2.1 I2V with CLIP image
embeddings, and Wan 2.2 I2V with two experts split at ``boundary_ratio``) for a
guide of any size (CLIP sees the guide as it came, the VAE the guide resized
like the stock call's ``video_processor``): one chunk equals the stock call
with ``latents=noise``. Flow-matching schedulers give no x0 prediction, so it
is computed from the velocity: x0 = x - sigma * v.
"""

from __future__ import annotations

import torch

from ..errors import ChunkwiseError
from ..images import to_pil
from .base import DiffusersCond, DiffusersDenoiser


class WanDenoiser(DiffusersDenoiser):
    """Wan I2V. Conditioning: umT5 text embeddings (once per run), CLIP image
    hidden states (Wan 2.1) and the masked VAE latent of the guide (once per chunk)."""

    family = "wan"
    batched_tensors = ("prompt", "negative", "image_embeds", "condition")

    def __init__(
        self,
        pipe,
        *,
        width: int = 832,
        height: int = 480,
        num_frames: int = 81,
        prompt: str = "",
        negative_prompt: str = "",
        prompt_embeds=None,
        negative_prompt_embeds=None,
        guidance_scale: float = 5.0,
        guidance_scale_2=None,
        max_sequence_length: int = 512,
        fps: int = 16,
        seed: int = 0,
        device=None,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        if pipe.config.expand_timesteps:
            raise ChunkwiseError(
                "wan: pipelines with expand_timesteps=True (Wan 2.2 TI2V 5B) are not supported by the diffusers "
                "host yet; use Wan 2.1 I2V or Wan 2.2 I2V A14B, or the ComfyUI Wan nodes"
            )
        model = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        self._model = model
        patch = model.config.patch_size
        s, tc = pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
        self.height, self.width, self.num_frames = int(height), int(width), int(num_frames)
        if self.num_frames < 1 or (self.num_frames - 1) % tc:
            fixed = max(1, (self.num_frames - 1) // tc * tc + 1)
            raise ChunkwiseError(
                f"wan: num_frames - 1 must be a multiple of {tc}, got num_frames={self.num_frames}; use {fixed} "
                f"or {fixed + tc}"
            )
        self._check_size(self.height, self.width, s * patch[1])
        self.guidance_scale = float(guidance_scale)
        if pipe.config.boundary_ratio is not None and guidance_scale_2 is None:
            guidance_scale_2 = guidance_scale
        self.guidance_scale_2 = None if guidance_scale_2 is None else float(guidance_scale_2)
        self.max_sequence_length = int(max_sequence_length)
        self._text = dict(prompt=prompt, negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
                          negative_prompt_embeds=negative_prompt_embeds)
        self._text_cache = None

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        dtype = self._model.dtype

        # 1. Text embeddings (once per run) and CLIP image hidden states (Wan 2.1 only).
        prompt_embeds, negative_embeds = self._embeddings(self._model.dtype)
        image_embeds = None
        if pipe.transformer is not None and pipe.transformer.config.image_dim is not None:
            if pipe.image_encoder is None or pipe.image_processor is None:
                raise ChunkwiseError(
                    "wan: this transformer takes CLIP image embeddings (image_dim set) but the pipeline has no "
                    "image_encoder/image_processor; use a complete Wan 2.1 I2V folder"
                )
            # The guide as it came: the CLIP processor resizes and crops it itself, as in the stock call.
            image_embeds = pipe.encode_image(to_pil(guide[0]), device).to(dtype)

        # 2. VAE latent of the guide followed by empty frames, normalised, with the first-frame mask.
        vae = pipe.vae
        s, tc = pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
        lat_f, lat_h, lat_w = (self.num_frames - 1) // tc + 1, self.height // s, self.width // s
        pixels = self._vae_pixels(guide, self.height, self.width).to(device, torch.float32).unsqueeze(2)
        video = torch.cat([pixels, pixels.new_zeros(1, 3, self.num_frames - 1, self.height, self.width)], dim=2)
        latent = vae.encode(video.to(dtype=vae.dtype)).latent_dist.mode()
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(device, torch.float32)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(device, torch.float32)
        latent = (latent.to(device, torch.float32) - mean) * inv_std
        mask = torch.ones(1, 1, self.num_frames, lat_h, lat_w)
        mask[:, :, 1:] = 0
        mask = torch.concat([torch.repeat_interleave(mask[:, :, 0:1], dim=2, repeats=tc), mask[:, :, 1:]], dim=2)
        mask = mask.view(1, -1, tc, lat_h, lat_w).transpose(1, 2).to(latent.device)
        condition = torch.concat([mask, latent], dim=1)

        return DiffusersCond(
            height=self.height,
            width=self.width,
            num_frames=self.num_frames,
            latent_shape=(1, z, lat_f, lat_h, lat_w),
            latent_dtype=torch.float32,
            tensors={"prompt": prompt_embeds, "negative": negative_embeds, "image_embeds": image_embeds,
                     "condition": condition},
            seed=self.seed,
        )

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        pipe, c = self.pipe, cond.tensors
        t = timesteps[i]
        boundary = pipe.config.boundary_ratio
        if boundary is None or t >= boundary * scheduler.config.num_train_timesteps:
            model, scale = pipe.transformer, self.guidance_scale
        else:
            model, scale = pipe.transformer_2, self.guidance_scale_2
        model_in = torch.cat([latents, c["condition"]], dim=1).to(model.dtype)
        timestep = t.expand(latents.shape[0])
        with model.cache_context("cond"):
            noise_pred = model(hidden_states=model_in, timestep=timestep, encoder_hidden_states=c["prompt"],
                               encoder_hidden_states_image=c["image_embeds"], return_dict=False)[0]
        self.network_calls += 1
        if self.do_cfg:
            with model.cache_context("uncond"):
                uncond = model(hidden_states=model_in, timestep=timestep, encoder_hidden_states=c["negative"],
                               encoder_hidden_states_image=c["image_embeds"], return_dict=False)[0]
            self.network_calls += 1
            noise_pred = uncond + scale * (noise_pred - uncond)
        prev, x0 = self._scheduler_step(scheduler, noise_pred, t, latents, generator, i)
        return prev, x0

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latent = latent.to(self.device, vae.dtype)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latent.device, latent.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latent.device, latent.dtype)
        video = vae.decode(latent / inv_std + mean, return_dict=False)[0]
        return self._frames_from_video(video)
