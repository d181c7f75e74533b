"""Search Options: ChunkLoop's cost and streaming options on a node of their own.

ChunkLoop shows only what every run sets; what it returns, what it does with an
existing run folder, colour anchoring and the cost options of the search come from
this node's output on ChunkLoop's ``options`` input (as SamplerCustomAdvanced takes
a SAMPLER). Unconnected, ChunkLoop uses this node's defaults.

These options were ChunkLoop's own inputs before. ComfyUI passes a node only the
inputs its schema declares (a saved prompt's other constant inputs are left out,
``execution.py`` ``get_input_data``), so ChunkLoop reads them from the prompt itself
and :func:`migrate_legacy_inputs` turns them into options: a saved workflow runs
with the settings it was saved with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from comfy_api.latest import io
from comfy_execution.graph_utils import is_link

from ..search.colour import COLOUR_METHODS
from ..search.engine import LoopSettings, SearchSettings
from ..search.errors import ChunkwiseError
from .plumbing import widget_problem
from .types import SEARCH_OPTIONS

log = logging.getLogger("chunkwise")

RETURN_FRAMES = {"all frames": "all", "last chunk + overview": "last"}
ON_EXISTING = {"resume": "resume", "new run": "new", "error": "error"}
PREVIEW_DECODE = {"full VAE": "vae", "approximate (latent to RGB)": "approx"}


@dataclass(frozen=True)
class LoopOptions:
    """What a Search Options node hands ChunkLoop, in the engine's terms (the defaults: all off).

    ``keep_frames``: ``all`` (the whole video as the output) or ``last`` (the last chunk plus the
    overview); ``on_existing``: ``resume``, ``new`` or ``error`` (see ``search.sinks.DiskSink``);
    ``accept_score`` is None with early accept off. The rest as in ``SearchSettings`` and
    ``LoopSettings``.
    """

    keep_frames: str = "all"
    on_existing: str = "resume"
    colour_anchor: float = 0.0
    colour_method: str = "lab"
    candidate_batch: int = 1
    preview_stride: int = 1
    preview_decode: str = "vae"
    accept_score: Optional[float] = None
    halving_k: int = 0


def options_from_widgets(**widgets) -> LoopOptions:
    """The options a Search Options node with these widget values makes (the rest at their defaults)."""
    schema = {i.id: i for i in SearchOptions.define_schema().inputs}
    unknown = sorted(set(widgets) - set(schema))
    if unknown:
        raise TypeError(f"Search Options has no inputs {unknown}; its inputs are {list(schema)}")
    w = {name: item.default for name, item in schema.items()} | widgets
    pick = "pick one from the widget's list"
    combos = ("return_frames", "on_existing", "colour_method", "preview_decode")
    problem = widget_problem(SearchOptions, fixes=dict.fromkeys(combos, pick), **{name: w[name] for name in combos})
    if problem:
        raise ChunkwiseError(problem)
    return LoopOptions(
        keep_frames=RETURN_FRAMES[w["return_frames"]],
        on_existing=ON_EXISTING[w["on_existing"]],
        colour_anchor=float(w["colour_anchor"]),
        colour_method=w["colour_method"],
        candidate_batch=w["candidate_batch"],
        preview_stride=w["preview_frame_stride"],
        preview_decode=PREVIEW_DECODE[w["preview_decode"]],
        accept_score=float(w["accept_score"]) if w["early_accept"] else None,
        halving_k=w["halving_k"],
    )


def options_problem(options: LoopOptions) -> Optional[str]:
    """What ``LoopSettings.validate`` refuses in ``options`` alone, before ChunkLoop's values are known.

    The search is built switched off with k just above ``halving_k``, so the rules that need
    ChunkLoop's k, m and the binding's steps hold here; ChunkLoop checks them with its own values.
    """
    try:
        LoopSettings(
            colour_anchor=options.colour_anchor,
            colour_method=options.colour_method,
            search=SearchSettings(
                enabled=False, k=options.halving_k + 1, steps=options.halving_k + 2,
                candidate_batch=options.candidate_batch, preview_stride=options.preview_stride,
                preview_decode=options.preview_decode, accept_score=options.accept_score,
                halving_k=options.halving_k,
            ),
        ).validate()
    except ChunkwiseError as e:
        return str(e)
    return None


class SearchOptions(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseSearchOptions",
            display_name="Search Options",
            category="chunkwise",
            description="ChunkLoop's cost and streaming options: what it returns, what it does with an existing run "
                        "folder, colour anchoring, batched and cheaper previews, early accept and successive halving. "
                        "Connect it to ChunkLoop's options input; without it ChunkLoop uses these defaults (the "
                        "paper's search, the whole video returned).",
            inputs=[
                io.Combo.Input("return_frames", options=list(RETURN_FRAMES), default="all frames", optional=True,
                               tooltip="all frames: the whole video as one IMAGE (memory grows with the length). "
                                       "last chunk + overview: only the last chunk, plus the overview output (each "
                                       "chunk's last frame, small); with a run_name the full video is in the run "
                                       "folder and memory stays flat however many chunks."),
                io.Combo.Input("on_existing", options=list(ON_EXISTING), default="resume", optional=True,
                               tooltip="When output/chunkwise/<run_name> already holds a run. resume: skip its "
                                       "finished chunks and continue (the same settings are required; changed "
                                       "settings stop with an error naming them, never a mixed video). new run: "
                                       "start <run_name>-2, -3 ... and keep the old one. error: refuse."),
                io.Float.Input("colour_anchor", default=0.0, min=0.0, max=1.0, step=0.05, optional=True,
                               tooltip="Colour anchoring strength. 0: off. Up to 1: match each chunk's colour "
                                       "statistics (mean and spread per channel) to the input image before its "
                                       "last frame starts the next chunk, so colour, contrast and saturation stop "
                                       "creeping. Higher holds colours better but also pulls back colour changes "
                                       "the scene should have (sunsets, cuts)."),
                io.Combo.Input("colour_method", options=list(COLOUR_METHODS), default="lab", optional=True,
                               tooltip="lab: match mean/std per CIE Lab channel (lightness apart from colour; "
                                       "corrects casts and saturation, recommended). rgb: per RGB channel (simpler, "
                                       "moves brightness and colour together)."),
                io.Int.Input("candidate_batch", default=1, min=1, max=64, optional=True,
                             tooltip="Candidates sampled together in one batched model call per step (Wan along "
                                     "the batch dimension, SVD as stacked videos). Same results to float rounding, "
                                     "better GPU use, more memory; on out-of-memory the batch is halved and "
                                     "retried automatically. Ancestral/SDE samplers sample one at a time (one "
                                     "seed per call). 1: one candidate at a time."),
                io.Int.Input("preview_frame_stride", default=1, min=1, max=64, optional=True,
                             tooltip="Score every n-th preview frame (the first and last always). Fewer frames "
                                     "decoded (where the VAE decodes frames separately, as SVD's) and encoded by "
                                     "the scorer; misses drift between the scored frames. 1: every frame."),
                io.Combo.Input("preview_decode", options=list(PREVIEW_DECODE), default="full VAE", optional=True,
                               tooltip="full VAE: previews decoded by the real VAE (what the paper scores). "
                                       "approximate: ComfyUI's latent previewer (latent-to-RGB factors, or TAESD/TAEHV with --preview-method taesd), one frame per latent "
                                       "frame at latent resolution; almost free, but cruder, so the scorer may "
                                       "pick a different winner. The chosen chunk is always fully decoded."),
                io.Boolean.Input("early_accept", default=False, optional=True,
                                 tooltip="Early accept. Off: every candidate is previewed (the paper's search). On: "
                                         "candidates are previewed one after another and the search stops at the "
                                         "first whose score reaches accept_score: saves (m - drawn) x k evaluations "
                                         "on easy chunks, but may settle for a worse candidate than the full search. "
                                         "Cannot be combined with halving_k."),
                io.Float.Input("accept_score", default=0.9, min=-10.0, max=10.0, step=0.01, optional=True,
                               tooltip="Early accept's threshold (used only with early_accept on): the search stops "
                                       "at the first candidate scoring at least this, e.g. 0.9 for CLIP min-cosine. "
                                       "Any value in range, 0 included; scorers with negative scores take negative "
                                       "thresholds."),
                io.Int.Input("halving_k", default=0, min=0, max=1000, optional=True,
                             tooltip="Successive halving. 0: off. Otherwise all m candidates are previewed with "
                                     "this many steps, the better half is extended, and so on up to k steps: "
                                     "fewer evaluations than m*k, with the same winner in most chunks. Saves most "
                                     "with truncated previews; short previews restart each rung, so use a small "
                                     "value (1 or 2). Must be smaller than ChunkLoop's k; cannot be combined with "
                                     "early accept."),
            ],
            outputs=[SEARCH_OPTIONS.Output("options", tooltip="For ChunkLoop's options input.")],
        )

    @classmethod
    def validate_inputs(cls, early_accept=None, accept_score=None, halving_k=None):
        problem = widget_problem(cls, accept_score=accept_score, halving_k=halving_k)
        if problem:
            return problem
        # A linked (None) value counts as its default here; ChunkLoop checks the real one when it runs.
        known = {k: v for k, v in (("early_accept", early_accept), ("accept_score", accept_score),
                                   ("halving_k", halving_k)) if v is not None}
        return options_problem(options_from_widgets(**known)) or True

    @classmethod
    def execute(cls, **widgets) -> io.NodeOutput:
        return io.NodeOutput(options_from_widgets(**widgets))


# ---------------------------------------------------------------------------
# Workflows saved while these options were ChunkLoop's own inputs
# ---------------------------------------------------------------------------

LEGACY_INPUTS = {
    "return_frames": "all frames", "on_existing": "resume", "colour_anchor": 0.0, "colour_method": "lab",
    "candidate_batch": 1, "preview_frame_stride": 1, "preview_decode": "full VAE", "accept_score": 0.0,
    "halving_k": 0,
}
"""ChunkLoop's inputs that moved here, with their defaults then: the values that meant off (accept_score 0: no
early accept). A record of saved workflows, so it stays as it is when this node's defaults change."""

