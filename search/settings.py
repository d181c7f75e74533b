"""The settings of a run and of each chunk's search; ``validate`` owns every rule about them.

Hosts build these from their own inputs (node widgets, command-line flags) and
call ``validate()`` before any model work; :func:`~chunkwise.search.engine.run_chunks`
validates once per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional

from .adaptive import Rung, halving_preview_nfe, preview_strategy
from .colour import check_method, check_strength
from .errors import ChunkwiseError, require_int
from .noise import MAX_CANDIDATES

PREVIEW_MODES = ("short", "truncated")
PREVIEW_DECODES = ("vae", "approx")


@dataclass(frozen=True)
class SearchSettings:
    """How each chunk's initial noise is chosen.

    ``candidates`` (m) noises are previewed with ``k`` steps each; ``steps``
    (s) is the full schedule, longer than k. ``preview_mode``: ``short`` runs a
    complete k-step schedule (the paper); ``truncated`` runs the first k steps
    of the real s-step schedule and scores the x0 prediction, so the winner can
    ``resume`` at step k. ``enabled=False`` or m = 1 is the naive baseline.

    Cost options (all off by default; see :mod:`chunkwise.search.adaptive`):
    ``candidate_batch`` samples that many candidates in one batched sampler
    call when the denoiser has ``sample_batch`` (same results, better device
    use; the denoiser falls back to smaller batches on out-of-memory).
    ``preview_stride`` scores every n-th preview frame plus the last (the
    denoiser's ``preview_decode`` decodes only those where its VAE allows).
    ``preview_decode``: ``vae`` (the real decoder) or ``approx`` (the model's
    linear latent-to-RGB factors; needs ``preview_decode`` on the denoiser).
    ``accept_score``: early accept, stop drawing candidates once one scores
    at least this (``None``: off). ``halving_k`` > 0: successive halving from
    previews of ``halving_k`` steps up to k.
    """

    candidates: int = 4
    k: int = 8
    steps: int = 25
    preview_mode: str = "short"
    resume: bool = True
    enabled: bool = True
    candidate_batch: int = 1
    preview_stride: int = 1
    preview_decode: str = "vae"
    accept_score: Optional[float] = None
    halving_k: int = 0

    def validate(self) -> "SearchSettings":
        # 1. The method's own numbers: m, k < s, the preview mode.
        require_int("steps", self.steps, 1, "use the model's usual step count, e.g. 25 for SVD, 20-50 for Wan")
        require_int("candidates (m)", self.candidates, 1, "use 1 for no search, 4-10 for search")
        if self.candidates > MAX_CANDIDATES:
            raise ChunkwiseError(
                f"candidates (m) must be at most {MAX_CANDIDATES}, got {self.candidates}; the paper uses 10: beyond a "
                "few dozen, previews cost more than they find. Lower candidates"
            )
        require_int("k (preview steps)", self.k, 1, "use a few steps, e.g. 8 of 50")
        if self.preview_mode not in PREVIEW_MODES:
            raise ChunkwiseError(
                f"preview_mode must be one of {PREVIEW_MODES}, got {self.preview_mode!r}; "
                "use 'short' (the paper's k-step run) or 'truncated' (first k steps of the real schedule)"
            )
        if self.searching and self.k >= self.steps:
            raise ChunkwiseError(
                f"k (preview steps) must be smaller than steps in {self.preview_mode} mode, got k={self.k}, "
                f"steps={self.steps}; a preview as long as the full run costs as much as it: lower k "
                f"(e.g. {max(1, self.steps // 6)}) or raise steps"
            )
        # 2. The cost options.
        require_int("candidate_batch", self.candidate_batch, 1, "use 1 (one candidate per sampler call) or m")
        require_int("preview_stride", self.preview_stride, 1, "use 1 to score every frame, e.g. 4 for every 4th")
        if self.preview_decode not in PREVIEW_DECODES:
            raise ChunkwiseError(
                f"preview_decode must be one of {PREVIEW_DECODES}, got {self.preview_decode!r}; "
                "use 'vae' (the real decoder) or 'approx' (linear latent-to-RGB factors, much cheaper)"
            )
        if self.accept_score is not None:
            if isinstance(self.accept_score, bool) or not isinstance(self.accept_score, (int, float)) or not (
                math.isfinite(float(self.accept_score))
            ):
                raise ChunkwiseError(
                    f"accept_score must be a finite number or None, got {self.accept_score!r}; "
                    "use a score the scorer reaches for a good chunk (e.g. 0.9 for CLIP min-cosine) or None for off"
                )
        self._validate_halving()
        return self

    def _validate_halving(self) -> None:
        require_int("halving_k", self.halving_k, 0, "use 0 for off, or a few steps (e.g. k // 4) for the first rung")
        if not self.halving_k:
            return
        if self.halving_k >= self.k:
            raise ChunkwiseError(
                f"halving_k must be smaller than k, got halving_k={self.halving_k}, k={self.k}; "
                f"use e.g. {max(1, self.k // 4)}, or 0 for no successive halving"
            )
        if self.searching:
            halved = halving_preview_nfe(self.rungs(), self.preview_mode == "truncated")
            if halved >= self.candidates * self.k:
                raise ChunkwiseError(
                    f"successive halving with halving_k={self.halving_k} costs {halved} preview evaluations per "
                    f"chunk in {self.preview_mode} mode, not fewer than the plain search's m*k={self.candidates * self.k} "
                    f"(short rungs restart their schedule); use a smaller halving_k (e.g. {max(1, self.k // 4)}), "
                    "truncated previews, or 0 for off"
                )
        if self.accept_score is not None:
            raise ChunkwiseError(
                f"early accept (accept_score={self.accept_score}) and successive halving (halving_k={self.halving_k}) "
                "cannot be combined; turn one off (accept_score=None or halving_k=0)"
            )

    @property
    def searching(self) -> bool:
        return self.enabled and self.candidates > 1

    @property
    def resumes(self) -> bool:
        return self.searching and self.preview_mode == "truncated" and self.resume

    def nfe_per_chunk(self) -> int:
        """Model evaluations per chunk for first-order samplers (one per step).

        Exact with successive halving; with early accept, the most a chunk can use.
        """
        if not self.searching:
            return self.steps
        rungs = self.rungs()
        preview = halving_preview_nfe(rungs, self.preview_mode == "truncated")
        return preview + (self.steps - rungs[-1].k if self.resumes else self.steps)

    def nfe_formula(self) -> int:
        """The plain search's cost: m*k + s, or m*k + s - k when the winner resumes."""
        if not self.searching:
            return self.steps
        return self.candidates * self.k + (self.steps - self.k if self.resumes else self.steps)

    def rungs(self) -> list[Rung]:
        """The preview strategy's rungs: one rung of m at k, or successive halving's."""
        return preview_strategy(self).rungs()

    @property
    def tuned(self) -> bool:
        """Whether any cost option is on (then chunk records carry a ``cost`` section)."""
        return (
            self.candidate_batch > 1
            or self.preview_stride > 1
            or self.preview_decode != "vae"
            or self.accept_score is not None
            or self.halving_k > 0
        )


@dataclass(frozen=True)
class LoopSettings:
    """A whole run: ``chunks`` chunks from one base ``seed``.

    ``drop_first_frame`` (on by default) drops the first frame of every chunk
    after the first (for models that reproduce their guide frame, so seams
    show no duplicate). ``use_anchor`` hands the original input image to the
    scorer as anchor. ``colour_anchor`` (0..1) matches each chunk's colour
    statistics to the input image before its last frame guides the next
    chunk, with ``colour_method`` ``lab`` (mean/std per Lab channel) or
    ``rgb``; see ``search.colour``. 0 is off.
    """

    chunks: int = 5
    seed: int = 0
    search: SearchSettings = field(default_factory=SearchSettings)
    drop_first_frame: bool = True
    use_anchor: bool = True
    colour_anchor: float = 0.0
    colour_method: str = "lab"

    def validate(self) -> "LoopSettings":
        require_int("chunks", self.chunks, 1, "ask for at least one chunk")
        require_int("seed", self.seed, 0, "use a non-negative seed")
        check_strength(self.colour_anchor)
        check_method(self.colour_method)
        self.search.validate()
        return self


def naive_settings(settings: LoopSettings) -> LoopSettings:
    """The same run without search: one candidate per chunk, s steps each."""
    return replace(settings, search=replace(settings.search, candidates=1))


__all__ = ["PREVIEW_DECODES", "PREVIEW_MODES", "LoopSettings", "SearchSettings", "naive_settings"]
