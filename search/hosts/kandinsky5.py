"""Kandinsky 5 image-to-video (diffusers ``Kandinsky5I2VPipeline``) as a search denoiser.

Mirrors ``Kandinsky5I2VPipeline.__call__``. Its loop can stop after k steps and
resume exactly: the only state carried from one step to the next is the latent
and the scheduler's step index (FlowMatchEuler), and the first-frame
normalisation the stock call applies after the loop ("fix mesh artifacts") is
a function of the final latent alone, so the host applies it when a run
reaches the last step (per candidate: the stock statistics are taken over the
whole batch).

The latent is channel-last, ``[1, F, h, w, C]``, as the stock call keeps it.
The stock call's generator draws the noise first and then the guide's VAE
sample, which replaces the first latent frame; the host's conditioning
repeats both draws, so one chunk equals the stock call with
``generator=torch.Generator().manual_seed(seed)`` whose noise draw is the
host's noise. The visual-conditioning channels (zeros and a first-frame mask)
ride along in every transformer call. x0 of the stepped frames is
x - sigma * v; the first frame's is the guide's latent.
"""

from __future__ import annotations

import torch

from ..errors import ChunkwiseError
from .base import DiffusersCond, DiffusersDenoiser
from .text import check_text_encoders


class Kandinsky5Denoiser(DiffusersDenoiser):
    """Kandinsky 5 I2V. Conditioning: Qwen2.5-VL and CLIP text embeddings (once per run), the sampled VAE latent
    of the guide (once per chunk). ``negative_prompt=None`` is the stock call's own default negative prompt."""

    family = "kandinsky5"
    batched_tensors = ("qwen", "clip", "negative_qwen", "negative_clip", "visual_cond")

    def __init__(
        self,
        pipe,
        *,
        width: int = 768,
        height: int = 512,
        num_frames: int = 121,
        prompt: str = "",
        negative_prompt=None,
        prompt_embeds_qwen=None,
        prompt_embeds_clip=None,
        negative_prompt_embeds_qwen=None,
        negative_prompt_embeds_clip=None,
        guidance_scale: float = 5.0,
        max_sequence_length: int = 512,
        fps: int = 24,
        seed: int = 0,
        device=None,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        if not pipe.transformer.visual_cond:
            raise ChunkwiseError(
                "kandinsky5: this transformer has visual_cond=False, so it is not an image-to-video model; use a "
                "Kandinsky 5 I2V folder"
            )
        self.height, self.width, self.num_frames = int(height), int(width), int(num_frames)
        tc = pipe.vae_scale_factor_temporal
        if self.num_frames < 1 or (self.num_frames - 1) % tc:
            fixed = max(1, (self.num_frames - 1) // tc * tc + 1)
            raise ChunkwiseError(
                f"kandinsky5: num_frames - 1 must be a multiple of {tc}, got num_frames={self.num_frames}; use "
                f"{fixed} or {fixed + tc} (Kandinsky 5 makes 4k+1 frames, e.g. 121)"
            )
        if self.num_frames < 4 * tc + 1:
            raise ChunkwiseError(
                f"kandinsky5: num_frames must be at least {4 * tc + 1}, got {self.num_frames}: after the loop the stock "
                "call matches the statistics of the first 4 latent frames to the ones after them, and without any "
                "after them it makes NaN"
            )
        self._check_size(self.height, self.width, 16)
        self.guidance_scale = float(guidance_scale)
        self.max_sequence_length = int(max_sequence_length)
        self._text = dict(prompt=prompt, negative_prompt=negative_prompt, prompt_embeds_qwen=prompt_embeds_qwen,
                          prompt_embeds_clip=prompt_embeds_clip,
                          negative_prompt_embeds_qwen=negative_prompt_embeds_qwen,
                          negative_prompt_embeds_clip=negative_prompt_embeds_clip)
        self._text_cache = None

    @property
    def do_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def _embeddings(self, dtype):
        """``{"qwen", "clip", "negative_qwen", "negative_clip"}`` (the negatives under guidance only)."""
        if self._text_cache is None:
            self._text_cache = self._encode_text(dtype)
            self._park_text_encoder()
        return self._text_cache

    def _encode_text(self, dtype):
        out: dict = {}
        for prefix in ("", "negative_") if self.do_cfg else ("",):
            qwen = self._text[f"{prefix}prompt_embeds_qwen"]
            clip = self._text[f"{prefix}prompt_embeds_clip"]
            if qwen is None or clip is None:
                check_text_encoders(self.pipe, self.family, ("tokenizer", "text_encoder", "tokenizer_2",
                                                             "text_encoder_2"),
                                    keys=f"'{prefix}prompt_embeds_qwen' and '{prefix}prompt_embeds_clip'")
                prompt = self._text["prompt"] if not prefix else self._text["negative_prompt"]
                if prefix and prompt is None:
                    prompt = _stock_negative_prompt()
                with torch.no_grad():
                    qwen, clip, _ = self.pipe.encode_prompt(prompt=prompt or "", max_sequence_length=
                                                            self.max_sequence_length, device=self.device, dtype=dtype)
            if qwen.shape[0] != 1:
                raise ChunkwiseError(
                    f"kandinsky5: expected one prompt, got prompt embeddings of batch {qwen.shape[0]}; pass a single "
                    "prompt"
                )
            out[f"{prefix}qwen"] = qwen.to(self.device, dtype)
            out[f"{prefix}clip"] = clip.to(self.device, dtype)
        return out

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        dtype = pipe.transformer.dtype
        text = self._embeddings(dtype)
        s, tc = pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
        frames, h, w = (self.num_frames - 1) // tc + 1, self.height // s, self.width // s
        channels = pipe.transformer.config.in_visual_dim
        shape = (1, frames, h, w, channels)

        # The stock generator draws the noise first (here the host's noise, drawn by the engine), then the guide's
        # VAE sample: both are recorded so that every run repeats them.
        generator = self._condition_generator()
        draws: list = []
        self._draw(generator, draws, shape, dtype)
        vae = pipe.vae
        pixels = self._vae_pixels(guide, self.height, self.width).to(device, dtype)
        dist = vae.encode(pixels.unsqueeze(2).to(vae.dtype)).latent_dist
        eps = self._draw(generator, draws, dist.mean.shape, dist.parameters.dtype).to(dist.mean.device)
        image_latent = dist.mean + dist.std * eps
        if hasattr(vae.config, "scaling_factor"):
            image_latent = image_latent * vae.config.scaling_factor
        image_latent = image_latent.permute(0, 2, 3, 4, 1).to(device, dtype)  # [1, 1, h, w, C]
        mask = torch.zeros(1, frames, h, w, 1, dtype=dtype, device=device)
        mask[:, 0:1] = 1
        visual_cond = torch.cat([torch.zeros(shape, dtype=dtype, device=device), mask], dim=-1)

        tensors = {"image_latent": image_latent, "visual_cond": visual_cond, **text,
                   "sparse_params": pipe.get_sparse_params(torch.empty(1, frames, h, w, 2 * channels + 1), device)}
        return DiffusersCond(height=self.height, width=self.width, num_frames=self.num_frames, latent_shape=shape,
                             latent_dtype=dtype, tensors=tensors, seed=self.seed, draws=draws)

    def _initial_latent(self, cond, noise, scheduler):
        """The guide's latent in the first latent frame, the noise in the others (prepare_latents)."""
        x = noise.to(self.device, cond.latent_dtype).clone()
        x[:, 0:1] = cond.tensors["image_latent"]
        return x

    def _predict(self, c, model_in, timestep, prefix: str):
        pipe = self.pipe
        frames, h, w = model_in.shape[1:4]
        qwen = c[f"{prefix}qwen"]
        out = pipe.transformer(
            hidden_states=model_in, encoder_hidden_states=qwen, pooled_projections=c[f"{prefix}clip"],
            timestep=timestep, visual_rope_pos=[torch.arange(n, device=model_in.device) for n in (frames, h // 2, w // 2)],
            text_rope_pos=torch.arange(qwen.shape[1], device=model_in.device),
            scale_factor=pipe._get_scale_factor(self.height, self.width), sparse_params=c["sparse_params"],
            return_dict=True,
        ).sample
        self.network_calls += 1
        return out

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        c, dtype = cond.tensors, self.pipe.transformer.dtype
        t = timesteps[i]
        model_in = torch.cat([latents, c["visual_cond"]], dim=-1).to(dtype)
        timestep = t.unsqueeze(0).repeat(latents.shape[0]).to(dtype)
        velocity = self._predict(c, model_in, timestep, "")
        if self.do_cfg:
            uncond = self._predict(c, model_in, timestep, "negative_")
            velocity = uncond + self.guidance_scale * (velocity - uncond)
        prev, x0 = self._scheduler_step(scheduler, velocity[:, 1:], t, latents[:, 1:], generator, i)
        first = latents[:, :1]
        latents = torch.cat([first, prev.to(first.dtype)], dim=1)
        if i == len(timesteps) - 1:  # the stock call's first-frame normalisation, once the loop is done
            latents = torch.cat([self.pipe.normalize_first_frame(x) for x in latents.split(1)])
            return latents, latents
        return latents, torch.cat([first, x0.to(first.dtype)], dim=1)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latent = latent.to(self.device, vae.dtype)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        video = vae.decode(latent.permute(0, 4, 1, 2, 3) / vae.config.scaling_factor).sample
        return self._frames_from_video(video)


def _stock_negative_prompt() -> str:
    """The negative prompt the stock call uses when none is given (read from its source default)."""
    return ("Static, 2D cartoon, cartoon, 2d animation, paintings, images, worst quality, low quality, ugly, "
            "deformed, walking backwards")
