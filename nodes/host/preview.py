"""Frames to score a preview on: a strided VAE decode, or an approximate decode through ComfyUI's own
latent previewers (``latent_preview``), the ones its sampler previews use.

The approximate decode keeps the denoiser's contract, which ComfyUI's previewers do not give by
themselves (they return one uint8 PIL image of the first latent frame): frames ``[N, H, W, 3]`` as
floats in 0..1, one per latent frame, optionally resized (bilinear) to the VAE's output size. So the
previewer's own model is used on every latent frame:

- ``Latent2RGBPreviewer``: its ``latent_rgb_factors``, ``latent_rgb_factors_bias`` and
  ``latent_rgb_factors_reshape`` (built by ComfyUI from the model's latent format), applied here to all
  frames at once (the projection is one ``linear`` call, as in the previewer);
- ``TAESDPreviewerImpl`` / ``TAEHVPreviewerImpl``: their decoder (``.taesd``), when ComfyUI runs with
  ``--preview-method taesd`` and the format's decoder is in ``models/vae_approx``, exactly when
  ComfyUI's sampler previews use it. A video decoder's clip is cut to one frame per latent frame (the
  last frame each latent frame decodes to).
"""

from __future__ import annotations

from typing import Callable

import latent_preview
import torch
from comfy.cli_args import LatentPreviewMethod

from ...search.adaptive import frame_indices
from ...search.errors import ChunkwiseError


def strided_decode(decode: Callable[[torch.Tensor], torch.Tensor], latent: torch.Tensor,
                   stride: int) -> torch.Tensor:
    """Every ``stride``-th frame plus the last, through ``decode``.

    With a per-frame latent (``[T, C, h, w]``: SVD, batch = frames) only the chosen latent frames
    are decoded. A video latent (``[B, C, t, h, w]``: Wan) is decoded whole and the frames are
    picked afterwards, since a video VAE's temporal layers need every latent frame.
    """
    if stride <= 1:
        return decode(latent)
    if latent.ndim == 4:
        return decode(latent[frame_indices(latent.shape[0], stride)])
    frames = decode(latent)
    return frames[frame_indices(frames.shape[0], stride)]


class ApproximatePreview:
    """ComfyUI's latent previewer for a model, and the frames it gives for a latent.

    A TAESD/TAEHV previewer is looked up once per latent format (its weights load once);
    the latent-to-RGB one is rebuilt per call from the format's current factors.
    """

    def __init__(self) -> None:
        self._taesd: tuple = (None, None)  # (latent format, TAESD previewer or None when not found)

    def previewer(self, model):
        fmt = model.model.latent_format
        if latent_preview.args.preview_method == LatentPreviewMethod.TAESD:
            if self._taesd[0] is not fmt:
                found = latent_preview.get_previewer(model.load_device, fmt)
                self._taesd = (fmt, found if isinstance(found, latent_preview.TAESDPreviewerImpl) else None)
            if self._taesd[1] is not None:
                return self._taesd[1]
        if getattr(fmt, "latent_rgb_factors", None) is None:
            raise ChunkwiseError(
                f"the model's latent format {type(fmt).__name__} has no latent_rgb_factors, so no approximate "
                "preview can be made; use preview_decode='vae'"
            )
        return latent_preview.Latent2RGBPreviewer(fmt.latent_rgb_factors, getattr(fmt, "latent_rgb_factors_bias", None),
                                                  getattr(fmt, "latent_rgb_factors_reshape", None))

    def decode(self, model, vae, latent: torch.Tensor, *, upscale: bool = True) -> torch.Tensor:
        """Frames ``[N, H, W, 3]`` in 0..1 (one per latent frame) without the VAE.

        ``upscale`` resizes (bilinear) to the VAE's output size; without it the frames keep the
        previewer's size (the latent's for latent-to-RGB, as ComfyUI's previews are).
        """
        x = model.model.process_latent_in(latent.to("cpu", torch.float32))
        rgb = signed_frames(self.previewer(model), x)
        if upscale:
            scale = int(vae.spacial_compression_decode())
            size = (latent.shape[-2] * scale, latent.shape[-1] * scale)
            if tuple(rgb.shape[1:3]) != size:
                rgb = torch.nn.functional.interpolate(rgb.movedim(-1, 1), size=size, mode="bilinear",
                                                      align_corners=False).movedim(1, -1)
        return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, t, h, w]`` -> ``[B * t, C, h, w]``; per-frame latents unchanged."""
    if x.ndim == 5:
        return x.movedim(2, 1).reshape((-1,) + tuple(x.shape[1:2]) + tuple(x.shape[-2:]))
    return x


def signed_frames(previewer, x: torch.Tensor) -> torch.Tensor:
    """``[N, h, w, 3]`` in ComfyUI's -1..1 preview scale (unclamped), one per latent frame of the
    model-space latent ``x``, from ComfyUI's ``previewer``."""
    if isinstance(previewer, latent_preview.TAEHVPreviewerImpl):
        video = previewer.taesd.decode(x).to("cpu", torch.float32)  # [B, T, H, W, 3] in 0..1
        picks = torch.linspace(0, video.shape[1] - 1, x.shape[2]).round().long()
        return video[:, picks].reshape((-1,) + tuple(video.shape[-3:])) * 2.0 - 1.0
    if isinstance(previewer, latent_preview.TAESDPreviewerImpl):
        weight = next(previewer.taesd.parameters())
        images = previewer.taesd.decode(_frames(x).to(weight.device, weight.dtype))  # [N, 3, H, W] in -1..1
        return images.movedim(1, -1).to("cpu", torch.float32)
    if previewer.latent_rgb_factors_reshape is not None:
        x = previewer.latent_rgb_factors_reshape(x)
    bias = previewer.latent_rgb_factors_bias
    return torch.nn.functional.linear(_frames(x).movedim(1, -1), previewer.latent_rgb_factors.to(torch.float32),
                                      bias=None if bias is None else bias.to(torch.float32))
