"""The toy world: an analytic image-to-video model (no weights) to see what the noise search does.

A TOY MODEL THAT DEMONSTRATES THE MECHANISM, NOT A RESULT ABOUT REAL MODELS.

Real image-to-video models need gigabytes of weights; chained naively they drift
chunk after chunk (colour casts, growing distortion), and which way a chunk drifts
depends on its initial noise. The toy world has exactly that structure, in closed
form, so the whole pipeline (ChunkLoop, ComfyUI's own sampler, the search, the
evaluation) runs on any CPU in seconds and shows a visible effect:

- the model is a real ComfyUI model: a ``comfy.model_base.BaseModel`` (flow
  matching, ComfyUI's ``CONST`` parameterisation) whose diffusion model is the
  analytic :class:`ToyWorldNet`, in a ``ModelPatcher``; ComfyUI's sampler drives it;
- the latent is the picture itself: ComfyUI's pixel-space VAE
  (``comfy.sd.VAE`` with ``pixel_space_vae``) and latent format ``ChromaRadiance``
  (RGB in -1..1), so encoding and decoding cost nothing;
- the clean video it predicts for a guide ``g`` is a pan: frame ``t`` is ``g``
  shifted ``pan * t`` pixels to the left (wrapping around), plus a drift that grows
  over the chunk -- a colour shift per channel, a saturation change and a slow
  wave-shaped distortion -- whose size and direction come from six numbers ``z``
  read from the initial noise, on top of a fixed bias (a warm cast, more
  saturation) that every chunk adds, like the systematic drift of real models;
- ``z`` is the noise's projection on six fixed checkerboard patterns (one per colour
  channel and image half), each ``N(0, 1)``. The prediction never contains those
  patterns, so every deterministic sampler carries them unchanged in ``x / sigma``
  from the first step to the last: the initial noise alone decides the drift, as a
  seed decides a real model's output. Ancestral and SDE samplers add fresh noise
  and so change ``z`` on the way.

Naive chaining (one noise per chunk) accumulates the drift; the search draws m
noises, previews them and keeps the one whose preview its scorer finds closest to
the guide, so it holds what the scorer measures: with the weight-free colour scorer
(``scorers/colour_match.py``) the colours, not the distortion, which that scorer
cannot see. Unlike real models, the toy's k-step previews show its final drift exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models_base
import comfy.utils
import torch
import torch.nn.functional as F
from comfy_api.latest import io

from ..search.errors import ChunkwiseError
from .families.node import bind, frames_input, sampler_inputs
from .families.spec import Family, FamilySpec, SamplerDefaults, SizeRule
from .plumbing import widget_problem
from .types import I2V

TOY_LABEL = "toy world (an analytic model that demonstrates the mechanism, not a result about real models)"

# Per chunk, at its last frame, in latent units (-1..1): bias + spread * z.
COLOUR_BIAS = (0.03, 0.0, -0.03)
"""A warm cast every chunk adds (red up, blue down), like a real model's systematic colour creep."""
COLOUR_SPREAD = 0.06
SATURATION_BIAS, SATURATION_SPREAD = 0.03, 0.05
WARP_BIAS, WARP_SPREAD = 0.15, 0.5
"""Amplitude in pixels of the two wave distortions (horizontal shift along y, vertical along x)."""
CODES = 6

SPEC = FamilySpec(
    name="Toy world",
    node="none: the toy world conditions on the guide itself",
    batch="none",
    sizes=SizeRule(multiple=8, frames="length", frames_fix="use e.g. 17"),
    defaults=SamplerDefaults(steps=10, cfg=1.0, scheduler="simple"),
    latent_format="ChromaRadiance",
)


def code_sums(x: torch.Tensor) -> torch.Tensor:
    """``[n, T, 3, H, W]`` -> ``[n, 6]``: sums of ``x * checkerboard`` per (channel, left/right half)."""
    h, w = x.shape[-2:]
    board = _board(h, w, x)
    half = w // 2
    left = (x[..., :half] * board[:, :half]).sum(dim=(1, 3, 4))
    right = (x[..., half:] * board[:, half:]).sum(dim=(1, 3, 4))
    return torch.cat([left, right], dim=1)


