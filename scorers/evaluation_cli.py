"""``chunkwise evaluate``: VBench's quality dimensions of a finished video, per number of chunks.

::

    chunkwise evaluate VIDEO_OR_RUN_FOLDER [--compare OTHER] --json OUT.json --plot OUT.png
        [--frames-per-chunk N] [--drop-first-frame] [--image FIRST.png]
        [--dino FILE_OR_DIR] [--clip-b32 FILE_OR_DIR] [--clip-l14 FILE_OR_DIR] [--aesthetic-head FILE]

VIDEO_OR_RUN_FOLDER (and OTHER) is a run folder (``state.json``: its chunk
layout is read from it, chunk by chunk), a folder of frame images (read chunk
by chunk), a video file (PyAV; read whole), or an earlier ``--json`` output.
With ``--compare`` the JSON is the comparison (``b`` = OTHER minus ``a`` =
VIDEO_OR_RUN_FOLDER: ``evaluate naive --compare search`` shows what the search
gains), and the two evaluations are written next to it as ``OUT.a.eval.json``
and ``OUT.b.eval.json``.

Models come only from local files (``--dino``: VBench's dino_vitbase16_pretrain.pth
or a facebook/dino-vitb16 folder; ``--clip-b32`` / ``--clip-l14``: an open_clip
checkpoint, read with ``--open-clip-tag`` (default ``openai``), or a transformers
CLIP folder; ``--aesthetic-head``: sa_0_4_vit_l_14_linear.pth). A dimension
whose model is not given or not found is left out, with the reason in the JSON
and the summary. Errors exit with status 2 and a message, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..search.errors import ChunkwiseError
from .evaluation import EVAL_FORMAT, EvalModels, chunk_sizes, dumps, evaluate_chunks, evaluate_run_folder
from .evaluation_plots import comparison_chart, evaluation_chart
from .evaluation_report import compare_evaluations, summarize_comparison, summarize_evaluation

log = logging.getLogger("chunkwise")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
OPEN_CLIP_NAMES = {"background_consistency": "ViT-B-32", "aesthetic_quality": "ViT-L-14"}


def read_image(path) -> torch.Tensor:
    """An image file -> ``[1, H, W, 3]`` float in 0..1."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    try:
        with Image.open(p) as im:
            array = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise ChunkwiseError(f"cannot read the image {str(p)!r} ({exc}); pass a PNG or JPEG file") from exc
    return torch.from_numpy(array.copy()).unsqueeze(0)


def read_video_file(path: Path) -> torch.Tensor:
    """Every frame of a video file (PyAV), ``[T, H, W, 3]`` in 0..1."""
    try:
        import av
    except ImportError as exc:
        raise ImportError(f"reading {str(path)!r} needs PyAV ({exc}); pip install av, or pass a folder of "
                          "frame images or a run folder") from exc
    import numpy as np

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(torch.from_numpy(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.float32) / 255.0))
    if not frames:
        raise ChunkwiseError(f"{str(path)!r} holds no video frames")
    return torch.stack(frames)


def load_models(args: argparse.Namespace) -> EvalModels:
    """The models named on the command line; a path that does not exist leaves its dimension out with the reason."""
    from .dino import DinoEncoder
    from .encoders import TransformersEncoder
    from .open_clip_encoder import OpenClipEncoder
    from .verifiers import load_aesthetic_head

    device = _device(args.device)
    models = EvalModels()

    def encoder(path: Optional[str], dim: str, what: str):
        if not path:
            return None
        p = Path(path).expanduser()
        if not p.exists():
            models.unavailable[dim] = f"{what} not found at {str(p)!r}: put the file there or fix the path"
            log.warning("chunkwise: %s", models.unavailable[dim])
            return None
        try:
            if dim == "subject_consistency":
                is_hf = p.is_dir() and json.loads((p / "config.json").read_text()).get("model_type") != "vit"
                cls = TransformersEncoder if is_hf else DinoEncoder
                return cls(p, device=device, batch_size=args.batch_size)
            if p.is_dir():
                return TransformersEncoder(p, device=device, batch_size=args.batch_size)
            return OpenClipEncoder(OPEN_CLIP_NAMES[dim], p, device=device, batch_size=args.batch_size,
                                   pretrained_tag=args.open_clip_tag or None)
        except ImportError as exc:
            models.unavailable[dim] = str(exc)
            log.warning("chunkwise: %s left out: %s", dim, exc)
            return None

    models.subject = encoder(args.dino, "subject_consistency", "DINO ViT-B/16 weights (dino_vitbase16_pretrain.pth)")
    models.background = encoder(args.clip_b32, "background_consistency", "CLIP ViT-B/32 weights")
    models.aesthetic = encoder(args.clip_l14, "aesthetic_quality", "CLIP ViT-L/14 weights")
    if args.aesthetic_head:
        head = Path(args.aesthetic_head).expanduser()
        if head.is_file():
            models.aesthetic_head = load_aesthetic_head(head).to(device or "cpu")
        else:
            models.unavailable["aesthetic_quality"] = (
                f"LAION aesthetic head not found at {str(head)!r}: put sa_0_4_vit_l_14_linear.pth "
                "(LAION-AI/aesthetic-predictor) there"
            )
    return models


