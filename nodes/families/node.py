"""The node plumbing every binding node shares (and the per-chunk nodes' sampler widgets): the sampler
inputs, the size inputs and their check from a family's spec, and binding the result into a ComfyI2V."""

from __future__ import annotations

import logging
from typing import Optional

import comfy.samplers
from comfy_api.latest import io

import nodes as comfy_nodes  # ComfyUI's own top-level module (MAX_RESOLUTION)

from ..host import ComfyI2V
from ..plumbing import widget_problem
from .spec import FamilySpec, SamplerDefaults

log = logging.getLogger("chunkwise")

CATEGORY = "chunkwise/models"


def sampler_inputs(defaults: Optional[SamplerDefaults] = None) -> list:
    """steps, cfg, sampler_name, scheduler, with the family's defaults (:class:`SamplerDefaults` when None)."""
    defaults = defaults or SamplerDefaults()
    return [
        io.Int.Input("steps", default=defaults.steps, min=1, max=10000,
                     tooltip="Steps of the full schedule (s). More steps: finer detail, proportionally more time."),
        io.Float.Input("cfg", default=defaults.cfg, min=0.0, max=100.0, step=0.1, round=0.01,
                       tooltip="Classifier-free guidance. 1.0 skips the negative pass (half the cost per step)."),
        io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default=defaults.sampler_name,
                       tooltip="Sampler. euler resumes exactly from a truncated preview; ancestral/SDE samplers "
                               "re-seed per call and multistep ones lose their history on resume."),
        io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default=defaults.scheduler,
                       tooltip="Noise schedule; use the model's recommended one (SVD: karras, Wan: simple)."),
    ]


def dimension_input(spec: FamilySpec, name: str, default: int, tooltip: str):
    """A width or height widget stepping by the family's multiple."""
    multiple = spec.sizes.multiple
    return io.Int.Input(name, default=default, min=max(16, multiple), max=comfy_nodes.MAX_RESOLUTION, step=multiple,
                        tooltip=tooltip)


def frames_input(spec: FamilySpec, default: int, maximum: int, tooltip: str):
    """The chunk-length widget, stepping by the family's length rule."""
    step = spec.sizes.frames_step
    return io.Int.Input(spec.sizes.frames, default=default, min=1, max=maximum, tooltip=tooltip,
                        **({"step": step} if step > 1 else {}))


def inputs_problem(node_cls, spec: FamilySpec, **values) -> Optional[str]:
    """For ``validate_inputs``: the node's own schema limits, then the family's size rule (None: fine)."""
    problem = widget_problem(node_cls, **values)
    if problem:
        return problem
    return spec.sizes.problem(width=values.get("width"), height=values.get("height"),
                              frames=values.get(spec.sizes.frames))


def check_latent_format(model, spec: FamilySpec) -> None:
    """Warn when the model's latent format is not the family's: a model of another family is connected."""
    fmt = type(getattr(model.model, "latent_format", None)).__name__
    if spec.latent_format is not None and fmt != spec.latent_format:
        log.warning("chunkwise: the model's latent format is %s, the %s family's models use %s; connect a %s model",
                    fmt, spec.name, spec.latent_format, spec.name)


def bind(model, vae, family, steps, cfg, sampler_name, scheduler, **experts) -> ComfyI2V:
    """The binding node's output: a ComfyI2V with the node's steps (read by ChunkLoop)."""
    check_latent_format(model, family.spec)
    i2v = ComfyI2V(model, vae, family, sampler_name=sampler_name, scheduler=scheduler, cfg=cfg, **experts)
    i2v.steps = int(steps)
    return i2v
