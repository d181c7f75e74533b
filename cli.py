"""The ``chunkwise`` command line: long videos from a local diffusers I2V folder.

::

    chunkwise generate --model DIR --image IMG --chunks 5 --candidates 4 --k 8 --steps 25 --seed 0 --out video.mp4
    chunkwise generate ... --workers 2 --run runs/beach   # candidates over 2 Ray workers, a resumable run folder
    chunkwise batch jobs.jsonl --output runs --workers 8     # many videos over a Ray cluster
    chunkwise report video.report.json
    chunkwise verify ComfyUI/output/chunkwise/<run_name>

``generate`` loads the pipeline (``StableVideoDiffusionPipeline``,
``CogVideoXImageToVideoPipeline``, ``WanImageToVideoPipeline``, ``LTXImageToVideoPipeline``,
``HunyuanVideo15ImageToVideoPipeline`` or ``Kandinsky5I2VPipeline``) with
``local_files_only``, runs the k-step noise search chunk by chunk, streams each
finished chunk into the video file (PyAV; without it, a folder of PNG frames)
and writes the search report next to the video (``<name>.report.json``).
``--run DIR`` streams the chunks into a resumable run folder instead (the same
command continues it) and encodes the video from it at the end; ``--workers N``
or ``--ray-address ADDR`` spreads each chunk's candidates over the workers of a
Ray cluster (``chunkwise.scale``, ``pip install "chunkwise[ray]"``). ``batch``
runs a JSON-lines file of jobs over a cluster, one run folder each
(``chunkwise.scale.batch``). ``report`` prints a readable summary of a report. ``verify`` checks a run
folder's chunks against the hashes recorded when they were written and says how
to regenerate damaged ones (exit status 1 when any is damaged or missing).

The command line composes the engine (``search``), its diffusers hosts and the
scorers, so it lives beside them at the top of the pack, not inside ``search``.

Errors name what was received, what was expected and the fix; they exit with
status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from tqdm import tqdm

from .search.engine import Hooks, LoopSettings, SearchSettings, run_chunks
from .search.errors import ChunkwiseError, InterruptedRun
from .search.images import to_pil, to_uint8
from .search.report import REPORT_FORMAT, chunk_line, dumps, summarize

log = logging.getLogger("chunkwise")

VIDEO_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".webm": "libvpx-vp9"}
"""Video file suffix -> PyAV encoder; any other ``--out`` is a folder of PNG frames."""

SCORERS = ("clip-pipeline", "clip-openclip", "clip-transformers", "flicker")
SCORER_HELP = (
    "clip-pipeline: the paper's CLIP min-cosine with the pipeline's own CLIP image encoder (SVD, Wan 2.1; HunyuanVideo 1.5's SigLIP); "
    "clip-openclip: an open_clip model (--clip-model, --clip-weights FILE); "
    "clip-transformers: a transformers CLIP folder (--clip-weights DIR); "
    "flicker: VBench temporal flickering, no weights"
)


# ---------------------------------------------------------------------------- frame sinks


class VideoFileSink:
    """Encodes each chunk into a video file as soon as it arrives (PyAV); holds no frames."""

    def __init__(self, path: Path, fps: float, codec: str) -> None:
        import av

        self.path = Path(path)
        self.fps = fps
        self.codec = codec
        self.frames = 0
        self._av = av
        self._container = av.open(str(self.path), mode="w")
        self._stream = None
        self._size = None

    def _open_stream(self, height: int, width: int) -> None:
        from fractions import Fraction

        codec = self.codec
        if codec not in self._av.codecs_available:
            log.warning("chunkwise: encoder %s is not in this PyAV build; using mpeg4", codec)
            codec = "mpeg4"
        stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        # yuv420p (what players expect) needs even sizes: odd sizes gain one replicated row/column.
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}
        self._stream = stream
        self._size = (height, width)

    def write_chunk(self, index: int, frames: torch.Tensor, **_extra) -> None:
        import numpy as np

        if self._stream is None:
            self._open_stream(int(frames.shape[1]), int(frames.shape[2]))
        if tuple(frames.shape[1:3]) != self._size:
            raise ChunkwiseError(
                f"chunk {index} has frames of {list(frames.shape[1:3])}, the video {list(self._size)}; "
                "every chunk of a video must have the same size"
            )
        array = to_uint8(frames)
        h, w = self._size
        if h % 2 or w % 2:
            array = np.pad(array, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for frame in array:
            video_frame = self._av.VideoFrame.from_ndarray(frame, format="rgb24")
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        self.frames += array.shape[0]

    def close(self) -> None:
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()
        self._container = None


class PngFolderSink:
    """Writes each chunk's frames as ``frame_000000.png`` ... into a folder as soon as it arrives."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder)
        self.path.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write_chunk(self, index: int, frames: torch.Tensor, **_extra) -> None:
        for frame in frames:
            to_pil(frame).save(self.path / f"frame_{self.frames:06d}.png", compress_level=1)
            self.frames += 1

    def close(self) -> None:
        pass