def _board(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.arange(h, device=like.device).view(h, 1)
    xs = torch.arange(w, device=like.device).view(1, w)
    return (1 - 2 * ((ys + xs) % 2)).to(like.dtype)


def _group_sizes(t: int, h: int, w: int) -> torch.Tensor:
    half = w // 2
    return torch.tensor([t * h * half] * 3 + [t * h * (w - half)] * 3, dtype=torch.float64)


def remove_codes(x0: torch.Tensor) -> torch.Tensor:
    """``x0 [n, T, 3, H, W]`` with its projection on the six code patterns removed (exactly orthogonal)."""
    n, t, _, h, w = x0.shape
    coeff = code_sums(x0) / _group_sizes(t, h, w).to(x0.device, x0.dtype)
    board = _board(h, w, x0)
    half = w // 2
    out = x0.clone()
    out[..., :half] -= coeff[:, :3].view(n, 1, 3, 1, 1) * board[:, :half]
    out[..., half:] -= coeff[:, 3:].view(n, 1, 3, 1, 1) * board[:, half:]
    return out


def read_codes(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The drift code ``z [n, 6]`` carried by a noisy latent ``x [n, T, 3, H, W]`` at ``sigma [n]``."""
    n, t, _, h, w = x.shape
    scale = _group_sizes(t, h, w).sqrt().to(x.device, x.dtype)
    return code_sums(x) / scale / sigma.view(n, 1).clamp(min=1e-6)


def _pan_and_warp(guide: torch.Tensor, frames: int, pan: int, ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
    """``frames`` frames ``[T, 3, H, W]`` sampled (bilinear) from the guide ``[3, H, W]``: frame ``t`` reads
    ``x + pan * t + ax[t] sin(2 pi y / H)`` (wrapping around horizontally) and ``y + ay[t] sin(2 pi x / W)``
    (edge pixels repeated). Where the wave amplitudes are 0 the sample points are pixel centres, so the pan
    alone loses nothing."""
    _, h, w = guide.shape
    pad = 2
    padded = F.pad(F.pad(guide.unsqueeze(0), (pad, pad, 0, 0), mode="circular"), (0, 0, pad, pad), mode="replicate")
    t = torch.arange(frames, device=guide.device, dtype=guide.dtype).view(frames, 1, 1)
    ys = torch.arange(h, device=guide.device, dtype=guide.dtype)
    xs = torch.arange(w, device=guide.device, dtype=guide.dtype)
    wave_y = torch.sin(2 * math.pi * ys / h).view(1, h, 1)
    wave_x = torch.sin(2 * math.pi * xs / w).view(1, 1, w)
    src_x = torch.remainder(xs.view(1, 1, w) + pan * t + ax.view(frames, 1, 1) * wave_y, w) + pad
    src_y = (ys.view(1, h, 1) + ay.view(frames, 1, 1) * wave_x).clamp(0, h - 1) + pad
    grid = torch.stack([(2 * src_x + 1) / (w + 2 * pad) - 1, (2 * src_y + 1) / (h + 2 * pad) - 1], dim=-1)
    return F.grid_sample(padded.expand(frames, -1, -1, -1), grid, mode="bicubic", padding_mode="border",
                         align_corners=False)


def toy_video(guide: torch.Tensor, z: torch.Tensor, frames: int, pan: int, drift: float) -> torch.Tensor:
    """The toy world's clean chunk ``[T, 3, H, W]`` (latent units) from a guide ``[3, H, W]`` and its code ``z [6]``.

    Frame ``t`` (``a = t / (T - 1)``): the guide panned ``pan * t`` pixels, warped by ``a`` times the wave
    amplitudes, its saturation scaled by ``1 + a * s`` and each channel shifted by ``a * c``, with
    ``c = drift * (COLOUR_BIAS + COLOUR_SPREAD * z[0:3])``, ``s = drift * (SATURATION_BIAS + SATURATION_SPREAD
    * z[3])``, amplitudes ``drift * (WARP_BIAS + WARP_SPREAD * z[4:6])``; clamped to -1..1. Frame 0 is the guide.
    """
    a = torch.arange(frames, device=guide.device, dtype=guide.dtype) / max(1, frames - 1)
    bias = torch.tensor(COLOUR_BIAS, device=guide.device, dtype=guide.dtype)
    colour = drift * (bias + COLOUR_SPREAD * z[:3])
    saturation = drift * (SATURATION_BIAS + SATURATION_SPREAD * z[3])
    amplitude = drift * (WARP_BIAS + WARP_SPREAD * z[4:6])
    video = _pan_and_warp(guide, frames, pan, a * amplitude[0], a * amplitude[1])
    a = a.view(-1, 1, 1, 1)
    grey = video.mean(dim=1, keepdim=True)
    video = grey + (1.0 + a * saturation) * (video - grey) + a * colour.view(1, 3, 1, 1)
    return video.clamp(-1.0, 1.0)


class ToyWorldNet(torch.nn.Module):
    """The analytic diffusion model: predicts the toy world's chunk for the guide and the noise's code.

    Called by ``BaseModel._apply_model`` with ``x [B, 3, H, W]`` (B = videos x frames), the timestep
    ``sigma * multiplier`` and the conditioning's ``toy_guide`` / ``toy_frames``; returns the flow
    velocity ``(x - x0) / sigma`` whose ``CONST`` denoised value is the prediction ``x0``.
    """

    def __init__(self, drift: float = 1.0, pan: int = 1, multiplier: float = 1000.0, dtype=None, device=None,
                 **_unused) -> None:
        super().__init__()
        self.dtype = dtype or torch.float32
        self.pan = int(pan)
        self.multiplier = float(multiplier)
        # The world's settings as a buffer: run folders fingerprint the model by its tensors.
        self.register_buffer("world", torch.tensor([float(drift), float(pan)], dtype=torch.float32, device=device))

    def forward(self, x, timesteps, context=None, toy_guide=None, toy_frames=None, **_kwargs):
        if toy_guide is None or toy_frames is None:
            raise ChunkwiseError(
                "the toy world model got no guide; drive it through Chunkwise Toy World's I2V output (ChunkLoop), "
                "not a plain KSampler"
            )
        frames = int(toy_frames)
        b, c, h, w = x.shape
        if b % frames:
            raise ChunkwiseError(f"toy world: batch {b} is not a whole number of {frames}-frame videos")
        n = b // frames
        sigma = (timesteps.view(n, frames)[:, 0] / self.multiplier).to(torch.float32)
        xv = x.to(torch.float32).view(n, frames, c, h, w)
        z = read_codes(xv, sigma)
        guides = toy_guide.to(torch.float32).view(n, frames, c, h, w)[:, 0]
        drift = float(self.world[0])
        x0 = torch.stack([toy_video(guides[i], z[i], frames, self.pan, drift) for i in range(n)])
        x0 = remove_codes(x0)
        velocity = (xv - x0) / sigma.view(n, 1, 1, 1, 1).clamp(min=1e-6)
        return velocity.view(b, c, h, w).to(x.dtype)


class ToyWorldConfig(comfy.supported_models_base.BASE):
    unet_config = {}
    unet_extra_config = {}
    sampling_settings = {"shift": 1.0, "multiplier": 1000}
    latent_format = comfy.latent_formats.ChromaRadiance
    memory_usage_factor = 0.01
    supported_inference_dtypes = [torch.float32]


class ToyWorldModel(comfy.model_base.BaseModel):
    """A flow-matching BaseModel around :class:`ToyWorldNet`; its conditioning carries the guide."""

    def __init__(self, model_config, device=None):
        super().__init__(model_config, comfy.model_base.ModelType.FLOW, device=device, unet_model=ToyWorldNet)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        if kwargs.get("toy_guide") is not None:
            out["toy_guide"] = comfy.conds.CONDRegular(kwargs["toy_guide"])
            out["toy_frames"] = comfy.conds.CONDConstant(int(kwargs["toy_frames"]))
        return out


def toy_world_model(drift: float = 1.0, pan: int = 1) -> comfy.model_patcher.ModelPatcher:
    """The toy world as a ComfyUI MODEL (a ModelPatcher), on ComfyUI's own devices."""
    config = ToyWorldConfig({"drift": float(drift), "pan": int(pan)})
    config.set_inference_dtype(torch.float32, None)
    model = ToyWorldModel(config, device=comfy.model_management.unet_offload_device())
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def pixel_vae() -> comfy.sd.VAE:
    """ComfyUI's pixel-space VAE: IMAGE 0..1 <-> latent -1..1, no weights."""
    return comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})


