"""What the Ray workers of the scale tests build: picklable makers of (denoiser, scorer) pairs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToyParts:
    """A toy denoiser and the mean-colour scorer (``tests/pure/toys.py``)."""

    drift: float = 0.2

    def __call__(self):
        from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser

        return ToyDenoiser(drift=self.drift), MeanColourScorer()
