"""The former single-module host, kept as an import path: the code lives in nodes/host/ (the denoiser and
its pieces) and nodes/families/ (the family bindings)."""

from __future__ import annotations

from . import host
from .families import SVDFamily, WanFamily

__all__ = [*host.__all__, "SVDFamily", "WanFamily"]


def __getattr__(name: str):
    """``from .comfy_i2v import X`` for the host's names, as before."""
    if name in host.__all__:
        return getattr(host, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