def _device(name: Optional[str]):
    from ..search.hosts import check_device, default_device

    return check_device(name) if name else default_device()


def evaluate_path(path: str, args: argparse.Namespace, models: EvalModels, label: Optional[str]) -> dict:
    """Evaluate (or read back) one of: an evaluation JSON, a run folder, a frame folder, a video file."""
    from .evaluation import load_evaluation

    p = Path(path).expanduser()
    image = read_image(args.image) if args.image else None
    if p.is_file() and p.suffix.lower() == ".json":
        return load_evaluation(p)
    if (p / "state.json").is_file():
        return evaluate_run_folder(p, models=models, image=image, label=label)
    if not args.frames_per_chunk:
        raise ChunkwiseError(
            f"{str(p)!r} is not a run folder, so its chunk length is unknown; pass --frames-per-chunk N "
            "(the model's frames per chunk, e.g. 25 for SVD) and --drop-first-frame if ChunkLoop dropped it"
        )
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ChunkwiseError(f"{str(p)!r} holds no frame images ({', '.join(IMAGE_SUFFIXES)}) and no state.json")
        sizes = chunk_sizes(len(files), args.frames_per_chunk, args.drop_first_frame)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        chunks = (torch.cat([read_image(f) for f in files[s : s + n]]) for s, n in zip(starts, sizes, strict=True))
        source = {"kind": "frame folder", "path": str(p)}
    elif p.is_file():
        frames = read_video_file(p)
        sizes = chunk_sizes(frames.shape[0], args.frames_per_chunk, args.drop_first_frame)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        chunks = (frames[s : s + n] for s, n in zip(starts, sizes, strict=True))
        source = {"kind": "video file", "path": str(p)}
    else:
        raise ChunkwiseError(f"{str(p)!r} does not exist; pass a run folder, a frame folder, a video file or a "
                             f"{EVAL_FORMAT} JSON file")
    return evaluate_chunks(chunks, sizes, models=models, image=image, label=label or p.stem, source=source)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chunkwise evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="run folder, folder of frames, video file, or an evaluation JSON")
    p.add_argument("--compare", help="a second video/run folder/evaluation JSON (b); the JSON is then the comparison b - a")
    p.add_argument("--json", required=True, help=f"write the {EVAL_FORMAT} evaluation (or the comparison) here")
    p.add_argument("--plot", help="write the chart here (PNG)")
    p.add_argument("--label", help="name of the evaluation (default: the folder or file name)")
    p.add_argument("--compare-label", help="name of the --compare evaluation")
    p.add_argument("--frames-per-chunk", type=int, help="frames per chunk (not needed for run folders)")
    p.add_argument("--drop-first-frame", action="store_true",
                   help="later chunks have one frame fewer (ChunkLoop's drop_first_frame)")
    p.add_argument("--image", help="the run's input image, the reference for drift (default: the first frame)")
    p.add_argument("--dino", help="DINO ViT-B/16 for subject consistency: dino_vitbase16_pretrain.pth or a folder")
    p.add_argument("--clip-b32", help="CLIP ViT-B/32 for background consistency: open_clip file or transformers folder")
    p.add_argument("--clip-l14", help="CLIP ViT-L/14 for aesthetic quality: open_clip file or transformers folder")
    p.add_argument("--aesthetic-head", help="LAION aesthetic head sa_0_4_vit_l_14_linear.pth")
    p.add_argument("--open-clip-tag", default="openai", help="open_clip pretrained tag of the CLIP files (openai)")
    p.add_argument("--device", help="torch device (default: the first accelerator, else cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="frames encoded per forward pass (default 16)")
    return p


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def evaluate_command(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``chunkwise evaluate`` with ``argv`` (without the ``evaluate`` word); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        sources = [args.source] + ([args.compare] if args.compare else [])
        needs_models = any(not (Path(s).is_file() and s.lower().endswith(".json")) for s in sources)
        models = load_models(args) if needs_models else EvalModels()
        first = evaluate_path(args.source, args, models, args.label)
        out = Path(args.json).expanduser()
        if args.compare:
            other = evaluate_path(args.compare, args, models, args.compare_label)
            comparison = compare_evaluations(first, other)
            _write(out, json.dumps(comparison, indent=2, allow_nan=False))
            _write(out.with_name(out.stem + ".a.eval.json"), dumps(first))
            _write(out.with_name(out.stem + ".b.eval.json"), dumps(other))
            text, chart = summarize_comparison(comparison), comparison_chart(comparison)
        else:
            _write(out, dumps(first))
            text, chart = summarize_evaluation(first), evaluation_chart(first)
        if args.plot:
            Path(args.plot).expanduser().parent.mkdir(parents=True, exist_ok=True)
            chart.save(Path(args.plot).expanduser(), format="PNG")
    except (ChunkwiseError, FileNotFoundError, ImportError) as exc:
        print(f"chunkwise: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


__all__ = ["build_parser", "evaluate_command", "evaluate_path", "load_models", "read_image"]
