"""The per-chunk nodes: the search for one chunk, wired by hand on ComfyUI's own types.

NoiseCandidates -> KStepPreview -> ClipMinCosineScore -> SelectBestNoise -> FullDenoise.
They follow a stock SVD_img2vid_Conditioning or WanImageToVideo node and
compose with KSampler / SamplerCustomAdvanced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import comfy.model_management
import comfy.sample
import torch
from comfy_api.latest import io, ui
from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

from ..search.chunk import ChunkSampler, StepProgress, select_best
from ..search.errors import ChunkwiseError, check_finite, check_image
from ..search.noise import SEED_MODULUS, candidate_seeds, make_noise
from ..search.protocols import CandidateScore, SampleResult
from .families.node import sampler_inputs
from .families.preconditioned import Preconditioned
from .host import ComfyI2V
from .plumbing import comfy_hooks, resolve_scorer, widget_problem
from .types import CANDIDATES, PREVIEWS, SCORER, SCORES

log = logging.getLogger("chunkwise")

CATEGORY = "chunkwise/per chunk"
SEED_MAX = SEED_MODULUS - 1
MODES = ["short schedule", "truncated"]


@dataclass(frozen=True)
class CandidateSet:
    """m candidate noises named by their seeds: candidate j is seed + j."""

    seed: int
    count: int

    @property
    def seeds(self) -> list[int]:
        return candidate_seeds(self.seed, self.count)


def candidate_noise(model, latent: dict, seed: int) -> torch.Tensor:
    """Exactly the noise a stock KSampler draws for ``seed`` on ``latent`` (nodes.common_ksampler), drawn
    by the engine's own :func:`~chunkwise.search.noise.make_noise`."""
    return make_noise(comfy.sample.fix_empty_latent_channels(model, latent["samples"]), seed)


def chunk_denoiser(model, positive, negative, latent: dict, vae, *, steps: int, cfg: float, sampler_name: str,
                   scheduler: str):
    """The engine's denoiser and conditioning for conditioning made upstream: ``(ComfyI2V, ComfyCond)``."""
    i2v = ComfyI2V(model, vae, Preconditioned(positive, negative, latent), sampler_name=sampler_name,
                   scheduler=scheduler, cfg=cfg)
    i2v.steps = int(steps)
    return i2v, i2v.conditioned(positive, negative, latent)


@dataclass
class PreviewSet:
    """The k-step previews of one chunk's candidates.

    In truncated mode ``results[j]`` is candidate j's sampler state at step k,
    so FullDenoise can resume the winner instead of starting over.
    """

    seeds: list[int]
    frames: list[torch.Tensor]
    mode: str
    k: int
    steps: int
    sampler_name: str
    scheduler: str
    cfg: float
    results: list[Optional[SampleResult]] = field(default_factory=list)


@dataclass
class ScoreSet:
    seeds: list[int]
    scores: list[CandidateScore]
    scorer: str

    @property
    def values(self) -> list[float]:
        return [s.score for s in self.scores]

    def best(self) -> int:
        return select_best(self.values)


class NoiseCandidates(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseNoiseCandidates",
            display_name="NoiseCandidates",
            category=CATEGORY,
            description="m candidate initial noises for one chunk. Candidate j is exactly the noise a stock "
                        "KSampler draws for seed + j on this latent, so any winner can be replayed in a KSampler.",
            inputs=[
                io.Latent.Input("latent", tooltip="The chunk's latent from the I2V conditioning node; sets the noise shape."),
                io.Int.Input("count", default=4, min=1, max=64,
                             tooltip="Candidates (m). More: better odds of a good chunk, m*k more model evaluations."),
                io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                             tooltip="Base seed; candidate j uses seed + j."),
            ],
            outputs=[CANDIDATES.Output("candidates", tooltip="m seeds; the noise is drawn when the model is known.")],
        )

    @classmethod
    def execute(cls, latent, count, seed) -> io.NodeOutput:
        if "samples" not in latent:
            raise ChunkwiseError(f"latent must be a ComfyUI LATENT dict with 'samples', got keys {sorted(latent)}")
        return io.NodeOutput(CandidateSet(seed=int(seed), count=int(count)))


class KStepPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseKStepPreview",
            display_name="KStepPreview",
            category=CATEGORY,
            description="Denoise every candidate for only k steps and decode a rough preview of each. "
                        "'short schedule' runs a complete k-step schedule (the paper); 'truncated' runs the first "
                        "k steps of the real schedule and previews the x0 prediction, so FullDenoise can resume "
                        "the winner at step k.",
            inputs=[
                io.Model.Input("model", tooltip="The video model (after VideoLinearCFGGuidance / ModelSamplingSD3 as in the stock workflow)."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning from SVD_img2vid_Conditioning or WanImageToVideo."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning from the same node."),
                io.Latent.Input("latent", tooltip="The chunk's latent from the I2V conditioning node."),
                CANDIDATES.Input("candidates", tooltip="From NoiseCandidates: the seeds to preview."),
                io.Vae.Input("vae", tooltip="Decodes the previews; the same VAE as the final decode."),
                io.Int.Input("k", default=8, min=1, max=10000,
                             tooltip="Preview steps. More: previews closer to the final chunk, m*k more evaluations."),
                *sampler_inputs(),
                io.Combo.Input("mode", options=MODES, default="short schedule",
                               tooltip="short schedule: the paper's complete k-step run. truncated: first k of the "
                                       "real steps, resumable by FullDenoise (saves k steps per chunk)."),
            ],
            outputs=[PREVIEWS.Output("previews", tooltip="The previews, for ClipMinCosineScore and FullDenoise."), io.Image.Output("images", tooltip="All previews, candidate after candidate.")],
        )

    @classmethod
    def validate_inputs(cls, k=None, steps=None, mode=None):
        problem = widget_problem(cls, k=k, steps=steps, mode=mode)
        if problem:
            return problem
        if k is not None and steps is not None and mode == "truncated" and k >= steps:
            return f"k must be smaller than steps in truncated mode, got k={k}, steps={steps}; lower k or use 'short schedule'"
        return True

    @classmethod
    def execute(cls, model, positive, negative, latent, candidates, vae, k, steps, cfg, sampler_name, scheduler,
                mode) -> io.NodeOutput:
        problem = cls.validate_inputs(k=k, steps=steps, mode=mode)
        if problem is not True:
            raise ChunkwiseError(problem)
        seeds = candidates.seeds
        truncated = mode == "truncated"
        i2v, cond = chunk_denoiser(model, positive, negative, latent, vae, steps=steps, cfg=cfg,
                                   sampler_name=sampler_name, scheduler=scheduler)
        hooks = comfy_hooks(len(seeds) * k)
        sampler = ChunkSampler(i2v, cond, hooks=hooks, progress=StepProgress(len(seeds) * k, hooks))
        previews = PreviewSet(seeds=seeds, frames=[], mode=mode, k=k, steps=steps, sampler_name=sampler_name,
                              scheduler=scheduler, cfg=cfg)
        for j, seed in enumerate(seeds):
            hooks.check_interrupt()
            # The paper's complete k-step run, or the first k steps of the real schedule (resumable).
            (result,) = sampler.sample([seed], steps=steps if truncated else k, end_step=k)
            previews.frames.append(sampler.decode_preview(result, j))
            previews.results.append(result if truncated else None)
        images = torch.cat(previews.frames, dim=0)
        middles = torch.stack([f[f.shape[0] // 2] for f in previews.frames])
        return io.NodeOutput(previews, images, ui=ui.PreviewImage(middles))


class ClipMinCosineScore(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseClipMinCosineScore",
            display_name="ClipMinCosineScore",
            category=CATEGORY,
            description="Score each preview by min over its frames of cos(CLIP(guide), CLIP(frame)) (the paper's "
                        "verifier). A SCORER input replaces the plain CLIP min-cosine with any chunkwise verifier.",
            inputs=[
                io.Image.Input("guide", tooltip="The image this chunk starts from (the previous chunk's last frame)."),
                PREVIEWS.Input("previews", tooltip="From KStepPreview: one decoded preview per candidate."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="CLIP vision encoder, e.g. clip_vision_h. Used when no scorer is given."),
                SCORER.Input("scorer", optional=True, tooltip="A chunkwise verifier; takes precedence over clip_vision."),
                io.Image.Input("anchor", optional=True,
                               tooltip="The video's first input image. Scorers with an anchor weight also penalise "
                                       "drift away from it."),
            ],
            outputs=[
                SCORES.Output("scores", tooltip="One score per candidate, for SelectBestNoise."),
                io.String.Output("summary", tooltip="Every candidate's score; the winner marked with *."),
            ],
        )

    @classmethod
    def execute(cls, guide, previews, clip_vision=None, scorer=None, anchor=None) -> io.NodeOutput:
        verifier = resolve_scorer(clip_vision, scorer)
        guide = check_image(guide[-1:] if guide.ndim == 4 else guide, "guide image")
        context = verifier.prepare(guide, None if anchor is None else check_image(anchor[:1], "anchor image"))
        scores = []
        for _j, frames in enumerate(previews.frames):
            comfy.model_management.throw_exception_if_processing_interrupted()
            result = context.score([frames])
            if len(result) != 1:
                raise ChunkwiseError(f"scorer {verifier.describe()!r} returned {len(result)} scores for 1 preview")
            scores.append(result[0])
        out = ScoreSet(seeds=list(previews.seeds), scores=scores, scorer=verifier.describe())
        best = out.best()
        summary = "\n".join(
            f"{'*' if j == best else ' '} candidate {j} (seed {seed}): {s.score:.4f}"
            for j, (seed, s) in enumerate(zip(out.seeds, scores, strict=False))
        )
        return io.NodeOutput(out, summary, ui=ui.PreviewText(summary))


class SelectBestNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseSelectBestNoise",
            display_name="SelectBestNoise",
            category=CATEGORY,
            description="Pick the best-scoring candidate (ties to the lowest index). Outputs ComfyUI's NOISE "
                        "(for SamplerCustomAdvanced or FullDenoise) and the winning seed (for a plain KSampler).",
            inputs=[
                CANDIDATES.Input("candidates", tooltip="From NoiseCandidates: the seeds that were previewed."),
                SCORES.Input("scores", tooltip="From ClipMinCosineScore: one score per candidate, same order."),
            ],
            outputs=[
                io.Noise.Output("noise", tooltip="The winner's noise as ComfyUI NOISE (SamplerCustomAdvanced, FullDenoise)."),
                io.Int.Output("seed", tooltip="The winner's seed: a KSampler with this seed draws the same noise."),
                io.Int.Output("index", tooltip="The winner's candidate index j (seed = base seed + j)."),
            ],
        )

    @classmethod
    def execute(cls, candidates, scores) -> io.NodeOutput:
        if list(scores.seeds) != candidates.seeds:
            raise ChunkwiseError(
                f"scores are for seeds {scores.seeds[:4]}... ({len(scores.seeds)}), candidates are seeds "
                f"{candidates.seeds[:4]}... ({candidates.count}); score the previews of these same candidates"
            )
        index = scores.best()
        seed = candidates.seeds[index]
        return io.NodeOutput(Noise_RandomNoise(seed), seed, index)


class FullDenoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseFullDenoise",
            display_name="FullDenoise",
            category=CATEGORY,
            description="Denoise the chosen noise over the full schedule. Given the truncated previews of the same "
                        "schedule, it resumes the winner at step k instead of starting over (k steps saved).",
            inputs=[
                io.Model.Input("model", tooltip="The video model (after VideoLinearCFGGuidance / ModelSamplingSD3 as in the stock workflow)."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning from SVD_img2vid_Conditioning or WanImageToVideo."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning from the same node."),
                io.Latent.Input("latent", tooltip="The chunk's latent from the I2V conditioning node (the same one the previews used)."),
                io.Noise.Input("noise", tooltip="From SelectBestNoise (or any NOISE, e.g. RandomNoise)."),
                *sampler_inputs(),
                PREVIEWS.Input("previews", optional=True,
                               tooltip="Truncated previews to resume from; ignored (with a log line) when their "
                                       "schedule differs from this one."),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="The denoised chunk latent, for VAEDecode.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, noise, steps, cfg, sampler_name, scheduler,
                previews=None) -> io.NodeOutput:
        seed = getattr(noise, "seed", None)
        resume = None
        if previews is not None and previews.mode == "truncated":
            same = (previews.steps, previews.sampler_name, previews.scheduler, previews.cfg) == (
                steps, sampler_name, scheduler, cfg)
            if same and seed in previews.seeds:
                resume = previews.results[previews.seeds.index(seed)]
            else:
                log.warning(
                    "FullDenoise: previews (steps %s, %s/%s, cfg %s, seeds %s..) do not match this run (steps %s, "
                    "%s/%s, cfg %s, seed %s); denoising from scratch",
                    previews.steps, previews.sampler_name, previews.scheduler, previews.cfg, previews.seeds[:3],
                    steps, sampler_name, scheduler, cfg, seed,
                )
        i2v, cond = chunk_denoiser(model, positive, negative, latent, None, steps=steps, cfg=cfg,
                                   sampler_name=sampler_name, scheduler=scheduler)
        noise_tensor = noise.generate_noise(cond.latent)
        start = 0 if resume is None else resume.end_step
        progress = StepProgress(steps - start, comfy_hooks(steps - start))
        # From the winner's noise, or its truncated preview continued at step k (for a noise_mask latent the
        # denoiser restarts from the clean latent with the noise that lands exactly on the preview's state).
        result = i2v.sample(cond, noise_tensor, steps=steps, start_step=start, end_step=steps, resume=resume,
                            callback=progress.step, seed=seed)
        out = dict(latent)
        out["samples"] = check_finite(result.latent, "denoised latent")
        return io.NodeOutput(out)


CHUNK_NODES = [NoiseCandidates, KStepPreview, ClipMinCosineScore, SelectBestNoise, FullDenoise]
