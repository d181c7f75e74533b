"""Custom ComfyUI socket types of the pack (prefixed, so they never clash)."""

from __future__ import annotations

from comfy_api.latest import io

I2V = io.Custom("CHUNKWISE_I2V")
"""An image-to-video model bound to its conditioning and sampler settings (search/ denoiser protocol)."""

CANDIDATES = io.Custom("CHUNKWISE_CANDIDATES")
"""m candidate noises, described by their seeds (drawn when the model is known)."""

PREVIEWS = io.Custom("CHUNKWISE_PREVIEWS")
"""The k-step previews of a chunk's candidates."""

SCORES = io.Custom("CHUNKWISE_SCORES")
"""One score (and per-frame scores) per candidate."""

SCORER = io.Custom("CHUNKWISE_SCORER")
"""A verifier: anything implementing search.protocols.Scorer."""

SEARCH_OPTIONS = io.Custom("CHUNKWISE_SEARCH_OPTIONS")
"""ChunkLoop's cost and streaming options, from a Search Options node (nodes.search_options.LoopOptions)."""
