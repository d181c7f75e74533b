"""Evaluate a finished long video the way the paper does: VBench's quality dimensions per number of chunks.

The paper (arXiv 2411.18668, Tables 1-3) reports VBench's subject consistency,
background consistency, temporal flickering, motion smoothness and aesthetic
quality of chunk-by-chunk videos, after 5, 10, 15 and 20 chunks. This module
computes them for a video given as frames ``[T, H, W, 3]`` in 0..1 plus its
chunk layout, or for a run folder written by ``search.sinks.DiskSink`` (read
chunk by chunk through the sink's own reading functions, so memory holds one
chunk at a time). The formulas are in :mod:`.vbench`, each naming the VBench
file it follows; frames are first rounded to 8 bits, as VBench reads a saved video.

Every dimension is reported for three kinds of segment, from the same per-frame
values (features, pair differences, rebuilt frames), so the tables agree:

- ``whole_video``: the whole video as one VBench video;
- ``chunks[i]``: chunk ``i`` alone, as its own video (its first frame is the
  consistency dimensions' ``f_0``, its first even frame the interpolation start);
- ``cumulative[k-1]``: the video truncated after ``k`` chunks (the paper's
  Table 3 reads k = 5, 10, 15, 20); ``cumulative[-1]`` equals ``whole_video``.

Plus, per chunk, the drift of its last frame from the reference image (the
input image when given, else the video's first frame): ``colour``, the Lab
distance of colour statistics (``search.colour.colour_drift``: the Euclidean
distance between the per-channel Lab means plus that between the per-channel
standard deviations; about 2.3 is a just noticeable difference), and
``embedding``, ``1 - cos`` of the CLIP embeddings (background's CLIP ViT-B/32,
else aesthetic's ViT-L/14; null without either). And, at every seam, the
flicker term of the pair across it and the consistency to the previous frame.

A dimension whose model is missing is left out (its values null), with the
reason and the file to provide in ``left_out``; nothing is downloaded, and no
stand-in is ever reported under a VBench name.

The numbers are VBench's when the encoders are VBench's models with its
preprocessing (``dimensions[name].model`` records what was used):

- subject consistency: :class:`~.dino.DinoEncoder` on dino_vitbase16_pretrain.pth
  (VBench's ``dino_transform``: short side 224, no crop, ImageNet mean/std);
- background consistency: OpenAI CLIP ViT-B/32, as an open_clip ``ViT-B-32``
  checkpoint with ``pretrained_tag="openai"`` or a transformers
  ``openai/clip-vit-base-patch32`` folder (ComfyUI's Load CLIP Vision does not
  load ViT-B/32): both resize the short side to 224 (bicubic), centre-crop and
  use OpenAI's mean/std, which is VBench's ``clip_transform(224)``;
- aesthetic quality: OpenAI CLIP ViT-L/14 the same way (or a ComfyUI CLIP_VISION
  of clip-vit-large-patch14, whose preprocessing is the same), with LAION's
  sa_0_4_vit_l_14_linear.pth (``verifiers.load_aesthetic_head``);
- motion smoothness: an interpolation callable wrapping AMT-S (not bundled).

Other encoders (DINOv2, a bigger CLIP) run the same formulas, but their numbers
are not comparable with VBench's tables.

Format ``chunkwise.eval/1`` (keys are stable; tools and tests read them)::

    {"format": "chunkwise.eval/1",
     "label": "search m=4" | run folder name | "video",
     "source": {"kind": "frames" | "run folder", "path": str | null, "frames": T, "height": H, "width": W,
                "report": the run's report settings (run folders with report.json) | null},
     "dimensions": {name: {"computed": bool, "model": what encoded it | null, "vbench_model": str,
                           "follows": VBench file, "reason": why not computed | null}},
     "left_out": {name: reason},                    # the dimensions not computed
     "whole_video": {name: value | null},
     "chunks": [{"index": i, "start": first frame, "frames": count, "scores": {name: value | null},
                 "drift": {"colour": value, "embedding": value | null},
                 "seam": null for chunk 0, else {"temporal_flickering", "subject_consistency",
                                                 "background_consistency"} across the seam}],
     "cumulative": [{"chunks": k, "frames": frames in the first k chunks, "scores": {name: value | null}}],
     "drift": {"reference": "input image" | "first frame", "colour": definition,
               "embedding": definition, "embedding_model": str | null},
     "notes": [str]}

Values are floats in 0..1 for the VBench dimensions (higher is better); drift
is lower-is-better. ``null`` means not computed, or a segment too short for the
dimension (one frame has no pair; motion smoothness needs three frames).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch

from ..search.colour import colour_drift
from ..search.errors import ChunkwiseError
from .base import check_frames
from .encoders import ImageEncoder
from .vbench import (
    VBENCH_SOURCES,
    Interpolator,
    aesthetic_values,
    consistency_score,
    flicker_from_mae,
    flicker_pair_mae,
    interpolation_mae,
    interpolation_triples,
    mean_or_none,
    run_interpolator,
    smoothness_from_mae,
    to_8bit,
)

logger = logging.getLogger("chunkwise")

EVAL_FORMAT = "chunkwise.eval/1"
DIMENSIONS = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "aesthetic_quality",
)
PAPER_CHUNK_COUNTS = (5, 10, 15, 20)
VBENCH_MODELS = {
    "subject_consistency": "DINO ViT-B/16 (dino_vitbase16_pretrain.pth)",
    "background_consistency": "CLIP ViT-B/32 (OpenAI)",
    "temporal_flickering": "none",
    "motion_smoothness": "AMT-S (amt-s.pth)",
    "aesthetic_quality": "CLIP ViT-L/14 (OpenAI) + LAION sa_0_4_vit_l_14_linear.pth",
}
MISSING = {
    "subject_consistency": "no DINO encoder given: provide VBench's DINO ViT-B/16 weights dino_vitbase16_pretrain.pth "
    "(facebookresearch/dino) or a transformers facebook/dino-vitb16 folder",
    "background_consistency": "no CLIP ViT-B/32 encoder given: provide OpenAI's ViT-B/32 weights (an open_clip "
    "ViT-B-32 checkpoint with pretrained tag openai, or a transformers openai/clip-vit-base-patch32 folder)",
    "motion_smoothness": "no frame-interpolation model given: VBench rebuilds odd frames with AMT-S (amt-s.pth), "
    "which this pack does not bundle; pass an interpolation callable (interpolate(first, second) -> middle) "
    "to compute it",
    "aesthetic_quality": "no CLIP ViT-L/14 encoder and LAION aesthetic head given: provide OpenAI's ViT-L/14 "
    "weights and sa_0_4_vit_l_14_linear.pth (LAION-AI/aesthetic-predictor)",
}
COLOUR_DRIFT = (
    "Lab distance of colour statistics of the chunk's last frame to the reference: |mean_L,a,b difference| + "
    "|std_L,a,b difference| (search.colour.colour_drift; about 2.3 is just noticeable)"
)
EMBEDDING_DRIFT = "1 - cos(CLIP(chunk's last frame), CLIP(reference))"
SEAM_KEYS = ("temporal_flickering", "subject_consistency", "background_consistency")


@dataclass
class EvalModels:
    """The models each dimension needs; any may be missing (that dimension is then left out).

    ``subject``: DINO ViT-B/16 features (e.g. :class:`~.dino.DinoEncoder`);
    ``background``: CLIP ViT-B/32; ``aesthetic`` + ``aesthetic_head``: CLIP
    ViT-L/14 and the LAION linear head; ``interpolate``: a frame interpolator
    (:data:`~.vbench.Interpolator`, VBench: AMT-S) named ``interpolator_name``.
    ``unavailable`` maps a dimension to why its model could not be loaded (a
    missing file); it replaces the default reason in ``left_out``.
    """

    subject: Optional[ImageEncoder] = None
    background: Optional[ImageEncoder] = None
    aesthetic: Optional[ImageEncoder] = None
    aesthetic_head: Optional[torch.nn.Module] = None
    interpolate: Optional[Interpolator] = None
    interpolator_name: str = "interpolator"
    interpolation_batch: int = 4
    unavailable: dict = field(default_factory=dict)

    def computed(self) -> dict[str, Optional[str]]:
        """``{dimension: model description}`` for the dimensions these models can compute."""
        out: dict[str, Optional[str]] = {"temporal_flickering": None}
        if self.subject is not None:
            out["subject_consistency"] = self.subject.describe()
        if self.background is not None:
            out["background_consistency"] = self.background.describe()
        if self.interpolate is not None:
            out["motion_smoothness"] = self.interpolator_name
        if self.aesthetic is not None and self.aesthetic_head is not None:
            out["aesthetic_quality"] = self.aesthetic.describe()
        return {d: out[d] for d in DIMENSIONS if d in out}

    def drift_encoder(self) -> Optional[str]:
        return "background" if self.background is not None else "aesthetic" if self.aesthetic is not None else None


def chunk_sizes(total: int, frames_per_chunk: int, drop_first_frame: bool = False) -> list[int]:
    """Frames per chunk of a ``total``-frame video made by ChunkLoop: ``frames_per_chunk`` each, or with
    ``drop_first_frame`` that many for the first and one fewer for every later chunk. A shorter last
    chunk is kept (with a logged note)."""
    if isinstance(frames_per_chunk, bool) or not isinstance(frames_per_chunk, int) or frames_per_chunk < 1:
        raise ChunkwiseError(
            f"frames_per_chunk must be an integer >= 1, got {frames_per_chunk!r}; use the model's chunk length "
            "(SVD 25, Wan 81, CogVideoX 49)"
        )
    later = frames_per_chunk - 1 if drop_first_frame else frames_per_chunk
    if later < 1 and total > frames_per_chunk:
        raise ChunkwiseError(
            f"frames_per_chunk {frames_per_chunk} with drop_first_frame leaves no frame in later chunks; "
            "use frames_per_chunk >= 2 or turn drop_first_frame off"
        )
    sizes, left = [], total
    while left > 0:
        size = min(left, frames_per_chunk if not sizes else later)
        sizes.append(size)
        left -= size
    if len(sizes) > 1 and sizes[-1] != later:
        logger.info("chunkwise: the last chunk has %d frames, not %d: evaluated as a short chunk", sizes[-1], later)
    return sizes


# ---------------------------------------------------------------- per-frame values, chunk by chunk


class _Values:
    """Per-frame values of the whole video, filled chunk by chunk (one chunk and two carried frames in memory)."""

    def __init__(self, models: EvalModels, reference: Optional[torch.Tensor]) -> None:
        self.models = models
        self.dims = models.computed()
        self.features: dict[str, list[torch.Tensor]] = {"subject": [], "background": [], "aesthetic": []}
        self.pair_mae: list[torch.Tensor] = []
        self.aesthetic: list[torch.Tensor] = []
        self.rebuilt: dict[int, float] = {}
        self.drift: list[dict] = []
        self.tail: Optional[torch.Tensor] = None
        self.frames = 0
        self.size: Optional[tuple[int, int]] = None
        self.reference = reference
        self.reference_is_first = False
        self.reference_emb: Optional[torch.Tensor] = None
        self.roles = [r for r in ("subject", "background") if getattr(models, r) is not None]
        if models.aesthetic is not None and (models.aesthetic_head is not None or models.drift_encoder() == "aesthetic"):
            self.roles.append("aesthetic")

    def add(self, frames: torch.Tensor, start: int, stop: int) -> None:
        """Chunk ``[start, stop)`` of the video: its frames ``[stop - start, H, W, 3]``."""
        frames = check_frames(frames, f"chunk frames {start}..{stop - 1}")
        if self.size is None:
            self.size = tuple(frames.shape[1:3])
        elif tuple(frames.shape[1:3]) != self.size:
            raise ChunkwiseError(
                f"frames {start}..{stop - 1} are {list(frames.shape[1:3])}, the video's first frames {list(self.size)}; "
                "every frame of a video must have the same size"
            )
        x8 = to_8bit(frames)
        x01 = x8 / 255.0
        if self.reference is None:
            self.reference, self.reference_is_first = x01[:1].cpu().clone(), True
        # 1. Features of every frame, per encoder (the aesthetic one only where its head or the drift needs it).
        for role in self.roles:
            self.features[role].append(getattr(self.models, role).encode(x01).float().cpu())
        if "aesthetic_quality" in self.dims:
            emb = self.features["aesthetic"][-1]
            self.aesthetic.append(aesthetic_values(emb, self.models.aesthetic_head, self.dims["aesthetic_quality"]).cpu())
        # 2. Pair differences, the pair across the seam included.
        joined = x8 if self.tail is None else torch.cat([self.tail[-1:].to(x8.device), x8])
        self.pair_mae.append(flicker_pair_mae(joined).cpu())
        # 3. Rebuilt middle frames whose triple ends in this chunk.
        if self.models.interpolate is not None:
            self._interpolate(x8, start, stop)
        # 4. Drift of the chunk's last frame.
        self.drift.append(self._drift(x01[-1:]))
        carry = x8 if self.tail is None else torch.cat([self.tail.to(x8.device), x8])
        self.tail = carry[-2:].clone()
        self.frames = stop

    def needed_triples(self, chunk_start: int, chunk_stop: int, window_start: int) -> list[int]:
        """Triples ``s`` ending in this chunk: the whole video's (even ``s``) and this chunk's own."""
        wanted = set(range(0, chunk_stop - 2, 2)) | set(interpolation_triples(chunk_start, chunk_stop))
        return sorted(s for s in wanted if s >= window_start and chunk_start <= s + 2 < chunk_stop)

    def _interpolate(self, x8: torch.Tensor, start: int, stop: int) -> None:
        window = x8 if self.tail is None else torch.cat([self.tail.to(x8.device), x8])
        offset = start - (window.shape[0] - x8.shape[0])
        todo = [s for s in self.needed_triples(start, stop, offset) if s not in self.rebuilt]
        batch = max(1, int(self.models.interpolation_batch))
        for i in range(0, len(todo), batch):
            group = [s - offset for s in todo[i : i + batch]]
            first, middle, second = window[group], window[[g + 1 for g in group]], window[[g + 2 for g in group]]
            predicted = run_interpolator(self.models.interpolate, first / 255.0, second / 255.0)
            for s, mae in zip(todo[i : i + batch], interpolation_mae(first, middle, predicted).tolist(), strict=True):
                self.rebuilt[s] = mae

    def _drift(self, last01: torch.Tensor) -> dict:
        out = {"colour": colour_drift(last01.cpu(), self.reference, "lab"), "embedding": None}
        role = self.models.drift_encoder()
        if role is not None:
            if self.reference_emb is None and self.reference_is_first:
                self.reference_emb = self.features[role][0][0]
            elif self.reference_emb is None:
                self.reference_emb = getattr(self.models, role).encode(self.reference).float().cpu()[0]
            emb = self.features[role][-1][-1]
            out["embedding"] = float(1.0 - torch.dot(emb, self.reference_emb))
        return out

    def finish(self) -> None:
        self.feats = {r: torch.cat(v) for r, v in self.features.items() if v}
        self.pairs = torch.cat(self.pair_mae) if self.pair_mae else torch.zeros(0)
        self.aes = torch.cat(self.aesthetic) if self.aesthetic else torch.zeros(0)

    def segment(self, a: int, b: int) -> dict[str, Optional[float]]:
        """Every dimension for frames ``[a, b)`` taken as one VBench video (null where not computed)."""
        out: dict[str, Optional[float]] = dict.fromkeys(DIMENSIONS)
        for dim in self.dims:
            if dim == "subject_consistency":
                out[dim] = consistency_score(self.feats["subject"][a:b])
            elif dim == "background_consistency":
                out[dim] = consistency_score(self.feats["background"][a:b])
            elif dim == "temporal_flickering":
                out[dim] = flicker_from_mae(self.pairs[a : max(a, b - 1)])
            elif dim == "motion_smoothness":
                out[dim] = smoothness_from_mae(torch.tensor([self.rebuilt[s] for s in interpolation_triples(a, b)]))
            elif dim == "aesthetic_quality":
                out[dim] = mean_or_none(self.aes[a:b])
        return out

    def seam(self, frame: int) -> dict[str, Optional[float]]:
        """The values across the seam before ``frame``: the pair's flicker term, each consistency's cos to the previous."""
        out = {"temporal_flickering": float((255.0 - self.pairs[frame - 1]) / 255.0)}
        for dim, role in (("subject_consistency", "subject"), ("background_consistency", "background")):
            f = self.feats.get(role) if dim in self.dims else None
            out[dim] = None if f is None else max(0.0, float(torch.dot(f[frame - 1], f[frame])))
        return out


# ---------------------------------------------------------------- the evaluation


def _dimension_info(models: EvalModels) -> tuple[dict, dict]:
    computed = models.computed()
    info, left_out = {}, {}
    for dim in DIMENSIONS:
        reason = None
        if dim not in computed:
            reason = models.unavailable.get(dim) or MISSING[dim]
            if dim == "aesthetic_quality" and (models.aesthetic is None) != (models.aesthetic_head is None):
                reason = models.unavailable.get(dim) or (
                    "the LAION aesthetic head sa_0_4_vit_l_14_linear.pth is missing (a CLIP ViT-L/14 encoder was given)"
                    if models.aesthetic is not None
                    else "no CLIP ViT-L/14 encoder given for the LAION aesthetic head"
                )
            left_out[dim] = reason
        info[dim] = {
            "computed": dim in computed,
            "model": computed.get(dim),
            "vbench_model": VBENCH_MODELS[dim],
            "follows": VBENCH_SOURCES[dim],
            "reason": reason,
        }
    return info, left_out


def evaluate_chunks(
    chunks: Iterable[torch.Tensor],
    sizes: Sequence[int],
    *,
    models: Optional[EvalModels] = None,
    image: Optional[torch.Tensor] = None,
    label: str = "video",
    source: Optional[dict] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> dict:
    """The ``chunkwise.eval/1`` evaluation of a video given chunk by chunk (``sizes[i]`` frames in chunk ``i``).

    ``image``: the reference for drift (the run's input image); default the
    first frame. ``progress(done, total)`` is called after each chunk (a host
    may raise there to stop).
    """
    models = models or EvalModels()
    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 1 for s in sizes):
        raise ChunkwiseError(f"every chunk needs at least one frame, got chunk sizes {sizes}; check the chunk length")
    reference = None
    if image is not None:
        reference = (to_8bit(check_frames(image, "reference image")[:1]) / 255.0).cpu()
    values = _Values(models, reference)
    # 1. Per-frame values, one chunk at a time.
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    count = 0
    for i, frames in enumerate(chunks):
        if i >= len(sizes):
            raise ChunkwiseError(f"got more than the {len(sizes)} chunks the layout lists (sizes {sizes})")
        if frames.shape[0] != sizes[i]:
            raise ChunkwiseError(
                f"chunk {i} has {frames.shape[0]} frames, the layout says {sizes[i]} (sizes {sizes}); "
                "pass one size per chunk"
            )
        values.add(frames, starts[i], starts[i] + sizes[i])
        count += 1
        if progress is not None:
            progress(count, len(sizes))
    if count != len(sizes):
        raise ChunkwiseError(f"got {count} chunks, the layout lists {len(sizes)} (sizes {sizes})")
    values.finish()
    # 2. The tables: per chunk, cumulative, whole video, all from the same per-frame values.
    info, left_out = _dimension_info(models)
    total = starts[-1] + sizes[-1]
    rows = []
    for i, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        rows.append({
            "index": i,
            "start": start,
            "frames": size,
            "scores": values.segment(start, start + size),
            "drift": values.drift[i],
            "seam": values.seam(start) if i > 0 else None,
        })
    cumulative = [
        {"chunks": i + 1, "frames": start + size, "scores": values.segment(0, start + size)}
        for i, (start, size) in enumerate(zip(starts, sizes, strict=True))
    ]
    role = models.drift_encoder()
    height, width = values.size
    return {
        "format": EVAL_FORMAT,
        "label": str(label),
        "source": {"kind": "frames", "path": None, "frames": total, "height": height, "width": width, "report": None,
                   **(source or {})},
        "dimensions": info,
        "left_out": left_out,
        "whole_video": values.segment(0, total),
        "chunks": rows,
        "cumulative": cumulative,
        "drift": {
            "reference": "input image" if image is not None else "first frame",
            "colour": COLOUR_DRIFT,
            "embedding": EMBEDDING_DRIFT,
            "embedding_model": None if role is None else getattr(models, role).describe(),
        },
        "notes": [
            "frames rounded to 8 bits before every dimension, as VBench reads a saved video",
            "chunks[i] scores chunk i as its own video; cumulative[k-1] the video truncated after k chunks",
        ],
    }


def evaluate_video(
    frames: torch.Tensor,
    frames_per_chunk: Optional[int] = None,
    *,
    sizes: Optional[Sequence[int]] = None,
    drop_first_frame: bool = False,
    models: Optional[EvalModels] = None,
    image: Optional[torch.Tensor] = None,
    label: str = "video",
    progress: Optional[Callable[[int, int], None]] = None,
) -> dict:
    """Evaluate frames ``[T, H, W, 3]`` in 0..1 cut into chunks of ``frames_per_chunk`` (see :func:`chunk_sizes`)
    or of the explicit ``sizes``."""
    frames = check_frames(frames, "video")
    if sizes is None:
        if frames_per_chunk is None:
            raise ChunkwiseError("give frames_per_chunk (the model's chunk length) or sizes (frames of each chunk)")
        sizes = chunk_sizes(frames.shape[0], frames_per_chunk, drop_first_frame)
    elif sum(sizes) != frames.shape[0]:
        raise ChunkwiseError(f"chunk sizes {list(sizes)} add up to {sum(sizes)} frames, the video has {frames.shape[0]}")
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    chunks = (frames[s : s + n] for s, n in zip(starts, sizes, strict=True))
    return evaluate_chunks(chunks, sizes, models=models, image=image, label=label, progress=progress)


@dataclass
class RunFolder:
    """A run folder's finished chunks, read back through the run format's own readers (search/runs.py)."""

    folder: Path
    entries: list

    def chunk_frames(self, index: int) -> torch.Tensor:
        from ..search.runs import chunk_name, frame_name
        from ..search.sinks import load_png

        entry = self.entries[index]
        chunk = self.folder / chunk_name(entry.index)
        return torch.stack([load_png(chunk / frame_name(entry.start + t)) for t in range(entry.frames)])

    def video(self) -> torch.Tensor:
        return torch.cat([self.chunk_frames(i) for i in range(len(self.entries))])


def open_run_folder(path) -> tuple[RunFolder, list, Optional[dict]]:
    """A run folder opened for reading only: ``(RunFolder, finished chunk entries, report or None)``.

    Reads the header and the chunk records with the run format's own readers and keeps
    the finished chunks; takes no lock and writes nothing, so a run still going on in
    that folder is not disturbed.
    """
    from ..search.runs import REPORT, STATE, read_header, scan_chunks

    folder = Path(path).expanduser().resolve()
    header = read_header(folder) if (folder / STATE).is_file() else None
    if header is None:
        raise ChunkwiseError(
            f"{str(path)!r} is not a chunkwise run folder (no {STATE}); expected output/chunkwise/<run_name> "
            "of a ChunkLoop run with a run_name"
        )
    finished = scan_chunks(folder, header).entries
    if not finished:
        raise ChunkwiseError(f"run folder {str(path)!r} holds no finished chunk yet: nothing to evaluate")
    report = None
    if (folder / REPORT).is_file():
        try:
            report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            logger.warning("chunkwise: could not read %s (%s); evaluating without its settings", folder / REPORT, e)
    return RunFolder(folder, finished), finished, report


def evaluate_run_folder(
    path,
    *,
    models: Optional[EvalModels] = None,
    image: Optional[torch.Tensor] = None,
    label: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> dict:
    """Evaluate a run folder's finished chunks, read one chunk at a time."""
    run, entries, report = open_run_folder(path)
    sizes = [e.frames for e in entries]
    settings = report.get("settings") if isinstance(report, dict) else None
    source = {"kind": "run folder", "path": str(run.folder), "report": settings}
    chunks = (run.chunk_frames(i) for i in range(len(entries)))
    return evaluate_chunks(chunks, sizes, models=models, image=image, label=label or run.folder.name,
                           source=source, progress=progress)


def load_evaluation(obj) -> dict:
    """A ``chunkwise.eval/1`` evaluation from a dict, a JSON string or a JSON file path; checked."""
    if isinstance(obj, (str, Path)) and not str(obj).lstrip().startswith("{"):
        path = Path(obj)
        if not path.is_file():
            raise ChunkwiseError(f"evaluation file not found: {str(path)!r}; expected a {EVAL_FORMAT} JSON file")
        obj = path.read_text(encoding="utf-8")
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except ValueError as e:
            raise ChunkwiseError(f"evaluation is not JSON ({e}); expected a {EVAL_FORMAT} document") from e
    got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
    if got != EVAL_FORMAT:
        raise ChunkwiseError(
            f"expected a {EVAL_FORMAT} evaluation, got format {got!r}; connect the evaluation output of "
            "ChunkwiseEvaluate (or a file written by chunkwise evaluate --json)"
        )
    for key in ("chunks", "cumulative", "whole_video", "dimensions"):
        if key not in obj:
            raise ChunkwiseError(f"{EVAL_FORMAT} evaluation lacks its {key!r} table; it is damaged or truncated")
    return obj


def dumps(evaluation: dict) -> str:
    return json.dumps(evaluation, indent=2, allow_nan=False)


__all__ = [
    "DIMENSIONS",
    "EVAL_FORMAT",
    "EvalModels",
    "PAPER_CHUNK_COUNTS",
    "chunk_sizes",
    "dumps",
    "evaluate_chunks",
    "evaluate_run_folder",
    "evaluate_video",
    "load_evaluation",
    "open_run_folder",
]
