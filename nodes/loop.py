"""ChunkLoop: the whole long video in one node, driving an I2V binding through the engine.

It loops internally (not by graph expansion, whose per-iteration outputs stay
cached until the prompt ends), so it shows exact progress, stops cleanly on
Cancel between candidates and chunks, and holds only what the next chunk needs.
It shows what every run sets; the cost and streaming options come from a
Search Options node (``nodes/search_options.py``) on its ``options`` input.

Long runs lose nothing: with a ``run_name`` every finished chunk is streamed to
``<output>/chunkwise/<run_name>/`` (PNG frames, the exact float guide frame and
an atomic ``state.json``, see ``search/sinks.py``); queueing the same run again
skips the finished chunks and gives a bit-identical video.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import comfy.model_management
import folder_paths
import torch
from comfy_api.latest import io

from ..search.engine import LoopSettings, SearchSettings, run_chunks
from ..search.errors import ChunkwiseError
from ..search.noise import SEED_MODULUS
from ..search.protocols import MemorySink
from ..search.report import dumps, summarize
from ..search.sinks import DiskSink, check_run_name
from .chunk_nodes import MODES
from .fingerprint import binding_fingerprint, scorer_fingerprint
from .plot import score_plot
from .plumbing import comfy_hooks, resolve_scorer, widget_problem
from .search_options import LoopOptions, SearchOptions, legacy_prompt_inputs, migrate_legacy_inputs
from .types import I2V, SCORER, SEARCH_OPTIONS

log = logging.getLogger("chunkwise")

MODE_TO_ENGINE = {"short schedule": "short", "truncated": "truncated"}
RUNS_SUBFOLDER = "chunkwise"
OVERVIEW_SIZE = 256


def runs_directory() -> Path:
    """Where run folders live: ``<ComfyUI output>/chunkwise``."""
    return Path(folder_paths.get_output_directory()) / RUNS_SUBFOLDER


def as_one_rgb_image(image) -> torch.Tensor:
    """The input IMAGE as one RGB frame ``[1, H, W, 3]`` (the documented input policy).

    A batch of several images: the first is used, with a logged warning (a
    video or batch wired in by mistake still starts from its first frame).
    One channel (grayscale) is repeated to RGB; two channels (grayscale +
    alpha) use the gray; four (RGBA) drop alpha. Other shapes are refused.
    """
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4):
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ChunkwiseError(
            f"image must be an IMAGE [1, H, W, 3], got {shape}; connect a LoadImage (or any IMAGE) output"
        )
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.shape[0] > 1:
        log.warning("chunkwise: image is a batch of %d; using the first image as the start frame", image.shape[0])
        image = image[:1]
    channels = image.shape[-1]
    if channels == 1:
        image = image.repeat(1, 1, 1, 3)
    elif channels == 2:
        image = image[..., :1].repeat(1, 1, 1, 3)
    elif channels == 4:
        image = image[..., :3]
    elif channels != 3:
        raise ChunkwiseError(
            f"image must have 1 (gray), 3 (RGB) or 4 (RGBA) channels, got {channels} (shape {list(image.shape)}); "
            "convert it to RGB first"
        )
    return image


def binding_steps(i2v) -> int:
    steps = getattr(i2v, "steps", None)
    if not isinstance(steps, int) or steps < 1:
        raise ChunkwiseError(
            f"the I2V input has no usable 'steps' (got {steps!r}); connect an I2V Model node "
            "(ChunkwiseI2VSVD, ChunkwiseI2VWan or ChunkwiseDiffusersI2V)"
        )
    return steps


def loop_settings(chunks, candidates, k, preview_mode, seed, search, drop_first_frame, options: LoopOptions,
                  steps: int) -> LoopSettings:
    """The run's settings from ChunkLoop's widgets, its options and the binding's steps (not yet validated)."""
    return LoopSettings(
        chunks=chunks,
        seed=seed,
        drop_first_frame=drop_first_frame,
        colour_anchor=options.colour_anchor,
        colour_method=options.colour_method,
        search=SearchSettings(
            candidates=candidates, k=k, steps=steps, preview_mode=MODE_TO_ENGINE[preview_mode], enabled=search,
            candidate_batch=options.candidate_batch, preview_stride=options.preview_stride,
            preview_decode=options.preview_decode, accept_score=options.accept_score, halving_k=options.halving_k,
        ),
    )


