"""Seeded candidate noises, identical to what a stock ComfyUI KSampler draws.

Candidate ``j`` of a chunk whose base seed is ``seed`` is drawn from
``seed + j`` exactly as ``comfy.sample.prepare_noise`` does: a CPU generator
seeded with that value, ``torch.randn`` of the latent's shape and dtype. The
same seed therefore gives the same noise on any machine, and a winner can be
replayed from its seed alone in a plain KSampler.
"""

from __future__ import annotations

import torch

SEED_MODULUS = 2**64
"""ComfyUI seeds range over 0 .. 2**64 - 1; derived seeds wrap around."""

CHUNK_SEED_STRIDE = 1_000_000
"""Chunk ``i`` of a run with base seed ``s`` uses seeds ``s + i * stride + j``.

Candidate 0 of every chunk is therefore the seed the naive (m = 1) run uses
for that chunk, and no two candidates of a run share a seed while m stays
below the stride."""

MAX_CANDIDATES = CHUNK_SEED_STRIDE


def candidate_seed(seed: int, index: int) -> int:
    return (int(seed) + int(index)) % SEED_MODULUS


def chunk_seed(seed: int, chunk_index: int) -> int:
    return (int(seed) + int(chunk_index) * CHUNK_SEED_STRIDE) % SEED_MODULUS


def make_noise(template: torch.Tensor, seed: int) -> torch.Tensor:
    """Noise of ``template``'s shape and dtype from ``seed``, drawn on the CPU."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed) % SEED_MODULUS)
    return torch.randn(template.shape, dtype=template.dtype, layout=template.layout, generator=generator, device="cpu")


def candidate_seeds(seed: int, count: int) -> list[int]:
    return [candidate_seed(seed, j) for j in range(count)]
