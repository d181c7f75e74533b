"""Colour anchoring: pull every chunk's colour statistics back to the anchor image.

Chained chunks drift in colour, contrast and saturation: each seam sends the
guide frame through a VAE decode/encode round trip and the model's own bias,
and the next chunk starts from the shifted frame, so the shift accumulates.
Anchoring corrects each finished chunk *before* its last frame becomes the
next guide, so the correction also stops the accumulation.

Method (Reinhard et al. 2001, "Color Transfer between Images"):

1. convert the chunk and the anchor (the run's original input image) from
   sRGB to CIE Lab (D65) -- or stay in RGB with ``method="rgb"``;
2. per channel, over all pixels of all frames of the chunk at once, compute
   mean and standard deviation; the same for the anchor;
3. ``matched = (x - mean_chunk) / std_chunk * std_anchor + mean_anchor``,
   converted back to RGB and clamped to 0..1; steps 2-3 run twice, so the
   clamping residual does not accumulate from chunk to chunk;
4. blend in RGB: ``out = x + strength * (matched - x)``.

Statistics are pooled over the whole chunk, not per frame, so motion and
content changes inside a chunk are kept; only the chunk's global colour cast,
contrast and saturation move towards the anchor's. ``strength`` 0 returns the
frames unchanged (bit-exact); 1 matches the statistics fully. Lab separates
lightness from the two colour axes, so a colour cast is corrected without
touching brightness, and saturation (the spread of a and b) is restored on
its own; ``rgb`` is cheaper and also corrects brightness with the colours.
Trade-off: a scene that should legitimately change colour (a sunset, a cut to
another place) is pulled back towards the first image; use a lower strength.
"""

from __future__ import annotations

import torch

from .errors import ChunkwiseError

COLOUR_METHODS = ("lab", "rgb")

# sRGB (linear) -> XYZ, D65 white.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(min=0.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``[..., 3]`` in 0..1 -> CIE Lab ``[..., 3]`` (L in 0..100), computed in float64."""
    x = _srgb_to_linear(rgb.to(torch.float64).clamp(0.0, 1.0))
    xyz = (x @ _RGB_TO_XYZ.T.to(x.device)) / _WHITE.to(x.device)
    f = torch.where(xyz > _EPS, xyz.clamp(min=1e-12) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return torch.stack([L, a, b], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab ``[..., 3]`` -> sRGB ``[..., 3]`` in 0..1 (float64, clamped)."""
    lab = lab.to(torch.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = torch.stack([fx, fy, fz], dim=-1)
    xyz = torch.where(f**3 > _EPS, f**3, (116.0 * f - 16.0) / _KAPPA) * _WHITE.to(f.device)
    return _linear_to_srgb(xyz @ _XYZ_TO_RGB.T.to(f.device)).clamp(0.0, 1.0)


def _to_space(x: torch.Tensor, method: str) -> torch.Tensor:
    return rgb_to_lab(x) if method == "lab" else x.to(torch.float64)


def colour_stats(frames: torch.Tensor, method: str = "lab") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over every pixel of ``frames`` ``[..., 3]``."""
    check_method(method)
    pixels = _to_space(frames, method).reshape(-1, 3)
    return pixels.mean(dim=0), pixels.std(dim=0, unbiased=False)


def check_method(method: str) -> str:
    if method not in COLOUR_METHODS:
        raise ChunkwiseError(
            f"colour anchoring method must be one of {COLOUR_METHODS}, got {method!r}; "
            "use 'lab' (mean/std per Lab channel, the default) or 'rgb'"
        )
    return method


def check_strength(strength) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise ChunkwiseError(
            f"colour_anchor strength must be a number in 0..1, got {strength!r} ({type(strength).__name__}); "
            "use 0 for off, 0.5-1 to hold the colours of the first image"
        )
    value = float(strength)
    if not 0.0 <= value <= 1.0:
        raise ChunkwiseError(
            f"colour_anchor strength must be in 0..1, got {strength}; "
            "use 0 for off, 0.5-1 to hold the colours of the first image"
        )
    return value


def anchor_colours(
    frames: torch.Tensor,
    anchor: torch.Tensor,
    strength: float = 1.0,
    method: str = "lab",
    *,
    min_std: float = 1e-3,
    passes: int = 2,
) -> torch.Tensor:
    """Match the colour statistics of ``frames`` ``[T, H, W, 3]`` to ``anchor`` ``[1, H', W', 3]``.

    Returns a new tensor of ``frames``' shape, dtype and device; the input is
    not changed. ``min_std`` keeps a flat (one-colour) chunk from being blown
    up: channels whose spread is below it are only shifted, not scaled.
    ``passes``: the transfer is repeated on its own result, because clamping
    to the RGB gamut after the first pass leaves a small residual (which would
    otherwise accumulate over many chunks).
    """
    strength = check_strength(strength)
    check_method(method)
    if strength == 0.0:
        return frames
    if frames.shape[-1] != 3 or anchor.shape[-1] != 3:
        raise ChunkwiseError(
            f"colour anchoring needs RGB frames [..., 3], got frames {list(frames.shape)} and anchor "
            f"{list(anchor.shape)}; convert the images to RGB first"
        )
    mean_a, std_a = colour_stats(anchor, method)

    # Frame by frame, so the float64 working copies hold one frame, never the whole chunk.
    def stats(transform) -> tuple[torch.Tensor, torch.Tensor]:
        total, total_sq, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
        for frame in frames:
            x = _to_space(transform(frame.to(torch.float64)), method).reshape(-1, 3).cpu()
            total += x.sum(dim=0)
            total_sq += (x * x).sum(dim=0)
            count += x.shape[0]
        mean = total / count
        return mean, (total_sq / count - mean * mean).clamp(min=0.0).sqrt()

    def match(frame: torch.Tensor, mean_c: torch.Tensor, std_c: torch.Tensor) -> torch.Tensor:
        scale = torch.where(std_c > min_std, std_a / std_c.clamp(min=min_std), torch.ones_like(std_c))
        x = (_to_space(frame, method) - mean_c.to(frame.device)) * scale.to(frame.device) + mean_a.to(frame.device)
        return lab_to_rgb(x) if method == "lab" else x.clamp(0.0, 1.0)

    steps: list[tuple[torch.Tensor, torch.Tensor]] = []

    def matched(frame: torch.Tensor) -> torch.Tensor:
        for mean_c, std_c in steps:
            frame = match(frame, mean_c, std_c)
        return frame

    for _ in range(passes):
        steps.append(stats(matched))
    out = torch.empty_like(frames)
    for t, frame in enumerate(frames):
        source = frame.to(torch.float64)
        out[t] = (source + strength * (matched(source) - source)).clamp(0.0, 1.0).to(frames.dtype)
    return out


def colour_drift(frames: torch.Tensor, anchor: torch.Tensor, method: str = "lab") -> float:
    """How far ``frames``' colour statistics are from ``anchor``'s: the Euclidean distance of
    the per-channel means plus that of the per-channel standard deviations (Lab units for
    ``lab``: about 2.3 is a just noticeable difference)."""
    mean_f, std_f = colour_stats(frames, method)
    mean_a, std_a = colour_stats(anchor, method)
    return float(torch.linalg.vector_norm(mean_f - mean_a) + torch.linalg.vector_norm(std_f - std_a))


__all__ = ["COLOUR_METHODS", "anchor_colours", "colour_drift", "colour_stats", "lab_to_rgb", "rgb_to_lab"]