class ChunkLoop(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseChunkLoop",
            display_name="ChunkLoop",
            category="chunkwise",
            description="Generate a long video chunk by chunk: each chunk starts from the last frame of the one "
                        "before, and before each chunk m candidate noises are previewed with k steps, scored, and "
                        "only the best is fully denoised. Candidates 1 (or search off) is the naive baseline. "
                        "Cost per chunk: m*k + s model evaluations (m*k + s - k when truncated previews resume). "
                        "What it returns, run-folder handling, colour anchoring and the cost options come from a "
                        "Search Options node on its options input.",
            inputs=[
                I2V.Input("i2v", tooltip="An I2V Model node: the model bound to its conditioning and sampler settings."),
                io.Image.Input("image", tooltip="The first frame of the video (one image). A batch: the first "
                                                "image is used (with a warning). Grayscale is repeated to RGB, "
                                                "RGBA loses its alpha. Any size: the binding's stock conditioning "
                                                "node resizes and center-crops it to the binding's width x height."),
                io.Int.Input("chunks", default=5, min=1, max=1000,
                             tooltip="Chunks (n). The video has about n x frames-per-chunk frames; every chunk "
                                     "costs one full sampling run plus the search."),
                io.Int.Input("candidates", default=4, min=1, max=64,
                             tooltip="Candidates per chunk (m). 1 = naive chunk-by-chunk. More: fewer bad chunks, "
                                     "m*k more model evaluations per chunk."),
                io.Int.Input("k", default=8, min=1, max=1000,
                             tooltip="Preview steps per candidate. Larger: previews closer to the final chunk "
                                     "(better choices), more cost. The paper uses 8 of 50."),
                io.Combo.Input("preview_mode", options=MODES, default="short schedule",
                               tooltip="short schedule: a complete k-step run per candidate (the paper). truncated: "
                                       "the first k steps of the real schedule; the winner resumes at step k."),
                io.Int.Input("seed", default=0, min=0, max=SEED_MODULUS - 1, control_after_generate=True,
                             tooltip="Base seed. Chunk i's candidate j uses seed + i*1000000 + j; the whole video "
                                     "reproduces from (seed, settings)."),
                io.Boolean.Input("search", default=True,
                                 tooltip="Off: the naive baseline (one noise per chunk, exactly s evaluations)."),
                io.Boolean.Input("drop_first_frame", default=True,
                                 tooltip="Drop the first frame of every chunk after the first: I2V models reproduce "
                                         "their guide frame, which would show twice at each seam."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="CLIP vision encoder for the paper's min-cosine score (e.g. clip_vision_h)."),
                SCORER.Input("scorer", optional=True, tooltip="A chunkwise verifier; takes precedence over clip_vision."),
                io.String.Input("run_name", default="", optional=True,
                                tooltip="Empty: everything stays in memory (nothing on disk, nothing to resume). "
                                        "A name: every finished chunk is written at once to output/chunkwise/"
                                        "<run_name>/ (PNG frames, state.json, report.json), so a crash or Cancel "
                                        "loses at most the chunk in progress; queue again to resume. Costs disk "
                                        "space and PNG writing time. One folder name: no '/', '\\' or '..'. "
                                        "To resume, keep every setting and set the seed widget to 'fixed'."),
                SEARCH_OPTIONS.Input("options", optional=True,
                                     tooltip="A Search Options node: what the run returns, what it does with an "
                                             "existing run folder, colour anchoring and the cost options of the "
                                             "search. Unconnected: the defaults (the paper's search, all frames)."),
            ],
            outputs=[
                io.Image.Output("video", tooltip="All frames of all chunks, ready for a video-combine/save node."),
                io.String.Output("report", tooltip="The search report (JSON, format chunkwise.report/1)."),
                io.Image.Output("score_plot", tooltip="Every candidate's score per chunk; the winners in red."),
                io.String.Output("run_folder", tooltip="The run folder's path (empty without a run_name)."),
                io.Image.Output("overview", tooltip=f"Each chunk's last frame, longer side at most {OVERVIEW_SIZE} "
                                                    "pixels: a small overview of a long run."),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
        )

    @classmethod
    def validate_inputs(cls, chunks=None, candidates=None, k=None, preview_mode=None, seed=None, search=None,
                        run_name=None):
        problem = widget_problem(cls, chunks=chunks, candidates=candidates, k=k, preview_mode=preview_mode, seed=seed)
        if problem:
            return problem
        if run_name:
            try:
                check_run_name(run_name)
            except ChunkwiseError as e:
                return str(e)
        if None in (chunks, candidates, k, preview_mode, seed, search):
            return True  # a linked value: checked when the node runs
        # The options arrive through a link and the steps through the I2V link, so neither is known
        # here: the default options, and k + 1 standing in for the steps (the rules that need the
        # real ones run in execute).
        try:
            loop_settings(chunks, candidates, k, preview_mode, seed, search, True, LoopOptions(), k + 1).validate()
        except ChunkwiseError as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, i2v, image, chunks, candidates, k, preview_mode, seed, search, drop_first_frame,
                clip_vision=None, scorer=None, run_name="", options: Optional[LoopOptions] = None,
                **legacy) -> io.NodeOutput:
        # 1. Settings and inputs, checked before any model work. ``legacy``: options given as ChunkLoop's
        #    own inputs (a workflow saved before they moved to Search Options), as keywords or in the prompt.
        options = migrate_legacy_inputs(options, legacy_prompt_inputs(getattr(cls, "hidden", None)) | legacy)
        settings = loop_settings(chunks, candidates, k, preview_mode, seed, search, drop_first_frame, options,
                                 binding_steps(i2v)).validate()
        image = as_one_rgb_image(image)
        verifier = resolve_scorer(clip_vision, scorer, needed=settings.search.searching)
        node_id = getattr(getattr(cls, "hidden", None), "unique_id", None)

        # 2. Where the frames go: a run folder (streamed, resumable) or memory.
        if run_name:
            sink = DiskSink(runs_directory(), run_name, on_existing=options.on_existing, overview_size=OVERVIEW_SIZE)
            fingerprint = binding_fingerprint(i2v)
            if verifier is not None:
                fingerprint["scorer_weights"] = scorer_fingerprint(verifier)
        else:
            sink, fingerprint = MemorySink(keep=options.keep_frames, overview_size=OVERVIEW_SIZE), None
        hooks = comfy_hooks(settings.chunks * settings.search.nfe_per_chunk(), node_id=node_id)

        # 3. The loop, with progress and Cancel between candidates and chunks; finished chunks stay on disk.
        result = run_chunks(i2v, verifier, image, settings, sink=sink, hooks=hooks, fingerprint=fingerprint)
        comfy.model_management.soft_empty_cache()

        # 4. Outputs: the frames asked for, the report, the plot, the folder, the overview; the summary and
        #    the report JSON in the UI (API clients read them from /history).
        report = result.report
        text = summarize(report)
        if result.restored:
            text += f"\n(resumed: chunks 0..{result.restored - 1} read back from {sink.folder})"
        log.info("%s", text)
        video = sink.video() if options.keep_frames == "all" else sink.last_chunk()
        folder = str(sink.folder) if run_name else ""
        ui = {"text": [text], "report": [json.dumps(report)], "run_folder": [folder]}
        return io.NodeOutput(video, dumps(report), score_plot(report), folder, sink.overview(), ui=ui)


LOOP_NODES = [ChunkLoop, SearchOptions]