@dataclass(eq=False)
class ToyFamily(Family):
    """The toy world's conditioning: the guide, resized (bilinear, centre crop) to width x height and
    VAE-encoded, rides in the conditioning; the latent is an empty ``[length, 3, H, W]`` (frames in the batch)."""

    spec = SPEC

    width: int
    height: int
    length: int
    drift: float
    pan: int

    def condition(self, vae, guide: torch.Tensor):
        image = comfy.utils.common_upscale(guide[..., :3].movedim(-1, 1), self.width, self.height, "bilinear",
                                           "center").movedim(1, -1)
        encoded = vae.encode(image)
        extra = {"toy_guide": encoded, "toy_frames": self.length}
        positive = [[torch.zeros(1, 1, 1), dict(extra)]]
        negative = [[torch.zeros(1, 1, 1), dict(extra)]]
        latent = {"samples": torch.zeros(self.length, 3, self.height, self.width)}
        return positive, negative, latent

    def details(self) -> list[str]:
        return [f"drift {self.drift:g}", f"pan {self.pan} px/frame", "a toy model, not a real one"]


class ChunkwiseToyWorld(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseToyWorld",
            display_name="Toy World (analytic I2V, no weights)",
            category="chunkwise/models",
            description="A TOY model that demonstrates the mechanism, not a result about real models. An analytic "
                        "image-to-video model (a real ComfyUI model, driven by ComfyUI's sampler, needing no "
                        "weights): each chunk pans its guide frame, and drifts in colour, saturation and a slow "
                        "wave-shaped distortion by an amount its initial noise decides, plus a fixed warm bias "
                        "every chunk adds. Chained naively it degrades chunk after chunk; the search "
                        "(candidates > 1) holds what its scorer sees: Chunkwise Scorer (colour, no weights) holds "
                        "the colours, not the distortion. Its previews predict the final drift exactly, which "
                        "real models' previews do not.",
            inputs=[
                io.Int.Input("width", default=192, min=16, max=2048, step=8,
                             tooltip="Frame width (a multiple of 8). Larger: slower, the picture is the latent."),
                io.Int.Input("height", default=128, min=16, max=2048, step=8, tooltip="Frame height (multiple of 8)."),
                frames_input(SPEC, 17, 1000, "Frames per chunk. The drift grows over a chunk, so it is per chunk, "
                                             "whatever the length."),
                io.Float.Input("drift", default=1.0, min=0.0, max=5.0, step=0.1,
                               tooltip="How strongly the world drifts per chunk (bias and noise-driven parts "
                                       "together). 0: a perfect pan, nothing for the search to fix."),
                io.Int.Input("pan", default=1, min=-16, max=16,
                             tooltip="The visible motion: pixels the picture moves left per frame (wrapping)."),
                *[i for i in sampler_inputs(SPEC.defaults) if i.id != "cfg"],
            ],
            outputs=[I2V.Output("i2v", tooltip="The toy world bound to its sampler settings, for ChunkLoop.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None, length=None, steps=None):
        return (widget_problem(cls, width=width, height=height, length=length, steps=steps)
                or SPEC.sizes.problem(width=width, height=height, frames=length) or True)

    @classmethod
    def execute(cls, width, height, length, drift, pan, steps, sampler_name, scheduler) -> io.NodeOutput:
        family = ToyFamily(width=width, height=height, length=length, drift=float(drift), pan=int(pan))
        model = toy_world_model(drift, pan)
        return io.NodeOutput(bind(model, pixel_vae(), family, steps, 1.0, sampler_name, scheduler))


TOY_NODES = [ChunkwiseToyWorld]