_CONVERT = {"INT": int, "FLOAT": float, "COMBO": str}


def legacy_prompt_inputs(hidden) -> dict:
    """The moved options a saved prompt still gives this ChunkLoop node as constant inputs of its own.

    ComfyUI hands ``execute`` only declared inputs, so they are read from the prompt (hidden
    ``PROMPT`` and ``UNIQUE_ID``). Linked ones are left to ComfyUI, which passes them as keywords.
    """
    prompt, node_id = getattr(hidden, "prompt", None), getattr(hidden, "unique_id", None)
    node = prompt.get(str(node_id)) if isinstance(prompt, dict) and node_id is not None else None
    inputs = node.get("inputs") if isinstance(node, dict) else None
    if not isinstance(inputs, dict):
        return {}
    return {k: v for k, v in inputs.items() if k in LEGACY_INPUTS and not is_link(v)}


def migrate_legacy_inputs(options: Optional[LoopOptions], legacy: dict) -> LoopOptions:
    """ChunkLoop's options from its ``options`` input and the moved inputs of a workflow saved before.

    Legacy values are converted and range-checked as ComfyUI did when they were declared. Without
    a Search Options node they become the options (a value that is not off is logged); with one,
    a legacy value that is not off is refused, since two places would say what the run does.
    """
    unknown = sorted(set(legacy) - set(LEGACY_INPUTS))
    if unknown:
        raise TypeError(f"ChunkLoop.execute got unexpected keyword arguments {unknown}")
    schema = {i.id: i for i in SearchOptions.define_schema().inputs}
    values = {}
    for name, value in legacy.items():
        kind = schema[name].get_io_type()
        try:
            values[name] = _CONVERT[kind](value)
        except (TypeError, ValueError):
            raise ChunkwiseError(
                f"ChunkLoop input {name} must be of type {kind}, got {value!r}; it belongs on the Search Options "
                "node now: connect one to ChunkLoop's options input and set it there"
            ) from None
    problem = widget_problem(SearchOptions, **values)
    if problem:
        raise ChunkwiseError(f"ChunkLoop input {problem} (an input saved before it moved to the Search Options node; "
                             "set it there)")
    changed = {name: value for name, value in values.items() if value != LEGACY_INPUTS[name]}
    if options is not None:
        if not isinstance(options, LoopOptions):
            raise ChunkwiseError(f"options must come from a Search Options node, got {type(options).__name__}; "
                                 "connect ChunkwiseSearchOptions's output")
        if changed:
            raise ChunkwiseError(
                f"ChunkLoop got {changed} as inputs of its own (saved before they moved to the Search Options node) "
                "and a Search Options node on its options input; set these values on that Search Options node and "
                "remove them from ChunkLoop's inputs"
            )
        return options
    if changed:
        log.warning("chunkwise: ChunkLoop uses %s from inputs of its own, saved before they moved to the Search "
                    "Options node; connect a Search Options node with these values to its options input", changed)
    widgets = dict(values)
    widgets["early_accept"] = values.get("accept_score", 0.0) != 0.0
    if not widgets["early_accept"]:
        widgets.pop("accept_score", None)
    return options_from_widgets(**widgets)
