"""Toy stand-ins for the engine's protocols: torch only, exact, fast.

``ToyDenoiser`` is a flow-matching Euler sampler in pixel space whose x0
prediction is the guide frame moving sideways plus a colour bias that depends
on the initial noise: some noises give chunks that drift in colour, and the
drift accumulates through the guide hand-off, as in a real chunk chain.
"""

from __future__ import annotations

import torch
from chunkwise.search.protocols import CandidateScore, SampleResult, Scorer


class ToyDenoiser:
    def __init__(self, frames: int = 5, drift: float = 0.05, motion: int = 1) -> None:
        self.frames = frames
        self.drift = drift
        self.motion = motion
        self.nfe = 0
        self.guides: list[torch.Tensor] = []
        self.noises: list[torch.Tensor] = []
        self.calls: list[dict] = []

    def condition(self, guide):
        self.guides.append(guide.clone())
        return guide

    def latent_template(self, cond):
        _, h, w, c = cond.shape
        return torch.zeros(self.frames, c, h, w)

    def bias(self, noise):
        # One N(0, 1) number per channel, scaled: the colour shift this noise causes.
        n = noise[:, :, :, :].numel() // noise.shape[1]
        return self.drift * noise.sum(dim=(0, 2, 3)) / n**0.5

    def target(self, cond, bias):
        g = cond[0].permute(2, 0, 1)  # [C, H, W]
        frames = [torch.roll(g, shifts=t * self.motion, dims=2) for t in range(self.frames)]
        return torch.stack(frames) + bias.view(1, -1, 1, 1)

    def sample(self, cond, noise, *, steps, start_step=0, end_step=None, resume=None, callback=None, seed=None):
        end_step = steps if end_step is None else end_step
        self.calls.append({"steps": steps, "start": start_step, "end": end_step, "resume": resume is not None})
        sigmas = torch.linspace(1.0, 0.0, steps + 1)
        if resume is not None:
            assert resume.end_step == start_step and resume.steps == steps
            x, bias = resume.latent.clone(), resume.state
        else:
            assert start_step == 0
            self.noises.append(noise.clone())
            x, bias = noise.clone(), self.bias(noise)
        x0 = self.target(cond, bias)
        for i in range(start_step, end_step):
            self.nfe += 1
            s, s_next = sigmas[i], sigmas[i + 1]
            x = x + (s_next - s) * (x - x0) / s
            if callback is not None:
                callback(i, x0)
        return SampleResult(latent=x, x0=x0, steps=steps, start_step=start_step, end_step=end_step, state=bias)

    def decode(self, latent):
        return latent.permute(0, 2, 3, 1).clamp(0, 1)


class MeanColourScorer(Scorer):
    """min over frames of -(mean absolute difference to the guide); higher is better."""

    name = "toy-colour"

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self, guide, anchor=None):
        self.prepared += 1
        ref = guide[0].mean(dim=(0, 1))

        class _Ctx:
            def score(self, previews):
                out = []
                for p in previews:
                    per_frame = [-(f.mean(dim=(0, 1)) - ref).abs().mean().item() for f in p]
                    out.append(CandidateScore(min(per_frame), per_frame))
                return out

        return _Ctx()


class ScriptedScorer(Scorer):
    """Returns scores from a list, in call order; for selection tests."""

    name = "scripted"

    def __init__(self, scores, count=1):
        self.scores = list(scores)
        self.count = count

    def prepare(self, guide, anchor=None):
        outer = self

        class _Ctx:
            def score(self, previews):
                return [CandidateScore(outer.scores.pop(0), [0.0]) for _ in range(outer.count)]

        return _Ctx()


def image(h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, h, w, 3, generator=g) * 0.5 + 0.25


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 0.5
        return self.t
