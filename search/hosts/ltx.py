"""LTX-Video image-to-video (diffusers ``LTXImageToVideoPipeline``) as a search denoiser.

Mirrors ``LTXImageToVideoPipeline.__call__`` (LTX-Video 0.9.x): the guide's
VAE latent, sampled with the run's generator (the stock call's first draw),
stands in the first latent frame at timestep 0, the noise (the stock call's
second draw) fills the others, and only those are stepped. The host keeps the
latent unpacked, ``[1, C, F, h, w]``, and packs it into tokens for every
transformer call as the stock loop does. One chunk equals the stock call with
``generator=torch.Generator().manual_seed(seed)`` whose noise draw is the
host's noise. The schedule is the stock one: sigmas ``linspace(1, 1/s, s)``
shifted by the latent's sequence length (``mu``). x0 of the stepped frames is
x - sigma * v; the first frame's is the guide's latent itself.

VAEs with timestep conditioning (0.9.1 and later) decode at ``decode_timestep``
mixed with ``decode_noise_scale`` of noise drawn from a generator seeded with
the denoiser's seed (the stock call draws it from its own generator after the
loop, so with a noise scale above 0 the decoded frames differ from the stock
call's by that noise; the latents do not).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ChunkwiseError
from .base import DiffusersCond, DiffusersDenoiser
from .text import check_text_encoders


class LTXDenoiser(DiffusersDenoiser):
    """LTX-Video I2V. Conditioning: T5 text embeddings and their attention masks (once per run), the sampled and
    normalised VAE latent of the guide (once per chunk)."""

    family = "ltx"
    batched_tensors = ("embeds", "mask")

    def __init__(
        self,
        pipe,
        *,
        width: int = 704,
        height: int = 512,
        num_frames: int = 121,
        prompt: str = "",
        negative_prompt: str = "",
        prompt_embeds=None,
        negative_prompt_embeds=None,
        prompt_attention_mask=None,
        negative_prompt_attention_mask=None,
        guidance_scale: float = 3.0,
        guidance_rescale: float = 0.0,
        decode_timestep: float = 0.0,
        decode_noise_scale=None,
        max_sequence_length: int = 128,
        fps: int = 25,
        seed: int = 0,
        device=None,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        self.height, self.width, self.num_frames = int(height), int(width), int(num_frames)
        s, tc = pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio
        if self.num_frames < 1 or (self.num_frames - 1) % tc:
            fixed = max(1, (self.num_frames - 1) // tc * tc + 1)
            raise ChunkwiseError(
                f"ltx: num_frames - 1 must be a multiple of {tc}, got num_frames={self.num_frames}; use {fixed} "
                f"or {fixed + tc} (LTX-Video makes 8k+1 frames, e.g. 97 or 121)"
            )
        self._check_size(self.height, self.width, s * pipe.transformer_spatial_patch_size)
        self.guidance_scale = float(guidance_scale)
        self.guidance_rescale = float(guidance_rescale)
        self.decode_timestep = float(decode_timestep)
        self.decode_noise_scale = self.decode_timestep if decode_noise_scale is None else float(decode_noise_scale)
        self.max_sequence_length = int(max_sequence_length)
        self._text = dict(prompt=prompt, negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
                          negative_prompt_embeds=negative_prompt_embeds, prompt_attention_mask=prompt_attention_mask,
                          negative_prompt_attention_mask=negative_prompt_attention_mask)
        self._text_cache = None
        self._latent_size = ((self.num_frames - 1) // tc + 1, self.height // s, self.width // s)

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def _embeddings(self, dtype):
        """``(embeds, mask)``: ``[negative, positive]`` under guidance, as the stock call concatenates them."""
        if self._text_cache is None:
            self._text_cache = self._encode_text(dtype)
            self._park_text_encoder()
        return self._text_cache

    def _encode_text(self, dtype):
        text, device = self._text, self.device
        embeds, negative = text["prompt_embeds"], text["negative_prompt_embeds"]
        if embeds is None or (self.do_cfg and negative is None):
            check_text_encoders(self.pipe, self.family)
        with torch.no_grad():
            embeds, mask, negative, negative_mask = self.pipe.encode_prompt(
                prompt=None if embeds is not None else (text["prompt"] or ""),
                negative_prompt=None if negative is not None else (text["negative_prompt"] or ""),
                do_classifier_free_guidance=self.do_cfg,
                prompt_embeds=None if embeds is None else embeds.to(device),
                negative_prompt_embeds=None if negative is None else negative.to(device),
                prompt_attention_mask=_mask_for(embeds, text["prompt_attention_mask"], device),
                negative_prompt_attention_mask=_mask_for(negative, text["negative_prompt_attention_mask"], device),
                max_sequence_length=self.max_sequence_length,
                device=device,
            )
        if embeds.shape[0] != 1:
            raise ChunkwiseError(
                f"ltx: expected one prompt, got prompt embeddings of batch {embeds.shape[0]} "
                f"(shape {list(embeds.shape)}); pass a single prompt"
            )
        if self.do_cfg:
            embeds, mask = torch.cat([negative, embeds]), torch.cat([negative_mask, mask])
        return embeds.to(dtype), mask

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        embeds, mask = self._embeddings(pipe.transformer.dtype)
        generator = self._condition_generator()

        # The guide's VAE latent, sampled with the generator's first draw, normalised like prepare_latents does it
        # (mean and std only: the stock call applies the scaling factor when it denormalises for decoding).
        vae = pipe.vae
        pixels = self._vae_pixels(guide, self.height, self.width).to(device, vae.dtype)
        dist = vae.encode(pixels.unsqueeze(2)).latent_dist
        draws: list = []
        eps = self._draw(generator, draws, dist.mean.shape, dist.parameters.dtype).to(dist.mean.device)
        image_latent = pipe._normalize_latents((dist.mean + dist.std * eps).to(torch.float32), vae.latents_mean,
                                               vae.latents_std)

        frames, h, w = self._latent_size
        channels = pipe.transformer.config.in_channels
        first = torch.zeros(1, 1, frames, h, w, device=device)
        first[:, :, 0] = 1.0
        token_mask = pipe._pack_latents(first, pipe.transformer_spatial_patch_size,
                                        pipe.transformer_temporal_patch_size).squeeze(-1)  # [1, tokens], 1 on frame 0
        return DiffusersCond(
            height=self.height,
            width=self.width,
            num_frames=self.num_frames,
            latent_shape=(1, channels, frames, h, w),
            latent_dtype=torch.float32,
            tensors={"embeds": embeds, "mask": mask, "image_latent": image_latent, "token_mask": token_mask},
            seed=self.seed,
            draws=draws,
        )

    def _set_timesteps(self, scheduler, steps: int) -> None:
        from diffusers.pipelines.ltx.pipeline_ltx_image2video import calculate_shift

        frames, h, w = self._latent_size
        cfg = scheduler.config
        if steps < 2 and cfg.get("shift_terminal"):
            raise ChunkwiseError(
                f"ltx: a {steps}-step schedule cannot be stretched to the scheduler's shift_terminal "
                f"{cfg.get('shift_terminal')} (the stock call fails the same way); use at least 2 steps, e.g. k >= 2 "
                "for short previews, or truncated previews"
            )
        mu = calculate_shift(frames * h * w, cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
                             cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15))
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), device=self.device, mu=mu)

    def _initial_latent(self, cond, noise, scheduler):
        """The guide's latent in the first latent frame, the noise in the others (prepare_latents' mix)."""
        x = noise.to(self.device, cond.latent_dtype).clone()
        x[:, :, :1] = cond.tensors["image_latent"].to(x.device, x.dtype)
        return x

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        from diffusers.pipelines.ltx.pipeline_ltx_image2video import rescale_noise_cfg

        pipe, c = self.pipe, cond.tensors
        p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
        frames, h, w = self._latent_size
        t = timesteps[i]
        tokens = pipe._pack_latents(latents, p, pt)
        model_in = (torch.cat([tokens] * 2) if self.do_cfg else tokens).to(c["embeds"].dtype)
        # The first frame's tokens sit at timestep 0: they are the guide, not noise.
        timestep = t.expand(model_in.shape[0]).unsqueeze(-1) * (1 - c["token_mask"])
        s, tc = pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio
        with pipe.transformer.cache_context("cond_uncond"):
            noise_pred = pipe.transformer(
                hidden_states=model_in, encoder_hidden_states=c["embeds"], timestep=timestep,
                encoder_attention_mask=c["mask"], num_frames=frames, height=h, width=w,
                rope_interpolation_scale=(tc / self.fps, s, s), return_dict=False,
            )[0]
        self.network_calls += 1
        noise_pred = noise_pred.float()
        if self.do_cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + self.guidance_scale * (text - uncond)
            if self.guidance_rescale > 0:
                noise_pred = rescale_noise_cfg(noise_pred, text, guidance_rescale=self.guidance_rescale)
        noise_pred = pipe._unpack_latents(noise_pred, frames, h, w, p, pt)
        prev, x0 = self._scheduler_step(scheduler, noise_pred[:, :, 1:], t, latents[:, :, 1:], generator, i)
        first = latents[:, :, :1]
        return torch.cat([first, prev], dim=2), torch.cat([first, x0.to(first.dtype)], dim=2)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        pipe, vae = self.pipe, self.pipe.vae
        latent = latent.to(self.device, torch.float32)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        latent = pipe._denormalize_latents(latent, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        latent = latent.to(pipe.transformer.dtype)
        timestep = None
        if vae.config.timestep_conditioning:
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            noise = torch.randn(latent.shape, generator=generator, dtype=latent.dtype).to(latent.device)
            timestep = torch.tensor([self.decode_timestep], device=latent.device, dtype=latent.dtype)
            scale = torch.tensor([self.decode_noise_scale], device=latent.device, dtype=latent.dtype)
            latent = (1 - scale.view(-1, 1, 1, 1, 1)) * latent + scale.view(-1, 1, 1, 1, 1) * noise
        video = vae.decode(latent.to(vae.dtype), timestep, return_dict=False)[0]
        return self._frames_from_video(video)


def _mask_for(embeds, mask, device):
    """The attention mask of given embeddings (all tokens valid when none is given); None without embeddings."""
    if embeds is None:
        return None
    if mask is None:
        mask = torch.ones(embeds.shape[:2], dtype=torch.bool)
    return mask.to(device)
