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


class _DyingDenoiser:
    """A toy denoiser whose process kills itself (SIGKILL) once, at a chosen sampler call."""

    def __init__(self, inner, marker: str, when: str, seed: int, steps: int) -> None:
        self.inner, self.marker, self.when, self.seed, self.steps = inner, marker, when, seed, steps
        self.conditioned = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def nfe(self):
        return self.inner.nfe

    def condition(self, guide):
        self.conditioned += 1
        return self.inner.condition(guide)

    def sample(self, cond, noise, **kw):
        import os
        import signal
        from pathlib import Path

        full = kw["steps"] == self.steps and kw.get("end_step", kw["steps"]) == self.steps
        hit = (self.when == "preview" and not full and kw.get("seed") == self.seed) or (
            self.when == "finish" and full and self.conditioned >= 2)
        if hit and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.sample(cond, noise, **kw)


@dataclass(frozen=True)
class DyingParts:
    """:class:`ToyParts` whose worker process is killed once: at the preview of candidate seed ``seed``
    (``when="preview"``) or at the full run of its second chunk (``when="finish"``); ``marker`` records it."""

    marker: str
    when: str
    seed: int = -1
    steps: int = 6

    def __call__(self):
        denoiser, scorer = ToyParts()()
        return _DyingDenoiser(denoiser, self.marker, self.when, self.seed, self.steps), scorer
