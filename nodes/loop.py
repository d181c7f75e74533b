"""ChunkLoop: the whole long video in one node, driving an I2V binding through the engine.

It loops internally (not by graph expansion, whose per-iteration outputs stay
cached until the prompt ends), so it shows exact progress, stops cleanly on
Cancel between candidates and chunks, and holds only what the next chunk needs.


Long runs lose nothing: with a ``run_name`` every finished chunk is streamed to
``<output>/chunkwise/<run_name>/`` (PNG frames, the exact float guide frame and
an atomic ``state.json``, see ``search/sinks.py``); queueing the same run again
skips the finished chunks and gives a bit-identical video.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import comfy.model_management
import folder_paths
import torch
from comfy_api.latest import io

from ..search.colour import COLOUR_METHODS
from ..search.engine import LoopSettings, SearchSettings, run_chunks
from ..search.errors import ChunkwiseError
from ..search.noise import SEED_MODULUS
from ..search.protocols import MemorySink
from ..search.report import dumps, summarize
from ..search.sinks import DiskSink, check_run_name
from .chunk_nodes import MODES
from .plot import score_plot
from .plumbing import comfy_hooks, resolve_scorer, widget_problem
from .types import I2V, SCORER

log = logging.getLogger("chunkwise")

MODE_TO_ENGINE = {"short schedule": "short", "truncated": "truncated"}
RETURN_FRAMES = ["all frames", "last chunk + overview"]
ON_EXISTING = {"resume": "resume", "new run": "new", "error": "error"}
PREVIEW_DECODE = {"full VAE": "vae", "approximate (latent to RGB)": "approx"}
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


SAMPLE_VALUES = 64
"""Values read from the start of every weight tensor for a fingerprint (cheap even for 14B models)."""


def _digest_options(patcher, h) -> None:
    """What a ModelPatcher changes besides weights: its sampling schedule (ModelSamplingSD3's shift,
    ModelSamplingDiscrete ...), object patches and model options (cfg functions such as
    VideoLinearCFGGuidance, with the numbers their closures hold)."""
    get = getattr(patcher, "get_model_object", None)
    if callable(get):
        try:
            sampling = get("model_sampling")
        except Exception:  # noqa: BLE001 - a model without a schedule has nothing to add
            sampling = None
        sigmas = getattr(sampling, "sigmas", None)
        if isinstance(sigmas, torch.Tensor):
            h.update(f"{type(sampling).__name__}".encode())
            h.update(sigmas.detach().to("cpu", torch.float64).numpy().tobytes())
    for key in sorted(getattr(patcher, "object_patches", {}) or {}):
        h.update(f"object:{key}:{type(patcher.object_patches[key]).__name__}".encode())

    def describe(value, depth=0) -> str:
        if callable(value):
            cells = [c.cell_contents for c in (getattr(value, "__closure__", None) or ())
                     if isinstance(getattr(c, "cell_contents", None), (int, float, str, bool))]
            return f"{getattr(value, '__qualname__', type(value).__name__)}{cells}"
        if isinstance(value, dict) and depth < 3:
            return "{" + ",".join(f"{k}:{describe(v, depth + 1)}" for k, v in sorted(value.items(), key=str)) + "}"
        if isinstance(value, (list, tuple)) and depth < 3:
            return "[" + ",".join(describe(v, depth + 1) for v in value) + "]"
        if isinstance(value, (int, float, str, bool)) or value is None:
            return repr(value)
        return type(value).__name__

    options = getattr(patcher, "model_options", None)
    if isinstance(options, dict):
        h.update(describe(options).encode())


def _digest_module(obj, h) -> bool:
    """Feed a model's identity into ``h``: every weight's name, shape, dtype and first values.

    For a ComfyUI ModelPatcher the original weight is read where a patch (a LoRA) has
    replaced it in place, so the digest does not depend on whether the model happens
    to be loaded; the patches enter through their keys and strengths instead, and the
    patcher's schedule, object patches and model options through :func:`_digest_options`.
    """
    backup = getattr(obj, "backup", None)
    backup = backup if isinstance(backup, dict) else {}
    patches = getattr(obj, "patches", None)
    if isinstance(patches, dict) and patches:
        for key in sorted(patches):
            strengths = [(float(p[0]), float(p[2])) for p in patches[key] if isinstance(p, tuple) and len(p) > 2
                         and isinstance(p[0], (int, float)) and isinstance(p[2], (int, float))]
            h.update(f"{key}{strengths}".encode())
    if hasattr(obj, "model_options"):
        _digest_options(obj, h)
    for attr in ("model", "first_stage_model", "diffusion_model", "transformer", "unet"):
        inner = getattr(obj, attr, None)
        if isinstance(inner, torch.nn.Module):
            obj = inner
            break
    if not isinstance(obj, torch.nn.Module):
        return False
    params = list(obj.state_dict().items())
    h.update(f"{type(obj).__name__}|{len(params)}".encode())
    for name, t in params:
        if name in backup:
            t = backup[name].weight
        t = t.detach()
        flat = t.reshape(-1) if t.is_contiguous() else t.flatten()
        sample = flat[:SAMPLE_VALUES].to("cpu", torch.float32)
        h.update(f"{name}{list(t.shape)}{t.dtype}".encode())
        h.update(sample.numpy().tobytes())
    return True


def _modules_of(obj, depth: int = 0, seen=None) -> list:
    """Torch modules (or ComfyUI model wrappers) a scorer holds, in a stable order, to fingerprint its weights."""
    seen = seen if seen is not None else set()
    if obj is None or id(obj) in seen or depth > 3:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module) or isinstance(getattr(obj, "model", None), torch.nn.Module):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [m for item in obj for m in _modules_of(item, depth + 1, seen)]
    found = []
    for key in sorted(getattr(obj, "__dict__", {})):
        if key.startswith("_"):
            continue
        found += _modules_of(getattr(obj, key), depth + 1, seen)
    return found


def scorer_fingerprint(scorer) -> str:
    """A digest of the weights a scorer scores with (its CLIP model, a DINO model, an aesthetic head):
    another CLIP file changes every choice, so a run folder made with one must not be resumed with another."""
    h = hashlib.sha256()
    modules = _modules_of(scorer)
    for module in modules:
        _digest_module(module, h)
    return h.hexdigest()[:16] if modules else "no weights"


def binding_fingerprint(i2v) -> dict:
    """Facts about the bound model that change the frames but not its settings text: a sample of
    the model's and VAE's weights and the text conditioning. Best effort: a part that cannot be
    read is named as unknown (then only the settings protect a resumed run)."""
    out = {}
    family = getattr(i2v, "family", None)
    parts = {
        "model": getattr(i2v, "model", None),
        "model_low_noise": getattr(i2v, "model_low_noise", None),
        "vae": getattr(i2v, "vae", None),
        "clip_vision": getattr(family, "clip_vision", None),
    }
    for key, obj in parts.items():
        if obj is None:
            continue
        h = hashlib.sha256()
        try:
            out[key] = h.hexdigest()[:16] if _digest_module(obj, h) else type(obj).__name__
        except Exception as e:  # a model we cannot read must not stop the run: it only weakens the check
            log.warning("chunkwise: could not fingerprint the %s (%s); resume checks only the settings", key, e)
            out[key] = "unknown"
    for key in ("positive", "negative"):
        cond = getattr(family, key, None)
        if isinstance(cond, list):
            h = hashlib.sha256()
            for item in cond:
                if item and isinstance(item[0], torch.Tensor):
                    h.update(item[0].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            out[key] = h.hexdigest()[:16]
    return out


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
                io.Combo.Input("return_frames", options=RETURN_FRAMES, default="all frames", optional=True,
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
                                       "approximate: ComfyUI's linear latent-to-RGB factors, one frame per latent "
                                       "frame at latent resolution; almost free, but cruder, so the scorer may "
                                       "pick a different winner. The chosen chunk is always fully decoded."),
                io.Float.Input("accept_score", default=0.0, min=-10.0, max=10.0, step=0.01, optional=True,
                               tooltip="Early accept. 0: off. Otherwise candidates are previewed one after "
                                       "another and the search stops at the first whose score reaches this "
                                       "(e.g. 0.9 for CLIP min-cosine; scorers with negative scores take negative "
                                       "thresholds): saves (m - drawn) x k evaluations on easy "
                                       "chunks, but may settle for a worse candidate than the full search."),
                io.Int.Input("halving_k", default=0, min=0, max=1000, optional=True,
                             tooltip="Successive halving. 0: off. Otherwise all m candidates are previewed with "
                                     "this many steps, the better half is extended, and so on up to k steps: "
                                     "fewer evaluations than m*k, with the same winner in most chunks. Saves most "
                                     "with truncated previews; short previews restart each rung, so use a small "
                                     "value (1 or 2). Must be smaller than k; cannot be combined with accept_score."),
            ],
            outputs=[
                io.Image.Output("video", tooltip="All frames of all chunks, ready for a video-combine/save node."),
                io.String.Output("report", tooltip="The search report (JSON, format chunkwise.report/1)."),
                io.Image.Output("score_plot", tooltip="Every candidate's score per chunk; the winners in red."),
                io.String.Output("run_folder", tooltip="The run folder's path (empty without a run_name)."),
                io.Image.Output("overview", tooltip=f"Each chunk's last frame, longer side at most {OVERVIEW_SIZE} "
                                                    "pixels: a small overview of a long run."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, chunks=None, candidates=None, k=None, run_name=None, colour_anchor=None,
                        candidate_batch=None, preview_frame_stride=None, accept_score=None, halving_k=None):
        problem = widget_problem(cls, chunks=chunks, candidates=candidates, k=k, candidate_batch=candidate_batch,
                                 preview_frame_stride=preview_frame_stride, halving_k=halving_k,
                                 colour_anchor=colour_anchor, accept_score=accept_score,
                                 fixes={"colour_anchor": "use 0 for off", "accept_score": "use 0 for off"})
        if problem:
            return problem
        if halving_k and k is not None and halving_k >= k:
            return f"halving_k must be smaller than k, got halving_k={halving_k}, k={k}; use e.g. {max(1, k // 4)} or 0"
        if halving_k and accept_score:
            return "accept_score (early accept) and halving_k (successive halving) cannot be combined; set one to 0"
        if run_name:
            try:
                check_run_name(run_name)
            except ChunkwiseError as e:
                return str(e)
        return True

    @classmethod
    def execute(cls, i2v, image, chunks, candidates, k, preview_mode, seed, search, drop_first_frame,
                clip_vision=None, scorer=None, run_name="", return_frames="all frames", on_existing="resume",
                colour_anchor=0.0, colour_method="lab", candidate_batch=1, preview_frame_stride=1,
                preview_decode="full VAE", accept_score=0.0, halving_k=0) -> io.NodeOutput:
        # 1. Settings and inputs, checked before any model work.
        steps = binding_steps(i2v)
        pick = "pick one from the widget's list"
        problem = widget_problem(cls, preview_decode=preview_decode, return_frames=return_frames,
                                 on_existing=on_existing, fixes=dict.fromkeys(("preview_decode", "return_frames",
                                                                               "on_existing"), pick))
        if problem:
            raise ChunkwiseError(problem)
        settings = LoopSettings(
            chunks=chunks,
            seed=seed,
            drop_first_frame=drop_first_frame,
            colour_anchor=float(colour_anchor),
            colour_method=colour_method,
            search=SearchSettings(
                candidates=candidates, k=k, steps=steps, preview_mode=MODE_TO_ENGINE[preview_mode], enabled=search,
                candidate_batch=candidate_batch, preview_stride=preview_frame_stride,
                preview_decode=PREVIEW_DECODE[preview_decode], accept_score=float(accept_score) or None,
                halving_k=halving_k,
            ),
        ).validate()
        if settings.search.searching and k >= steps:
            raise ChunkwiseError(
                f"k (preview steps) must be smaller than the I2V model's steps, got k={k}, steps={steps}; a preview "
                f"as long as the full run costs as much as it: lower k (e.g. {max(1, steps // 6)}) or raise steps"
            )
        image = as_one_rgb_image(image)
        verifier = resolve_scorer(clip_vision, scorer, needed=settings.search.searching)
        node_id = getattr(getattr(cls, "hidden", None), "unique_id", None)

        # 2. Where the frames go: a run folder (streamed, resumable) or memory.
        if run_name:
            sink = DiskSink(runs_directory(), run_name, on_existing=ON_EXISTING[on_existing],
                            overview_size=OVERVIEW_SIZE)
            fingerprint = binding_fingerprint(i2v)
            if verifier is not None:
                fingerprint["scorer_weights"] = scorer_fingerprint(verifier)
        else:
            keep = "all" if return_frames == "all frames" else "last"
            sink, fingerprint = MemorySink(keep=keep, overview_size=OVERVIEW_SIZE), None
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
        video = sink.video() if return_frames == "all frames" else sink.last_chunk()
        folder = str(sink.folder) if run_name else ""
        ui = {"text": [text], "report": [json.dumps(report)], "run_folder": [folder]}
        return io.NodeOutput(video, dumps(report), score_plot(report), folder, sink.overview(), ui=ui)


LOOP_NODES = [ChunkLoop]
