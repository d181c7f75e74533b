"""The shared denoising loop of the diffusers host.

Each family (SVD, CogVideoX, Wan, LTX-Video, HunyuanVideo 1.5, Kandinsky 5)
supplies its conditioning, one guided model evaluation, its decoder and, where
the guide's latent stands in the first latent frame, its initial latent; this
base class owns what the search needs from every one of them:

- a fresh copy of the pipeline's scheduler per run, so candidates never share
  scheduler state, and a copy at the stop step so a run can resume exactly
  (multistep history included);
- the step-noise generator of stochastic schedulers (CogVideoXDPM,
  EulerAncestral): a CPU generator seeded with the run's seed (the candidate's
  seed from the engine, else the denoiser's ``seed``) that first repeats the
  draws the conditioning made (SVD's noise augmentation, CogVideoX's VAE
  sample), as the stock pipeline's ``generator`` does; its state at the stop
  step travels in ``SampleResult.state``, so a resumed run continues the very
  same trajectory. A run with seed ``s`` on conditioning made with seed ``s``
  equals the stock call with ``generator=manual_seed(s)`` for deterministic
  schedulers (Euler, DDIM, DPM-Solver++, UniPC, FlowMatchEuler) and for
  CogVideoX, whose stock loop hands its generator to ``scheduler.step``. The
  stock SVD and Wan loops do not: an ancestral scheduler there draws its step
  noise from torch's global generator, so that stock call is not reproducible
  from ``generator`` at all; the host's run equals it only when the global
  generator is first set to the state of the run's generator past the
  conditioning's draws (what the tests do);
- the x0 prediction at every step: the ``pred_original_sample`` (LCM:
  ``denoised``) of schedulers whose step output has one, the solver's own data
  prediction (``convert_model_output``) for DPM-Solver, UniPC, DEIS and
  SA-Solver, ``x - sigma * v`` for flow matching, and ``alphas_cumprod`` for the
  other variance-preserving schedulers (TCD ...); never another second
  output (TCD's ``pred_noised_sample`` is not x0).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ..batching import run_in_batches
from ..errors import ChunkwiseError
from ..images import to_pil
from ..noise import SEED_MODULUS
from ..protocols import SampleResult, StepCallback, batch_arguments, check_window
from .text import encode_text

log = logging.getLogger("chunkwise")


@dataclass
class DiffusersCond:
    """Per-chunk conditioning, computed once and reused by every candidate.

    ``tensors`` holds the family's inputs (image embeddings, image latents, text
    embeddings ...). ``seed`` is the seed the conditioning drew its own noise
    with and ``draws`` the ``(shape, dtype)`` of each of those draws: every run
    of this chunk seeds a fresh generator (a manual seed before every run, as
    in the paper) and repeats these draws before its step noise, as the stock
    pipeline's single generator would.
    """

    height: int
    width: int
    num_frames: int
    latent_shape: tuple
    latent_dtype: torch.dtype
    tensors: dict = field(default_factory=dict)
    seed: int = 0
    draws: list = field(default_factory=list)


@dataclass
class ResumeState:
    """What a run stopped at step k needs to go on: scheduler, generator, solver memory."""

    scheduler: Any
    generator_state: torch.Tensor
    memory: dict = field(default_factory=dict)


def require_diffusers():
    """Import diffusers, or raise an error that says what to install."""
    try:
        import diffusers
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching sys.modules
        raise ChunkwiseError(
            f"the diffusers host needs the optional packages diffusers and transformers, which are not installed "
            f"({exc}); install them with: pip install diffusers transformers accelerate "
            "(or pip install 'chunkwise[diffusers]')"
        ) from exc
    return diffusers


BATCHABLE_SCHEDULERS = frozenset({
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "FlowMatchEulerDiscreteScheduler",
    "DDIMScheduler",
    "CogVideoXDDIMScheduler",
    "CogVideoXDPMScheduler",
})
"""Schedulers whose only state is the step index (CogVideoXDPM's previous x0 is kept per candidate by the
host), so several candidates can share one scheduler along the batch dimension."""


def _empty_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def is_flow_scheduler(scheduler) -> bool:
    cfg = scheduler.config
    return (
        "FlowMatch" in type(scheduler).__name__
        or getattr(cfg, "prediction_type", None) == "flow_prediction"
        or bool(getattr(cfg, "use_flow_sigmas", False))
    )


X0_OUTPUT_FIELDS = ("pred_original_sample", "denoised")
"""Fields of a scheduler's step output that hold the x0 prediction (``denoised``: LCM). Other second outputs
are not x0 (TCD's ``pred_noised_sample`` is the prediction re-noised to the next step), so none is read by
position."""

_X0_ALGORITHMS = frozenset({"dpmsolver++", "sde-dpmsolver++", "data_prediction"})
_EPSILON_ALGORITHMS = frozenset({"dpmsolver", "sde-dpmsolver", "deis", "noise_prediction"})


def _step_x0(out) -> Optional[torch.Tensor]:
    for name in X0_OUTPUT_FIELDS:
        value = getattr(out, name, None)
        if isinstance(value, torch.Tensor):
            return value
    return None


def _solver_x0(scheduler, model_output, t, latents) -> Optional[torch.Tensor]:
    """The data prediction of a multistep solver (DPM-Solver, UniPC, DEIS, SA-Solver) from ``convert_model_output``.

    Those solvers convert the model output (epsilon, v, sample or flow) to the quantity they integrate: x0 itself
    (DPM-Solver++, UniPC with ``predict_x0``, SA-Solver data prediction), or epsilon, turned into x0 here with the
    solver's own alpha and sigma of the step. None for any other scheduler.
    """
    convert = getattr(scheduler, "convert_model_output", None)
    if convert is None or not hasattr(scheduler, "_init_step_index"):
        return None
    predict_x0 = getattr(scheduler, "predict_x0", None)
    algorithm = getattr(scheduler.config, "algorithm_type", None)
    if predict_x0 is not None:
        gives_x0 = bool(predict_x0)
    elif algorithm in _X0_ALGORITHMS:
        gives_x0 = True
    elif algorithm in _EPSILON_ALGORITHMS:
        gives_x0 = False
    else:
        return None
    if getattr(scheduler, "step_index", None) is None:  # what the step itself does first
        scheduler._init_step_index(t)
    converted = convert(model_output, sample=latents)
    if gives_x0:
        return converted.to(latents.dtype)
    if not hasattr(scheduler, "_sigma_to_alpha_sigma_t"):
        return None
    alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[scheduler.step_index])
    alpha_t, sigma_t = alpha_t.to(latents.device), sigma_t.to(latents.device)
    return ((latents.float() - sigma_t * converted.float()) / alpha_t).to(latents.dtype)


def _vp_x0(scheduler, t, model_output, latents) -> Optional[torch.Tensor]:
    """x0 from ``alphas_cumprod`` for variance-preserving schedulers on integer timesteps (TCD ...).

    Only where the latent is the plain ``sqrt(a) x0 + sqrt(1 - a) noise`` (``init_noise_sigma`` 1) and the
    prediction type is one of epsilon, v_prediction or sample; None otherwise.
    """
    alphas = getattr(scheduler, "alphas_cumprod", None)
    prediction = getattr(scheduler.config, "prediction_type", None)
    if alphas is None or prediction not in ("epsilon", "v_prediction", "sample"):
        return None
    if float(getattr(scheduler, "init_noise_sigma", 1.0)) != 1.0:
        return None
    step = float(t)
    if step != int(step) or not 0 <= int(step) < len(alphas):
        return None
    a = alphas[int(step)].to(latents.device, torch.float32)
    x, out = latents.float(), model_output.float()
    if prediction == "epsilon":
        x0 = (x - (1 - a).sqrt() * out) / a.sqrt()
    elif prediction == "v_prediction":
        x0 = a.sqrt() * x - (1 - a).sqrt() * out
    else:
        x0 = out
    return x0.to(latents.dtype)


class DiffusersDenoiser:
    """Base of the diffusers denoisers (the search/ ``I2VDenoiser`` protocol).

    ``nfe`` counts guided model evaluations, one per sampler step (a cond/uncond
    pair counts once, batched or not); ``network_calls`` counts forward passes.
    ``seed`` seeds the generator the conditioning and stochastic schedulers draw
    from, like the stock pipeline's ``generator=torch.Generator().manual_seed(seed)``.
    """

    family = "diffusers"

    def __init__(self, pipe, *, seed: int = 0, device=None, fps: int = 8) -> None:
        self.pipe = pipe
        self.seed = int(seed)
        self.nfe = 0
        self.network_calls = 0
        self.fps = int(fps)
        self._device = torch.device(device) if device is not None else None
        self._x0_warned = False
        self.batch_limit: Optional[int] = None

    # -- helpers ---------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        if self._device is not None:
            return self._device
        return self.pipe._execution_device

    def describe(self) -> str:
        return f"{self.family} ({type(self.pipe).__name__}, {type(self.pipe.scheduler).__name__})"

    def _condition_generator(self) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(self.seed)

    @staticmethod
    def _draw(generator: torch.Generator, draws: list, shape, dtype) -> torch.Tensor:
        """``torch.randn`` on the CPU from ``generator``, recorded in ``draws`` so runs can repeat it."""
        draws.append((tuple(shape), dtype))
        return torch.randn(tuple(shape), generator=generator, dtype=dtype, device="cpu")

    @staticmethod
    def _run_generator(cond: DiffusersCond, seed: Optional[int]) -> torch.Generator:
        """A CPU generator seeded with ``seed`` (default: the conditioning's) past the conditioning's draws."""
        generator = torch.Generator(device="cpu").manual_seed(int(cond.seed if seed is None else seed) % SEED_MODULUS)
        for shape, dtype in cond.draws:
            torch.randn(shape, generator=generator, dtype=dtype, device="cpu")
        return generator

    def _embeddings(self, dtype):
        """``(prompt_embeds, negative_prompt_embeds)`` of the run's text (CogVideoX, Wan: ``self._text``),
        encoded once in ``dtype`` (the denoising model's); the text encoder then leaves the accelerator."""
        if self._text_cache is None:
            self._text_cache = encode_text(self.pipe, self.family, self.do_cfg, self.device, self._text,
                                           max_sequence_length=self.max_sequence_length, dtype=dtype)
            self._park_text_encoder()
        return self._text_cache

    def _park_text_encoder(self) -> None:
        """Text is encoded once per run: the text encoders (T5/umT5, Qwen2.5-VL, billions of parameters; ByT5 or
        CLIP as ``text_encoder_2``) then leave the accelerator. Under model CPU offload (no fixed device)
        diffusers' hooks already do this."""
        for name in ("text_encoder", "text_encoder_2"):
            encoder = getattr(self.pipe, name, None)
            if encoder is not None and self._device is not None:
                encoder.to("cpu")

    def _fresh_scheduler(self, steps: int):
        scheduler = copy.deepcopy(self.pipe.scheduler)
        self._set_timesteps(scheduler, steps)
        if len(scheduler.timesteps) != steps:
            raise ChunkwiseError(
                f"{self.family}: scheduler {type(scheduler).__name__} makes {len(scheduler.timesteps)} model "
                f"evaluations for {steps} steps; stopping after k steps and resuming needs one evaluation per step. "
                "Use a first-order or multistep scheduler (Euler, EulerAncestral, DDIM, DPMSolverMultistep, UniPC, "
                "CogVideoXDPM, FlowMatchEuler) instead of Heun/KDPM2-style second-order ones"
            )
        return scheduler

    def _set_timesteps(self, scheduler, steps: int) -> None:
        scheduler.set_timesteps(steps, device=self.device)

    @staticmethod
    def _guide_image(guide: torch.Tensor) -> torch.Tensor:
        """Guide ``[1, H, W, 3]`` -> ``[1, 3, H, W]`` float in 0..1 at its own size.

        The stock pipelines give their image encoders (SVD's and Wan 2.1's CLIP) the image as it came, not the
        one resized for the VAE; the encoder's own preprocessing sizes it.
        """
        return guide.permute(0, 3, 1, 2).float()

    def _vae_pixels(self, guide: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Guide -> ``[1, 3, height, width]`` in -1..1 (float32), as the stock call's
        ``pipe.video_processor.preprocess(image, height=height, width=width)`` makes it from a PIL image.

        A guide of that size is used as it is (for an 8-bit guide exactly what the PIL image gives). Another size
        is resized the way the stock call resizes its PIL image: as 8-bit RGB with the processor's filter
        (Lanczos), stretched to ``width x height`` without keeping the aspect ratio.
        """
        image = self._guide_image(guide)
        if tuple(image.shape[-2:]) == (height, width):
            return image * 2.0 - 1.0
        return self.pipe.video_processor.preprocess(to_pil(guide[0]), height=height, width=width).float()

    @staticmethod
    def _frames_from_video(video: torch.Tensor) -> torch.Tensor:
        """VAE output ``[1, 3, T, H, W]`` in -1..1 -> frames ``[T, H, W, 3]`` in 0..1 (float32, CPU)."""
        return (video[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).cpu()

    def _check_size(self, height: int, width: int, multiple: int) -> None:
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise ChunkwiseError(
                f"{self.family}: width x height must be positive multiples of {multiple}, got {width} x {height}; "
                f"use e.g. {max(multiple, width // multiple * multiple)} x {max(multiple, height // multiple * multiple)}"
            )

    # -- the protocol ----------------------------------------------------------------------------------

    def latent_template(self, cond: DiffusersCond) -> torch.Tensor:
        return torch.empty(cond.latent_shape, dtype=cond.latent_dtype, device="cpu")

    def sample(
        self,
        cond: DiffusersCond,
        noise: torch.Tensor,
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resume: Optional[SampleResult] = None,
        callback: Optional[StepCallback] = None,
        seed: Optional[int] = None,
    ) -> SampleResult:
        """Run steps ``[start_step, end_step)`` of a ``steps``-step schedule (see the module docstring).

        ``seed`` seeds the step noise of stochastic schedulers (default: the
        conditioning's seed); a resumed run continues the generator it stopped with.
        """
        end_step = check_window(steps, start_step, end_step)
        self._check_resumes(steps, start_step, end_step, [resume])
        return self._sample_stacked(cond, [noise], [resume], [seed], steps=steps, start_step=start_step,
                                    end_step=end_step, callback=callback)[0]

    def sample_batch(
        self,
        cond: DiffusersCond,
        noises: list,
        *,
        steps: int,
        start_step: int = 0,
        end_step: Optional[int] = None,
        resumes: Optional[list] = None,
        callback: Optional[StepCallback] = None,
        seeds: Optional[list] = None,
    ) -> list[SampleResult]:
        """:meth:`sample` for several candidates in one batched model call per step.

        Each candidate keeps its own seeded step-noise generator, so results equal
        sequential :meth:`sample` calls to float tolerance. Schedulers that keep
        per-sample history (multistep solvers) run one candidate at a time. On
        out-of-memory the batch is halved and retried down to one candidate; the
        size that fit is kept in :attr:`batch_limit`. ``nfe`` counts per candidate.
        """
        count = len(noises)
        seeds, resumes = batch_arguments(noises, seeds, resumes, lambda _noise: None)
        end_step = check_window(steps, start_step, end_step)
        self._check_resumes(steps, start_step, end_step, resumes)
        if count == 0:
            return []
        window = dict(steps=steps, start_step=start_step, end_step=end_step, callback=callback)
        if type(self.pipe.scheduler).__name__ not in BATCHABLE_SCHEDULERS:
            return [self._sample_stacked(cond, [n], [r], [s], **window)[0]
                    for n, r, s in zip(noises, resumes, seeds, strict=True)]
        def restore(saved) -> None:
            self.nfe, self.network_calls = saved

        results, self.batch_limit = run_in_batches(
            count, self.batch_limit,
            lambda i, n: self._sample_stacked(cond, noises[i : i + n], resumes[i : i + n], seeds[i : i + n], **window),
            snapshot=lambda: (self.nfe, self.network_calls), restore=restore, free=_empty_cache,
        )
        return results

    def _check_resumes(self, steps: int, start_step: int, end_step: int, resumes: list) -> None:
        """Each run starts at step 0 from its noise, or continues the result of a run of the same schedule."""
        for resume in resumes:
            if resume is None and start_step != 0:
                raise ChunkwiseError(
                    f"{self.family}: starting at step {start_step} needs the result of the run that stopped there "
                    "(resume=...); without it start at step 0"
                )
            if resume is not None and (resume.steps != steps or resume.end_step != start_step or resume.state is None):
                raise ChunkwiseError(
                    f"{self.family}: cannot resume a run of {resume.steps} steps that stopped at step "
                    f"{resume.end_step} as steps [{start_step}, {end_step}) of {steps}; resume the same schedule "
                    "where it stopped"
                )

    batched_tensors: tuple = ()
    """Keys of ``DiffusersCond.tensors`` with a batch dimension (``[uncond, cond]`` under guidance)."""

    def _batch_cond(self, cond: DiffusersCond, size: int) -> DiffusersCond:
        """``cond`` with its batched tensors repeated for ``size`` candidates stacked along the batch dimension:
        ``[u, c]`` becomes ``[u]*size + [c]*size``, matching ``torch.cat([latents] * 2)`` in the guided step."""
        tensors = dict(cond.tensors)
        for key in self.batched_tensors:
            if tensors.get(key) is not None:
                tensors[key] = tensors[key].repeat_interleave(size, dim=0)
        return dataclasses.replace(cond, tensors=tensors)

    def _sample_stacked(self, cond, noises, resumes, seeds, *, steps, start_step, end_step, callback):
        """The denoising loop for one or more candidates stacked along the batch dimension."""
        size = len(noises)
        # 1. Scheduler, generators, latents: fresh from the noises, or where the earlier runs stopped.
        if resumes[0] is None:
            scheduler = self._fresh_scheduler(steps)
        else:
            scheduler = copy.deepcopy(resumes[0].state.scheduler)
        generators, latents, x0s, memories = [], [], [], []
        for noise, resume, seed in zip(noises, resumes, seeds, strict=True):
            if resume is None:
                if tuple(noise.shape) != tuple(cond.latent_shape):
                    raise ChunkwiseError(
                        f"{self.family}: noise must have the latent shape {list(cond.latent_shape)}, "
                        f"got {list(noise.shape)}; draw it from latent_template(cond)"
                    )
                generators.append(self._run_generator(cond, seed))
                x = self._initial_latent(cond, noise, scheduler)
                latents.append(x)
                x0s.append(x)
                memories.append({})
            else:
                state: ResumeState = resume.state
                generator = torch.Generator(device="cpu")
                generator.set_state(state.generator_state)
                generators.append(generator)
                latents.append(resume.latent.to(self.device, cond.latent_dtype))
                x0s.append(resume.x0)
                memories.append(dict(state.memory))
        x = torch.cat(latents) if size > 1 else latents[0]
        x0 = torch.cat(x0s) if size > 1 else x0s[0]
        memory = {k: torch.cat([m[k] for m in memories]) if size > 1 else memories[0][k] for k in memories[0]}
        batch_cond = self._batch_cond(cond, size) if size > 1 else cond
        generator = generators if size > 1 else generators[0]

        # 2. Denoising loop over the window: one (guided) model evaluation per step for the whole batch.
        timesteps = scheduler.timesteps
        with torch.no_grad():
            for i in range(start_step, end_step):
                x, x0 = self._step(batch_cond, scheduler, timesteps, i, x, generator, memory)
                self.nfe += size
                if callback is not None:
                    callback(i, x0)

        # 3. One result per candidate; a finished run needs no state, an unfinished one keeps what a resume needs.
        finished = end_step >= steps
        out = []
        for j in range(size):
            latent_j = x[j : j + 1] if size > 1 else x
            state_out = None
            if not finished:
                memory_j = {k: (v[j : j + 1] if size > 1 else v) for k, v in memory.items()}
                state_out = ResumeState(scheduler=copy.deepcopy(scheduler), generator_state=generators[j].get_state(),
                                        memory=memory_j)
            x0_j = latent_j if finished else (x0[j : j + 1] if size > 1 else x0)
            out.append(SampleResult(latent=latent_j, x0=x0_j, steps=steps, start_step=start_step, end_step=end_step,
                                    state=state_out))
        return out

    def _initial_latent(self, cond: DiffusersCond, noise: torch.Tensor, scheduler) -> torch.Tensor:
        """The latent a run starts from: the noise scaled to the scheduler's first sigma. Families that keep the
        guide's latent in the first latent frame (LTX-Video, Kandinsky 5) put it there."""
        return noise.to(self.device, cond.latent_dtype) * getattr(scheduler, "init_noise_sigma", 1.0)

    def _scheduler_step(self, scheduler, model_output, t, latents, generator, index: int, **extra):
        """One scheduler step (step ``index`` of the schedule): ``(prev_sample, x0)``, x0 from the step's
        output, else the solver's data prediction, else :meth:`_x0_fallback`."""
        kwargs = dict(extra)
        if _accepts(scheduler.step, "generator"):
            kwargs["generator"] = generator
        # The solver's data prediction reads the sigma of the step about to run, so it is taken before the step.
        solver_x0 = _solver_x0(scheduler, model_output, t, latents)
        out = scheduler.step(model_output, t, latents, return_dict=True, **kwargs)
        prev = out.prev_sample if hasattr(out, "prev_sample") else out[0]
        x0 = _step_x0(out)
        if x0 is None:
            x0 = solver_x0 if solver_x0 is not None else self._x0_fallback(scheduler, index, model_output, latents)
        return prev, x0

    def _x0_fallback(self, scheduler, index: int, model_output, latents) -> torch.Tensor:
        """x0 for a scheduler whose step gives none: flow matching, then variance-preserving noise schedules."""
        if is_flow_scheduler(scheduler):
            sigma = scheduler.sigmas[index].to(latents.device, torch.float32)
            return (latents.float() - sigma * model_output.float()).to(latents.dtype)
        x0 = _vp_x0(scheduler, scheduler.timesteps[index], model_output, latents)
        if x0 is not None:
            return x0
        if not self._x0_warned:
            log.warning(
                "chunkwise: scheduler %s gives no x0 prediction; truncated previews show the noisy latent. "
                "Use short previews or a scheduler with one (Euler, EulerAncestral, DDIM, DPMSolverMultistep, "
                "UniPC, FlowMatchEuler).",
                type(scheduler).__name__,
            )
            self._x0_warned = True
        return latents

    # -- what each family provides ----------------------------------------------------------------------

    def condition(self, guide: torch.Tensor) -> DiffusersCond:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, cond, scheduler, timesteps, i, latents, generator, memory):  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, latent: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