def open_sink(out: Path, fps: float):
    """A video file for a known suffix when PyAV is installed, else a PNG folder (with a note why)."""
    codec = VIDEO_CODECS.get(out.suffix.lower())
    if codec is None:
        if out.suffix:
            raise ChunkwiseError(
                f"--out {str(out)!r} has the suffix {out.suffix!r}; expected a video file "
                f"({', '.join(sorted(VIDEO_CODECS))}) or a folder name without a suffix for PNG frames"
            )
        return PngFolderSink(out)
    try:
        import av  # noqa: F401
    except ImportError:
        folder = out.with_name(out.stem + "_frames")
        log.warning(
            "chunkwise: PyAV is not installed, so %s cannot be encoded; writing PNG frames to %s instead "
            "(pip install av for video files)", out, folder,
        )
        return PngFolderSink(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    return VideoFileSink(out, fps, codec)


# ---------------------------------------------------------------------------- progress


class Progress:
    """One tqdm progress bar over every sampler step of the run, with notes above it; nothing when ``quiet``."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None if quiet else tqdm(total=1, unit="step", desc="chunkwise", file=self.stream,
                                           dynamic_ncols=True)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- inputs


def load_image(path: str) -> torch.Tensor:
    """An image file -> one frame ``[1, H, W, 3]`` float in 0..1."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if not p.is_file():
        raise ChunkwiseError(f"--image {str(p)!r} does not exist or is not a file; pass the first frame as PNG/JPEG")
    try:
        with Image.open(p) as im:
            array = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ChunkwiseError(f"--image {str(p)!r} is not an image PIL can read ({exc}); pass a PNG or JPEG") from exc
    return torch.from_numpy(array.copy()).unsqueeze(0)


TEXT_TENSORS = {
    "ltx": ("prompt_embeds", "negative_prompt_embeds", "prompt_attention_mask", "negative_prompt_attention_mask"),
    "hunyuan15": ("prompt_embeds", "negative_prompt_embeds", "prompt_embeds_mask", "prompt_embeds_2",
                  "prompt_embeds_mask_2", "negative_prompt_embeds_mask", "negative_prompt_embeds_2",
                  "negative_prompt_embeds_mask_2"),
    "kandinsky5": ("prompt_embeds_qwen", "negative_prompt_embeds_qwen", "prompt_embeds_clip",
                   "negative_prompt_embeds_clip"),
}
"""Tensors a family reads from ``--prompt-embeds`` (the diffusers pipeline's argument names; the first is required)
where they are not ``prompt_embeds`` and ``negative_prompt_embeds``: LTX-Video's attention masks, HunyuanVideo 1.5's
masks and ByT5 glyph embeddings, Kandinsky 5's Qwen2.5-VL and CLIP embeddings."""


def load_prompt_embeds(path: str, family: str = "") -> dict:
    """``--prompt-embeds FILE``: a safetensors file with ``prompt_embeds`` (and ``negative_prompt_embeds``), or the
    family's tensors of :data:`TEXT_TENSORS`."""
    from safetensors.torch import load_file

    p = Path(path).expanduser()
    if not p.is_file():
        raise ChunkwiseError(f"--prompt-embeds {str(p)!r} does not exist; pass a .safetensors file")
    tensors = load_file(str(p))
    names = TEXT_TENSORS.get(family, ("prompt_embeds", "negative_prompt_embeds"))
    if names[0] not in tensors:
        raise ChunkwiseError(
            f"--prompt-embeds {str(p)!r} holds {sorted(tensors)}; expected {names[0]!r} "
            f"(and {names[1]!r} for guidance{', ' + ', '.join(map(repr, names[2:])) if names[2:] else ''})"
        )
    return {k: tensors[k] for k in names if k in tensors}


def family_options(family: str, args: argparse.Namespace) -> dict:
    """Command-line settings -> keyword arguments of the family's denoiser (only those given)."""
    opts: dict = {}
    for name, key in (("width", "width"), ("height", "height"), ("frames", "num_frames"), ("fps", "fps")):
        value = getattr(args, name)
        if value is not None:
            opts[key] = value
    text_given = args.prompt is not None or args.negative_prompt is not None or args.prompt_embeds is not None
    if family == "svd":
        if text_given:
            raise ChunkwiseError(
                "--prompt/--negative-prompt/--prompt-embeds were given, but Stable Video Diffusion takes no text; "
                "leave them out (they are for the text-conditioned families: CogVideoX, Wan, LTX-Video, HunyuanVideo 1.5, Kandinsky 5)"
            )
        if args.guidance is not None:
            opts["max_guidance_scale"] = args.guidance
        if args.motion_bucket_id is not None:
            opts["motion_bucket_id"] = args.motion_bucket_id
        if args.noise_aug_strength is not None:
            opts["noise_aug_strength"] = args.noise_aug_strength
        if args.decode_chunk_size is not None:
            opts["decode_chunk_size"] = args.decode_chunk_size
        return opts
    if args.motion_bucket_id is not None or args.noise_aug_strength is not None:
        raise ChunkwiseError(
            f"--motion-bucket-id/--noise-aug-strength are Stable Video Diffusion settings, but the model is {family}; "
            "leave them out"
        )
    if args.guidance is not None:
        opts["guidance_scale"] = args.guidance
    if args.prompt is not None:
        opts["prompt"] = args.prompt
    if args.negative_prompt is not None:
        opts["negative_prompt"] = args.negative_prompt
    if args.prompt_embeds is not None:
        opts.update(load_prompt_embeds(args.prompt_embeds, family))
    return opts


# ---------------------------------------------------------------------------- scorers


def pipeline_clip_encoder(pipe, device=None):
    """The pipeline's own CLIP image encoder as a scorer encoder (SVD, Wan 2.1).

    Frames are resized (squashed, bicubic, antialiased) to the encoder's input
    size and normalised with the pipeline's processor mean/std, as SVD's own
    image conditioning does; the embedding is ``image_embeds`` (projection) or
    the pooled output.
    """
    from .scorers import CallableEncoder
    from .scorers.encoders import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    encoder = getattr(pipe, "image_encoder", None)
    if encoder is None:
        raise ChunkwiseError(
            f"--scorer clip-pipeline needs a pipeline with a CLIP image encoder, but {type(pipe).__name__} has none "
            "(CogVideoX, Wan 2.2, LTX-Video and Kandinsky 5 have none); use --scorer clip-openclip --clip-model ViT-L-14 "
            "--clip-weights FILE, "
            "or clip-transformers --clip-weights DIR"
        )
    processor = getattr(pipe, "feature_extractor", None) or getattr(pipe, "image_processor", None)
    mean = torch.tensor(getattr(processor, "image_mean", None) or OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(getattr(processor, "image_std", None) or OPENAI_CLIP_STD).view(1, 3, 1, 1)
    size = int(encoder.config.image_size)

    def embed(batch: torch.Tensor) -> torch.Tensor:
        param = next(encoder.parameters())
        x = batch.movedim(-1, 1).float().clamp(0, 1)
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False,
                                            antialias=True).clamp(0, 1)
        x = ((x - mean) / std).to(param.device, param.dtype)
        out = encoder(pixel_values=x)
        emb = getattr(out, "image_embeds", None)
        return emb if emb is not None else out.pooler_output

    return CallableEncoder(embed, name=f"pipeline {type(encoder).__name__}")


def build_scorer(args: argparse.Namespace, pipe, device=None):
    from .scorers import ClipMinCosine, OpenClipEncoder, TemporalFlicker, TransformersEncoder

    name = args.scorer
    if name == "flicker":
        return TemporalFlicker()
    if name == "clip-pipeline":
        encoder = pipeline_clip_encoder(pipe, device)
    elif name == "clip-openclip":
        if args.clip_weights is None:
            raise ChunkwiseError(
                "--scorer clip-openclip needs --clip-weights FILE (an open_clip checkpoint, e.g. "
                "open_clip_model.safetensors of ViT-L-14); random weights would make the scores meaningless"
            )
        encoder = OpenClipEncoder(args.clip_model, args.clip_weights, device=device,
                                  pretrained_tag=getattr(args, "clip_pretrained_tag", None) or None)
    elif name == "clip-transformers":
        if args.clip_weights is None:
            raise ChunkwiseError(
                "--scorer clip-transformers needs --clip-weights DIR, a local transformers CLIP folder "
                "(config.json, model.safetensors, preprocessor_config.json)"
            )
        encoder = TransformersEncoder(args.clip_weights, device=device)
    else:  # argparse restricts the choices
        raise ChunkwiseError(f"unknown scorer {name!r}; expected one of {SCORERS}")
    return ClipMinCosine(encoder, anchor_weight=args.anchor_weight, frame_stride=args.frame_stride)


# ---------------------------------------------------------------------------- commands


def report_path(out: Path, given: Optional[str]) -> Path:
    if given:
        return Path(given).expanduser()
    return out.with_name((out.stem if out.suffix else out.name) + ".report.json")


def generate_settings(args: argparse.Namespace) -> LoopSettings:
    """The run's settings from ``generate``'s flags, validated."""
    return LoopSettings(
        chunks=args.chunks,
        seed=args.seed,
        drop_first_frame=not args.keep_first_frame,
        search=SearchSettings(candidates=args.candidates, k=args.k, steps=args.steps, preview_mode=args.preview_mode,
                              resume=not args.no_resume, enabled=not args.no_search,
                              candidate_batch=args.candidate_batch, accept_score=args.accept_score,
                              halving_k=args.halving_k),
    ).validate()


def load_parts(args: argparse.Namespace):
    """``(denoiser, scorer)`` of ``generate``'s flags: the pipeline, and the scorer when searching."""
    from .search.hosts import PIPELINE_FAMILIES, load_denoiser, pipeline_class_name

    settings = generate_settings(args)
    options = family_options(PIPELINE_FAMILIES[pipeline_class_name(args.model)], args)
    denoiser = load_denoiser(args.model, device=args.device, dtype=args.dtype, offload=args.offload, seed=args.seed,
                             **options)
    scorer = build_scorer(args, denoiser.pipe, denoiser.device) if settings.search.searching else None
    return denoiser, scorer


@dataclass(frozen=True)
class GenerateParts:
    """What a worker of a cluster builds from ``generate``'s flags (picklable; equal flags, equal parts)."""

    argv: tuple

    def __call__(self):
        return load_parts(build_parser().parse_args(["generate", *self.argv]))


def open_run_sink(run: str):
    """``--run DIR``: the run folder DIR (resumed when it holds the same run) as the sink."""
    from .search.sinks import DiskSink

    folder = Path(run).expanduser()
    return DiskSink(folder.parent, folder.name)


def encode_run(sink, out: Path, fps: float):
    """The video file (or PNG folder) ``out`` made from every chunk of a run folder, one chunk at a time."""
    video = open_sink(out, fps)
    try:
        for i in range(len(sink.records())):
            video.write_chunk(i, sink.chunk_frames(i))
    finally:
        video.close()
    return video


def cmd_generate(args: argparse.Namespace) -> int:
    from .search.hosts import PIPELINE_FAMILIES, check_device, pipeline_class_name

    # 1. Check every setting and file before loading the model.
    settings = generate_settings(args)
    image = load_image(args.image)
    out = Path(args.out).expanduser()
    family = PIPELINE_FAMILIES[pipeline_class_name(args.model)]
    family_options(family, args)
    spread = args.workers is not None or args.ray_address is not None
    if not spread:
        check_device(args.device)  # a --device this machine lacks fails here, not after loading the weights

    # 2. The model and the scorer (only when searching): here, or once on every worker of a cluster.
    progress = Progress(quiet=args.quiet)
    denoiser = scorer = executor = pool = None
    try:
        if spread:
            from .scale.workers import RayExecutor, WorkerPool

            progress.note(f"chunkwise: loading {args.model} ({family}) on the workers")
            pool = WorkerPool(GenerateParts(tuple(args.argv)), workers=args.workers, address=args.ray_address)
            executor = RayExecutor(pool)
            fps, described = (args.fps if args.fps is not None else executor.fps), executor.describe()
            workers = len(pool)
            progress.note(f"chunkwise: {workers} workers")
        else:
            progress.note(f"chunkwise: loading {args.model} ({family})")
            denoiser, scorer = load_parts(args)
            fps, described = (args.fps if args.fps is not None else denoiser.fps), denoiser.describe()

        # 3. The run: chunks stream into the video (or the run folder) as they finish.
        sink = open_run_sink(args.run) if args.run else open_sink(out, fps)
        hooks = Hooks(on_progress=progress.update, on_chunk=lambda record, _frames: progress.note(chunk_line(record)))
        try:
            result = run_chunks(denoiser, scorer, image, settings, sink=sink, hooks=hooks, executor=executor)
        except KeyboardInterrupt as exc:
            where = sink.folder if args.run else sink.path
            raise InterruptedRun(f"interrupted; the chunks finished so far are in {where}") from exc
        finally:
            sink.close()
        video = encode_run(sink, out, fps) if args.run else sink
    finally:
        progress.close()
        if pool is not None:
            pool.close()

    # 4. The report next to the video.
    report = dict(result.report)
    report["run"] = {"host": "diffusers", "model": str(args.model), "pipeline": described,
                     "video": str(video.path), "fps": fps}
    if args.run:
        report["run"]["run_folder"] = str(sink.folder)
    if spread:
        report["run"]["workers"] = workers
    rpath = report_path(out, args.report)
    rpath.parent.mkdir(parents=True, exist_ok=True)
    rpath.write_text(dumps(report), encoding="utf-8")
    progress.note(summarize(report))
    progress.note(f"chunkwise: wrote {video.frames} frames to {video.path} and the report to {rpath}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .scale.batch import run_batch

    return run_batch(args.jobs, args.output, workers=args.workers, address=args.ray_address, retries=args.retries,
                     quiet=args.quiet)


def read_report(path: str) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ChunkwiseError(f"report {str(p)!r} does not exist; pass the .report.json written by chunkwise generate")
    try:
        report = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChunkwiseError(f"cannot read the report {str(p)!r}: {exc}; expected a {REPORT_FORMAT} JSON file") from exc
    got = report.get("format") if isinstance(report, dict) else type(report).__name__
    if got != REPORT_FORMAT:
        raise ChunkwiseError(f"{str(p)!r} has format {got!r}, expected {REPORT_FORMAT!r}; pass a chunkwise report")
    return report


def cmd_report(args: argparse.Namespace) -> int:
    print(summarize(read_report(args.report)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .search.runs import verify_run

    check = verify_run(args.run_folder)
    print(json.dumps(check.to_json(), indent=2) if args.json else check.text())
    return 0 if check.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chunkwise",
        description="Long videos from short image-to-video models, chunk by chunk, with k-step noise search.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{generate,batch,report,verify,evaluate}")

    g = sub.add_parser("generate", help="generate a long video from one image with a local diffusers I2V model",
                       description="Generate a long video chunk by chunk from a local diffusers image-to-video folder "
                                   "(SVD, CogVideoX-I2V, Wan-I2V, LTX-Video, HunyuanVideo 1.5, Kandinsky 5). Cost per chunk: m*k + s model evaluations.")
    g.add_argument("--model", required=True, help="local diffusers folder with model_index.json")
    g.add_argument("--image", required=True, help="the first frame (PNG/JPEG)")
    g.add_argument("--out", required=True,
                   help="video file (.mp4, .mkv, .mov, .webm) or a folder name without suffix for PNG frames")
    g.add_argument("--report", help="report path (default: next to --out, <name>.report.json)")
    g.add_argument("--chunks", type=int, default=5, help="number of chunks n (default 5)")
    g.add_argument("--candidates", "-m", type=int, default=4, help="candidate noises per chunk m (default 4)")
    g.add_argument("--k", type=int, default=8, help="preview steps per candidate (default 8)")
    g.add_argument("--steps", type=int, default=25, help="full denoising steps s (default 25)")
    g.add_argument("--seed", type=int, default=0, help="base seed; chunk i candidate j uses seed + i*1000000 + j")
    g.add_argument("--preview-mode", choices=("short", "truncated"), default="short",
                   help="short: a complete k-step run per candidate (the paper); truncated: the first k steps of the "
                        "real schedule, and the winner resumes at step k (m*k + s - k evaluations)")
    g.add_argument("--no-resume", action="store_true", help="truncated mode: denoise the winner from scratch")
    g.add_argument("--no-search", action="store_true", help="the naive baseline: one noise per chunk, s steps")
    g.add_argument("--candidate-batch", type=int, default=1,
                   help="candidates sampled in one batched model call (default 1; halved on out-of-memory)")
    g.add_argument("--accept-score", type=float, default=None,
                   help="early accept: stop drawing candidates once one scores at least this (default off)")
    g.add_argument("--halving-k", type=int, default=0,
                   help="successive halving: preview all m with this many steps, extend the better half up to k "
                        "(default 0 = off)")
    g.add_argument("--keep-first-frame", action="store_true",
                   help="keep every chunk's first frame (a copy of its guide); dropped by default")
    g.add_argument("--scorer", choices=SCORERS, default="clip-pipeline", help=SCORER_HELP)
    g.add_argument("--clip-model", default="ViT-L-14", help="open_clip model name or config .json (clip-openclip)")
    g.add_argument("--clip-weights", help="open_clip weights file (clip-openclip) or transformers folder "
                                          "(clip-transformers)")
    g.add_argument("--clip-pretrained-tag",
                   help="clip-openclip: the weights' open_clip pretrained tag (e.g. openai, laion2b_s32b_b82k), "
                        "which sets their preprocessing; default: open_clip_config.json beside the weights, if any")
    g.add_argument("--anchor-weight", type=float, default=0.0,
                   help="weight of the original image next to the guide in the CLIP score (0 = the paper)")
    g.add_argument("--frame-stride", type=int, default=1, help="score every n-th preview frame (1 = all)")
    g.add_argument("--width", type=int, help="frame width (default: the model's own)")
    g.add_argument("--height", type=int, help="frame height (default: the model's own)")
    g.add_argument("--frames", type=int, help="frames per chunk (default: the model's own)")
    g.add_argument("--fps", type=int, help="frame rate (conditioning for SVD, and of the video file)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale (SVD: the maximum)")
    g.add_argument("--prompt", help="text prompt (all but SVD)")
    g.add_argument("--negative-prompt", help="negative prompt (the text-conditioned families)")
    g.add_argument("--prompt-embeds", help="safetensors file with prompt_embeds / negative_prompt_embeds (LTX-Video: "
                                            "and their attention masks; HunyuanVideo 1.5: and its masks and "
                                            "prompt_embeds_2 tensors; Kandinsky 5: prompt_embeds_qwen/_clip and "
                                            "their negative_ twins; the pipeline's argument names)")
    g.add_argument("--motion-bucket-id", type=int, help="SVD: amount of motion (default 127)")
    g.add_argument("--noise-aug-strength", type=float, help="SVD: noise added to the guide (default 0.02)")
    g.add_argument("--decode-chunk-size", type=int, help="SVD: frames decoded at once (lower: less memory)")
    g.add_argument("--device", help="torch device (default: the first accelerator, else cpu)")
    g.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                   help="weights dtype (auto: the family's published dtype on an accelerator, fp32 on cpu)")
    g.add_argument("--offload", action="store_true", help="diffusers model CPU offload (needs accelerate)")
    g.add_argument("--run", metavar="DIR",
                   help="stream the chunks into the run folder DIR (resumable: the same command continues it from its "
                        "last finished chunk); --out is encoded from it at the end")
    g.add_argument("--workers", type=int, metavar="N",
                   help="spread each chunk's candidates over N workers of a local Ray cluster (one GPU each, else one "
                        "CPU slot each); needs pip install \"chunkwise[ray]\"")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join the Ray cluster at ADDR (e.g. 10.0.0.1:6379, or auto) instead of starting one; with "
                        "--workers N use N of its workers (default: one per GPU, else per CPU)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("report", help="print a readable summary of a search report",
                       description="Print a readable per-chunk summary of a chunkwise report JSON.")
    r.add_argument("report", help="the .report.json written by chunkwise generate (or ChunkLoop's report)")
    r.set_defaults(func=cmd_report)

    v = sub.add_parser("verify", help="check a run folder's chunks against the hashes recorded when they were written",
                       description="Check every chunk of a run folder against the hashes recorded when it was "
                                   "written; name damaged or missing chunks and say how to regenerate them. Exit "
                                   "status 0: intact, 1: damaged, 2: not a run folder.")
    v.add_argument("run_folder", help="a run folder, e.g. ComfyUI/output/chunkwise/<run_name>")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("batch", help="run many videos (a JSON-lines job file) over the workers of a Ray cluster",
                       description="Run every job of a JSON-lines file over the workers of a Ray cluster, each into "
                                   "its own run folder, with a progress table; a failed job is retried and resumes "
                                   "from its finished chunks, and a second run over the same file finishes what is "
                                   "left and redoes nothing. A job line: {\"run\": NAME, \"model\": DIR, \"image\": "
                                   "FILE, \"settings\": {generate's flags, e.g. \"chunks\": 5, \"candidates\": 4}}.")
    b.add_argument("jobs", help="the job file: one JSON object per line")
    b.add_argument("--output", required=True, help="the folder that holds one run folder per job")
    b.add_argument("--workers", type=int, metavar="N", help="N workers of a local Ray cluster (default 1)")
    b.add_argument("--ray-address", metavar="ADDR", help="join the Ray cluster at ADDR instead of starting one")
    b.add_argument("--retries", type=int, default=2, help="times a failed job is run again (default 2)")
    b.add_argument("--quiet", "-q", action="store_true", help="only the final table")
    b.set_defaults(func=cmd_batch)

    # Parsed by scorers/evaluation_cli.py (main() hands it the rest of the command line); listed here for --help.
    sub.add_parser("evaluate", add_help=False,
                   help="VBench's quality dimensions of a finished video or run folder, per chunk and cumulative "
                        "(chunkwise evaluate --help)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["evaluate"]:
        from .scorers.evaluation_cli import evaluate_command

        return evaluate_command(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv[1:]  # what a worker of a cluster parses again to build the same parts
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO if not getattr(args, "quiet", False) else logging.WARNING,
                            format="%(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except (ChunkwiseError, InterruptedRun, FileNotFoundError, ImportError) as exc:
        print(f"chunkwise: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
