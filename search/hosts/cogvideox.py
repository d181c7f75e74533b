"""CogVideoX image-to-video (diffusers ``CogVideoXImageToVideoPipeline``) as a search denoiser.

Mirrors ``CogVideoXImageToVideoPipeline.__call__``: one chunk equals the stock
call with ``latents=noise`` and ``generator=torch.Generator().manual_seed(seed)``.
The generator first samples the guide's VAE latent, then feeds the per-step
noise of CogVideoXDPMScheduler; the DPM solver's previous x0 prediction is kept
in the resume state, so a run stopped at step k resumes on the same trajectory.
"""

from __future__ import annotations

import math

import torch

from ..errors import ChunkwiseError
from .base import DiffusersCond, DiffusersDenoiser


class CogVideoXDenoiser(DiffusersDenoiser):
    """CogVideoX I2V. Conditioning: T5 text embeddings (once per run), the VAE latent
    of the guide and the rotary position embeddings (once per chunk)."""

    family = "cogvideox"
    batched_tensors = ("embeds", "image_latents")

    def __init__(
        self,
        pipe,
        *,
        width=None,
        height=None,
        num_frames: int = 49,
        prompt: str = "",
        negative_prompt: str = "",
        prompt_embeds=None,
        negative_prompt_embeds=None,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        eta: float = 0.0,
        max_sequence_length: int = 226,
        fps: int = 8,
        seed: int = 0,
        device=None,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        cfg = pipe.transformer.config
        s = pipe.vae_scale_factor_spatial
        self.height = int(height or cfg.sample_height * s)
        self.width = int(width or cfg.sample_width * s)
        self.num_frames = int(num_frames)
        self.guidance_scale = float(guidance_scale)
        self.use_dynamic_cfg = bool(use_dynamic_cfg)
        self.eta = float(eta)
        self.max_sequence_length = int(max_sequence_length)
        self._text = dict(prompt=prompt, negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
                          negative_prompt_embeds=negative_prompt_embeds)
        self._text_cache = None
        self._check_size(self.height, self.width, s * cfg.patch_size)
        # The VAE packs tc frames after the first into one latent frame: other counts would silently lose frames.
        tc = pipe.vae_scale_factor_temporal
        if self.num_frames < 1 or (self.num_frames - 1) % tc:
            fixed = max(1, (self.num_frames - 1) // tc * tc + 1)
            raise ChunkwiseError(
                f"cogvideox: num_frames - 1 must be a multiple of {tc}, got num_frames={self.num_frames}; use {fixed} "
                f"or {fixed + tc} (CogVideoX was trained on 49, CogVideoX 1.5 on 81)"
            )
        # CogVideoX 1.5 pads the latent frames to a multiple of patch_size_t; the padding is dropped at decode.
        latent_frames = (self.num_frames - 1) // tc + 1
        p_t = cfg.patch_size_t
        self.additional_frames = 0
        if p_t is not None and latent_frames % p_t != 0:
            self.additional_frames = p_t - latent_frames % p_t
        self._padded_frames = self.num_frames + self.additional_frames * tc

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        cfg = pipe.transformer.config
        generator = self._condition_generator()

        # 1. Text embeddings, encoded once per run; [negative, positive] with guidance.
        prompt_embeds, negative_embeds = self._embeddings(self.pipe.transformer.dtype)
        dtype = prompt_embeds.dtype
        embeds = torch.cat([negative_embeds, prompt_embeds]) if self.do_cfg else prompt_embeds

        # 2. VAE latent of the guide (resized like the stock call's video_processor), sampled with the generator
        #    (the stock call's first draw).
        image = self._vae_pixels(guide, self.height, self.width).to(device, dtype=dtype)
        latent_frames = (self._padded_frames - 1) // pipe.vae_scale_factor_temporal + 1
        s = pipe.vae_scale_factor_spatial
        channels = cfg.in_channels // 2
        shape = [1, latent_frames, channels, self.height // s, self.width // s]
        if cfg.patch_size_t is not None:
            shape[1] += shape[1] % cfg.patch_size_t
        dist = pipe.vae.encode(image.unsqueeze(2).to(pipe.vae.dtype)).latent_dist
        draws: list = []
        eps = self._draw(generator, draws, dist.mean.shape, dist.parameters.dtype).to(dist.mean.device)
        image_latents = (dist.mean + dist.std * eps).to(dtype).permute(0, 2, 1, 3, 4)  # [1, F, C, h, w]
        if not pipe.vae.config.invert_scale_latents:
            image_latents = pipe.vae_scaling_factor_image * image_latents
        else:
            image_latents = 1 / pipe.vae_scaling_factor_image * image_latents
        padding = torch.zeros((1, latent_frames - 1, channels, self.height // s, self.width // s),
                              device=device, dtype=dtype)
        image_latents = torch.cat([image_latents, padding], dim=1)
        if cfg.patch_size_t is not None:
            image_latents = torch.cat([image_latents[:, : image_latents.size(1) % cfg.patch_size_t], image_latents],
                                      dim=1)
        if self.do_cfg:
            image_latents = torch.cat([image_latents] * 2)

        # 3. Rotary and ofs embeddings depend only on the latent size.
        rotary = (
            pipe._prepare_rotary_positional_embeddings(self.height, self.width, shape[1], device)
            if cfg.use_rotary_positional_embeddings
            else None
        )
        ofs = None if cfg.ofs_embed_dim is None else torch.full((1,), 2.0, device=device, dtype=dtype)
        return DiffusersCond(
            height=self.height,
            width=self.width,
            num_frames=self.num_frames,
            latent_shape=tuple(shape),
            latent_dtype=dtype,
            tensors={"embeds": embeds, "image_latents": image_latents, "rotary": rotary, "ofs": ofs},
            seed=self.seed,
            draws=draws,
        )

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        from diffusers import CogVideoXDPMScheduler

        pipe, c = self.pipe, cond.tensors
        t = timesteps[i]
        model_in = torch.cat([latents] * 2) if self.do_cfg else latents
        model_in = scheduler.scale_model_input(model_in, t)
        model_in = torch.cat([model_in, c["image_latents"]], dim=2)
        with pipe.transformer.cache_context("cond_uncond"):
            noise_pred = pipe.transformer(
                hidden_states=model_in,
                encoder_hidden_states=c["embeds"],
                timestep=t.expand(model_in.shape[0]),
                ofs=c["ofs"],
                image_rotary_emb=c["rotary"],
                return_dict=False,
            )[0]
        self.network_calls += 1
        noise_pred = noise_pred.float()
        scale = self.guidance_scale
        if self.use_dynamic_cfg:
            n = len(timesteps)
            scale = 1 + self.guidance_scale * ((1 - math.cos(math.pi * ((n - t.item()) / n) ** 5.0)) / 2)
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + scale * (text - uncond)

        extra = {"eta": self.eta}
        if isinstance(scheduler, CogVideoXDPMScheduler):
            out = scheduler.step(noise_pred, memory.get("old_x0"), t, timesteps[i - 1] if i > 0 else None, latents,
                                 generator=generator, return_dict=False, **extra)
            prev, x0 = out[0], out[1]
            memory["old_x0"] = x0
        else:
            prev, x0 = self._scheduler_step(scheduler, noise_pred, t, latents, generator, i, **extra)
        return prev.to(cond.latent_dtype), x0

    def _scheduler_step(self, scheduler, model_output, t, latents, generator, index, **extra):
        from .base import _accepts

        if not _accepts(scheduler.step, "eta"):
            extra.pop("eta", None)
        return super()._scheduler_step(scheduler, model_output, t, latents, generator, index, **extra)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        pipe = self.pipe
        latent = latent.to(self.device)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        latent = latent[:, self.additional_frames:]
        video = pipe.decode_latents(latent.to(pipe.vae.dtype))
        return self._frames_from_video(video)
