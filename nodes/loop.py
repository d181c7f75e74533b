"""ChunkLoop: the whole long video in one node, driving an I2V binding through the engine.

It loops internally (not by graph expansion, whose per-iteration outputs stay
cached until the prompt ends), so it shows exact progress, stops cleanly on
Cancel between candidates and chunks, and holds only what the next chunk needs.
"""

from __future__ import annotations

import logging

import comfy.model_management
from comfy_api.latest import io, ui

from ..search.engine import LoopSettings, SearchSettings, run_chunks
from ..search.errors import ChunkwiseError
from ..search.noise import SEED_MODULUS
from ..search.report import dumps, summarize
from .chunk_nodes import MODES
from .plot import score_plot
from .plumbing import comfy_hooks, resolve_scorer
from .types import I2V, SCORER

log = logging.getLogger("chunkwise")

MODE_TO_ENGINE = {"short schedule": "short", "truncated": "truncated"}


def binding_steps(i2v) -> int:
    steps = getattr(i2v, "steps", None)
    if not isinstance(steps, int) or steps < 1:
        raise ChunkwiseError(
            f"the I2V input has no usable 'steps' (got {steps!r}); connect an I2V Model node "
            "(ChunkwiseI2VSVD, ChunkwiseI2VWan or ChunkwiseDiffusersI2V)"
        )
    return steps


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
                        "Cost per chunk: m*k + s model evaluations (m*k + s - k when truncated previews resume).",
            inputs=[
                I2V.Input("i2v", tooltip="An I2V Model node: the model bound to its conditioning and sampler settings."),
                io.Image.Input("image", tooltip="The first frame of the video (one image)."),
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
            ],
            outputs=[
                io.Image.Output("video", tooltip="All frames of all chunks, ready for a video-combine/save node."),
                io.String.Output("report", tooltip="The search report (JSON, format chunkwise.report/1)."),
                io.Image.Output("score_plot", tooltip="Every candidate's score per chunk; the winners in red."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, chunks=None, candidates=None, k=None):
        for name, value in (("chunks", chunks), ("candidates", candidates), ("k", k)):
            if value is not None and value < 1:
                return f"{name} must be at least 1, got {value}"
        return True

    @classmethod
    def execute(cls, i2v, image, chunks, candidates, k, preview_mode, seed, search, drop_first_frame,
                clip_vision=None, scorer=None) -> io.NodeOutput:
        # 1. Settings, checked before any model work.
        steps = binding_steps(i2v)
        settings = LoopSettings(
            chunks=chunks,
            seed=seed,
            drop_first_frame=drop_first_frame,
            search=SearchSettings(
                candidates=candidates, k=k, steps=steps, preview_mode=MODE_TO_ENGINE[preview_mode], enabled=search
            ),
        ).validate()
        verifier = resolve_scorer(clip_vision, scorer, needed=settings.search.searching)
        node_id = getattr(getattr(cls, "hidden", None), "unique_id", None)
        hooks = comfy_hooks(settings.chunks * settings.search.nfe_per_chunk(), node_id=node_id)

        # 2. The loop, with progress and Cancel between candidates and chunks.
        result = run_chunks(i2v, verifier, image, settings, hooks=hooks)
        comfy.model_management.soft_empty_cache()

        # 3. Outputs: the video, the report, the plot, and a readable summary in the UI.
        report = result.report
        text = summarize(report)
        log.info("%s", text)
        return io.NodeOutput(result.video(), dumps(report), score_plot(report), ui=ui.PreviewText(text))


LOOP_NODES = [ChunkLoop]
