"""HunyuanVideo 1.5 image-to-video (diffusers ``HunyuanVideo15ImageToVideoPipeline``) as a search denoiser.

Mirrors ``HunyuanVideo15ImageToVideoPipeline.__call__`` (480p and 720p I2V,
the step-distilled ones included): the frame size is the stock call's bucket
for the guide's aspect ratio at the transformer's ``target_size`` (or the
``width`` x ``height`` asked for), the guide is resized and centre-cropped to
it, SigLIP sees that image, and the VAE latent of the guide rides along in
the first of the conditioning frames under a first-frame mask. Guidance is the
pipeline's own guider (classifier-free guidance with its scale, rescale and
start/stop window), one transformer pass per prediction it asks for; the
mean-flow checkpoints get the next timestep as ``timestep_r``. One chunk
equals the stock call with ``latents=noise``. x0 is x - sigma * v.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ChunkwiseError
from ..images import to_pil
from .base import DiffusersCond, DiffusersDenoiser
from .text import check_text_encoders

TEXT_KEYS = ("prompt_embeds", "prompt_embeds_mask", "prompt_embeds_2", "prompt_embeds_mask_2")
"""What the transformer reads of a prompt: Qwen2.5-VL hidden states, ByT5 glyph embeddings, and their masks."""


class HunyuanVideo15Denoiser(DiffusersDenoiser):
    """HunyuanVideo 1.5 I2V. Conditioning: both text encoders' embeddings (once per run), SigLIP hidden states and
    the VAE latent of the resized guide (once per chunk)."""

    family = "hunyuan15"
    batched_tensors = ("image_embeds", "cond_latents", "cond_mask", *TEXT_KEYS,
                       *(f"negative_{k}" for k in TEXT_KEYS))

    def __init__(
        self,
        pipe,
        *,
        width=None,
        height=None,
        num_frames: int = 121,
        prompt: str = "",
        negative_prompt: str = "",
        guidance_scale=None,
        fps: int = 24,
        seed: int = 0,
        device=None,
        **embeddings,
    ) -> None:
        super().__init__(pipe, seed=seed, device=device, fps=fps)
        known = set(TEXT_KEYS) | {f"negative_{k}" for k in TEXT_KEYS}
        unknown = sorted(set(embeddings) - known)
        if unknown:
            raise ChunkwiseError(f"hunyuan15: unknown options {unknown}; text embeddings are named {sorted(known)}")
        self.num_frames = int(num_frames)
        tc, s = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
        if self.num_frames < 1 or (self.num_frames - 1) % tc:
            fixed = max(1, (self.num_frames - 1) // tc * tc + 1)
            raise ChunkwiseError(
                f"hunyuan15: num_frames - 1 must be a multiple of {tc}, got num_frames={self.num_frames}; use {fixed} "
                f"or {fixed + tc} (HunyuanVideo 1.5 makes 4k+1 frames, e.g. 121)"
            )
        if (width is None) != (height is None):
            raise ChunkwiseError(
                f"hunyuan15: give both width and height or neither (got width={width}, height={height}); without "
                "them the size is the stock call's bucket for the guide's aspect ratio"
            )
        self.width = None if width is None else int(width)
        self.height = None if height is None else int(height)
        if self.width is not None:
            self._check_size(self.height, self.width, s * pipe.transformer.config.patch_size)
        # A copy of the pipeline's guider (with another scale when one is asked for): its per-step state is this
        # denoiser's. Negative text is needed when guidance runs at all, judged before any step as the stock call does.
        scale = {} if guidance_scale is None else {"guidance_scale": float(guidance_scale)}
        self.guider = pipe.guider.new(**scale)
        self._guided = bool(self.guider._enabled and self.guider.num_conditions > 1)
        self._text = dict(prompt=prompt, negative_prompt=negative_prompt, **embeddings)
        self._text_cache = None

    @property
    def do_cfg(self) -> bool:
        return self._guided

    def _embeddings(self, dtype):
        """The four text tensors of the prompt and, under guidance, of the negative prompt (keys of TEXT_KEYS,
        the negative ones prefixed ``negative_``), encoded once in ``dtype``."""
        if self._text_cache is None:
            self._text_cache = self._encode_text(dtype)
            self._park_text_encoder()
        return self._text_cache

    def _encode_text(self, dtype):
        out = {}
        for prefix, prompt in (("", self._text["prompt"]), ("negative_", self._text["negative_prompt"])):
            if prefix and not self.do_cfg:
                break
            given = {k: self._text.get(prefix + k) for k in TEXT_KEYS}
            if given["prompt_embeds"] is None or given["prompt_embeds_2"] is None:
                check_text_encoders(self.pipe, self.family, ("tokenizer", "text_encoder", "tokenizer_2",
                                                             "text_encoder_2"), keys=f"{prefix}prompt_embeds ...")
            for name, mask in (("prompt_embeds", "prompt_embeds_mask"), ("prompt_embeds_2", "prompt_embeds_mask_2")):
                if given[name] is not None and given[mask] is None:
                    given[mask] = torch.ones(given[name].shape[:2])
            with torch.no_grad():
                tensors = self.pipe.encode_prompt(
                    prompt=None if given["prompt_embeds"] is not None and given["prompt_embeds_2"] is not None
                    else (prompt or ""),
                    device=self.device, dtype=dtype,
                    **{k: None if v is None else v.to(self.device) for k, v in given.items()},
                )
            if tensors[0].shape[0] != 1:
                raise ChunkwiseError(
                    f"hunyuan15: expected one prompt, got prompt embeddings of batch {tensors[0].shape[0]}; "
                    "pass a single prompt"
                )
            out.update({prefix + k: v for k, v in zip(TEXT_KEYS, tensors, strict=True)})
        return out

    def _size(self, guide: torch.Tensor) -> tuple[int, int]:
        if self.height is not None:
            return self.height, self.width
        return self.pipe.video_processor.calculate_default_height_width(
            height=guide.shape[1], width=guide.shape[2], target_size=self.pipe.target_size)

    @torch.no_grad()
    def condition(self, guide: torch.Tensor) -> DiffusersCond:
        pipe, device = self.pipe, self.device
        dtype = pipe.transformer.dtype
        text = self._embeddings(dtype)
        height, width = self._size(guide)

        # 1. The guide resized and centre-cropped to the frame size, as the stock call resizes its PIL image; a guide
        #    of that size is used as it is (the VAE sees its full precision, SigLIP its 8-bit copy).
        image = to_pil(guide[0])
        if tuple(guide.shape[1:3]) == (height, width):
            pixels = guide.permute(0, 3, 1, 2).float() * 2.0 - 1.0
        else:
            image = pipe.video_processor.resize(image, height=height, width=width, resize_mode="crop")
            pixels = pipe.video_processor.preprocess(image, height=height, width=width)
        image_embeds = pipe.encode_image(image=image, batch_size=1, device=device, dtype=dtype)

        # 2. The VAE latent of the guide in the first of the conditioning frames, and the first-frame mask.
        vae = pipe.vae
        s, tc = pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
        frames, h, w = (self.num_frames - 1) // tc + 1, height // s, width // s
        latent = vae.encode(pixels.to(device, vae.dtype).unsqueeze(2)).latent_dist.mode() * vae.config.scaling_factor
        cond_latents = latent.repeat(1, 1, frames, 1, 1)
        cond_latents[:, :, 1:] = 0
        cond_mask = torch.zeros(1, 1, frames, h, w, dtype=dtype, device=device)
        cond_mask[:, :, 0] = 1.0
        return DiffusersCond(
            height=height,
            width=width,
            num_frames=self.num_frames,
            latent_shape=(1, pipe.num_channels_latents, frames, h, w),
            latent_dtype=dtype,
            tensors={"image_embeds": image_embeds, "cond_latents": cond_latents.to(device, dtype),
                     "cond_mask": cond_mask, **text},
            seed=self.seed,
        )

    def _set_timesteps(self, scheduler, steps: int) -> None:
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1], device=self.device)

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):
        pipe, c, guider = self.pipe, cond.tensors, self.guider
        model_in = torch.cat([latents, c["cond_latents"], c["cond_mask"]], dim=1)
        timestep = timesteps[i].expand(model_in.shape[0]).to(model_in.dtype)
        timestep_r = None
        if pipe.transformer.config.use_meanflow:
            after = timesteps[i + 1] if i + 1 < len(timesteps) else torch.tensor([0.0], device=latents.device)
            timestep_r = after.expand(latents.shape[0]).to(latents.dtype)
        names = {"encoder_hidden_states": "prompt_embeds", "encoder_attention_mask": "prompt_embeds_mask",
                 "encoder_hidden_states_2": "prompt_embeds_2", "encoder_attention_mask_2": "prompt_embeds_mask_2"}
        inputs = {arg: (c[key], c.get("negative_" + key)) for arg, key in names.items()}
        guider.set_state(step=i, num_inference_steps=len(timesteps), timestep=timesteps[i])
        batches = guider.prepare_inputs(inputs)
        for batch in batches:
            guider.prepare_models(pipe.transformer)
            with pipe.transformer.cache_context(getattr(batch, guider._identifier_key)):
                batch.noise_pred = pipe.transformer(
                    hidden_states=model_in, image_embeds=c["image_embeds"], timestep=timestep, timestep_r=timestep_r,
                    return_dict=False, **{arg: getattr(batch, arg) for arg in names},
                )[0]
            guider.cleanup_models(pipe.transformer)
            self.network_calls += 1
        noise_pred = guider(batches)[0]
        return self._scheduler_step(scheduler, noise_pred, timesteps[i], latents, generator, i)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latent = latent.to(self.device, vae.dtype)
        if latent.ndim == 4:
            latent = latent.unsqueeze(0)
        video = vae.decode(latent / vae.config.scaling_factor, return_dict=False)[0]
        return self._frames_from_video(video)
