"""Errors and input checks shared by every host."""

from __future__ import annotations

import math

import torch


class ChunkwiseError(ValueError):
    """A setting or input the engine cannot work with. The message names the
    value received, the value expected and the fix."""


class InterruptedRun(RuntimeError):
    """Raised by hosts' interrupt checks; finished chunks stay where they were written."""


def require_int(name: str, value, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChunkwiseError(f"{name} must be an integer, got {value!r} ({type(value).__name__}); {fix}")
    if value < minimum:
        raise ChunkwiseError(f"{name} must be at least {minimum}, got {value}; {fix}")
    return value


def check_image(image, name: str = "guide image") -> torch.Tensor:
    """Return ``image`` as one frame ``[1, H, W, 3]`` float, or raise.

    Accepts ``[H, W, 3]`` or ``[1, H, W, 3]``; a batch of several images, a
    channel count other than 3, an integer dtype and NaN/inf are refused.
    """
    if not isinstance(image, torch.Tensor):
        raise ChunkwiseError(f"{name} must be a torch.Tensor [1, H, W, 3], got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise ChunkwiseError(
            f"{name} must have shape [1, H, W, 3] (ComfyUI IMAGE), got shape {list(image.shape)}; "
            "pass a single image"
        )
    if image.shape[0] != 1:
        raise ChunkwiseError(
            f"{name} must be one image, got a batch of {image.shape[0]} (shape {list(image.shape)}); "
            "pick one frame, e.g. with ImageFromBatch"
        )
    if image.shape[-1] != 3:
        raise ChunkwiseError(
            f"{name} must have 3 channels (RGB), got {image.shape[-1]} (shape {list(image.shape)}); "
            "convert grayscale or RGBA images to RGB first"
        )
    if not image.is_floating_point():
        raise ChunkwiseError(
            f"{name} must be a float tensor with values in 0..1, got dtype {image.dtype}; "
            "divide 8-bit images by 255"
        )
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise ChunkwiseError(
            f"{name} is empty: shape {list(image.shape)}; expected at least one pixel of [1, H, W, 3]: "
            "check the node that makes it (a crop or resize to 0)"
        )
    check_finite(image, name)
    return image


def check_finite(tensor: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ChunkwiseError(
            f"{what} contains {bad} NaN/inf values out of {tensor.numel()} (shape {list(tensor.shape)}); "
            "expected finite values: check the model's dtype (fp16 overflow), the VAE and the input image"
        )
    return tensor


def check_score(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ChunkwiseError(
            f"{what} is {value}; expected a finite number (reports and run folders store scores as JSON): "
            "check the scorer's encoder and inputs, and the weights of a composite scorer"
        )
    return value
