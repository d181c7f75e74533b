"""Scorer nodes: build a CHUNKWISE_SCORER from an image encoder, or combine scorers.

A SCORER is a :class:`chunkwise.search.Scorer`; ClipMinCosineScore and
ChunkLoop accept one in place of a plain CLIP_VISION (``plumbing.resolve_scorer``).
Weight files and model folders are found through ComfyUI's ``folder_paths``:
``clip_vision`` (ComfyUI's own) and ``aesthetic`` (models/aesthetic, registered
here because ComfyUI does not know it; extra_model_paths.yaml may add more).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import comfy.model_management
import comfy.model_patcher
import folder_paths
import torch
from comfy_api.latest import io

from ..scorers import (
    AestheticScore,
    ClipMinCosine,
    ColourMatch,
    ComfyClipVisionEncoder,
    Composite,
    MotionGuard,
    OpenClipEncoder,
    SubjectConsistency,
    TemporalFlicker,
    TransformersEncoder,
    load_aesthetic_head,
)
from ..search.errors import ChunkwiseError
from .optional import Needs, first_location, installed, require
from .types import SCORER

logger = logging.getLogger("chunkwise")

CATEGORY = "chunkwise/scoring"
AESTHETIC_FOLDER = "aesthetic"
AESTHETIC_EXTENSIONS = (".pth", ".pt", ".bin", ".safetensors")
COMMON_OPEN_CLIP = ["ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-quickgelu", "ViT-L-14-336", "ViT-H-14", "ViT-bigG-14"]
NONE_FOUND = "(none found)"

# ---------------------------------------------------------------- shared inputs


def _anchor_weight_input(default: float = 0.0):
    return io.Float.Input(
        "anchor_weight",
        default=default,
        min=0.0,
        max=1.0,
        step=0.05,
        tooltip="Share of each frame's score taken from the video's original first image instead of the current "
        "guide. 0 = the paper (only the guide). 0.3-0.5 penalises colour/identity drift that earlier chunks "
        "already accumulated, at the cost of favouring chunks that stay close to the opening shot.",
    )


def _frame_stride_input():
    return io.Int.Input(
        "frame_stride",
        default=1,
        min=1,
        max=64,
        tooltip="Score every n-th preview frame (the first and last are always scored). 1 = every frame (the "
        "paper); 2-4 scores 2-4x faster but can miss a short glitch between scored frames.",
    )


def _batch_size_input():
    return io.Int.Input(
        "batch_size",
        default=16,
        min=1,
        max=256,
        tooltip="Frames encoded per forward pass. Larger is faster, smaller needs less memory (lower it on "
        "out-of-memory).",
    )


class _Held(torch.nn.Module):
    """A plain holder for a foreign model: ModelPatcher sets attributes (``device`` ...) on the module it
    manages, which transformers models refuse (``device`` is a read-only property there)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner


def _managed(encoder):
    """Let ComfyUI's memory manager load/offload an open_clip/transformers model like its own models."""
    load_device = comfy.model_management.text_encoder_device()
    offload_device = comfy.model_management.text_encoder_offload_device()
    patcher = comfy.model_patcher.ModelPatcher(
        _Held(encoder.model), load_device=load_device, offload_device=offload_device
    )
    encoder.patcher = patcher
    # A plain torch module cannot run partly offloaded (only comfy.ops layers can): always load it whole.
    encoder.before_encode = lambda: comfy.model_management.load_models_gpu([patcher], force_full_load=True)
    return encoder


def _placement():
    """Build on the offload device; fp16 where ComfyUI would compute in fp16 on the load device, else fp32.

    (ComfyUI's own text-encoder dtype is fp16 even on the CPU, where its comfy.ops layers upcast per
    layer; open_clip/transformers layers compute in their storage dtype, so the CPU gets fp32.)
    """
    load_device = comfy.model_management.text_encoder_device()
    dtype = torch.float16 if comfy.model_management.should_use_fp16(load_device) else torch.float32
    return comfy.model_management.text_encoder_offload_device(), dtype


def _open_clip_names() -> list[str]:
    """open_clip's bundled config names, read from its folder without importing it (start-up stays fast).

    The encoder builds only the image tower, so every bundled config loads offline (Hugging Face text towers
    are never built). Configs whose image tower is a timm model are left out when timm is not installed.
    """
    location = first_location("open_clip")
    if location is not None:
        cfg_dir = Path(location) / "model_configs"
        have_timm = installed("timm")
        names = []
        for path in sorted(cfg_dir.glob("*.json")):
            try:
                cfg = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            vision = cfg.get("vision_cfg") if isinstance(cfg, dict) else None
            if not isinstance(vision, dict) or "embed_dim" not in cfg:
                continue
            if vision.get("timm_model_name") and not have_timm:
                continue
            names.append(path.stem)
        if names:
            return names
    return list(COMMON_OPEN_CLIP)


def _clip_vision_files() -> list[str]:
    return folder_paths.get_filename_list("clip_vision") or [NONE_FOUND]


def _transformers_config(folder: str):
    """The config.json of a model folder under models/clip_vision, or None."""
    return folder_paths.get_full_path("clip_vision", f"{folder}/config.json")


def _transformers_folders() -> list[str]:
    """Folders of models/clip_vision holding weights (ComfyUI's own listing) beside a config.json."""
    folders = {os.path.dirname(name) for name in folder_paths.get_filename_list("clip_vision")}
    found = sorted(f for f in folders if f and _transformers_config(f) is not None)
    return found or [NONE_FOUND]


def _aesthetic_folder() -> str:
    """models/aesthetic as a folder_paths model folder (first, as ComfyUI's own defaults are); its name."""
    folder_paths.add_model_folder_path(
        AESTHETIC_FOLDER, os.path.join(folder_paths.models_dir, AESTHETIC_FOLDER), is_default=True
    )
    return AESTHETIC_FOLDER


def _aesthetic_files() -> list[str]:
    names = folder_paths.get_filename_list(_aesthetic_folder())
    return [n for n in names if n.lower().endswith(AESTHETIC_EXTENSIONS)] or [NONE_FOUND]


# ---------------------------------------------------------------- CLIP min-cosine, one node per backend


class ChunkwiseScorerClipVision(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerClipVision",
            display_name="Chunkwise Scorer (CLIP Vision)",
            category=CATEGORY,
            description="The paper's verifier on a ComfyUI CLIP_VISION: a preview scores the minimum over its "
            "frames of the CLIP cosine to the guide (optionally blended with the original first image). "
            "ComfyUI preprocesses (short side resized, centre crop) and manages the model's memory.",
            inputs=[
                io.ClipVision.Input(
                    "clip_vision",
                    tooltip="A CLIP vision model from Load CLIP Vision. Bigger models (ViT-H, ViT-L) judge "
                    "content better; smaller ones score faster.",
                ),
                _anchor_weight_input(),
                _frame_stride_input(),
                _batch_size_input(),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, clip_vision, anchor_weight=0.0, frame_stride=1, batch_size=16) -> io.NodeOutput:
        encoder = ComfyClipVisionEncoder(clip_vision, batch_size=batch_size)
        return io.NodeOutput(ClipMinCosine(encoder, anchor_weight=anchor_weight, frame_stride=frame_stride))


class ChunkwiseScorerOpenClip(io.ComfyNode):
    NEEDS = (Needs("open_clip", "open_clip_torch"),)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerOpenClip",
            display_name="Chunkwise Scorer (open_clip)",
            category=CATEGORY,
            description="The paper's CLIP min-cosine verifier on an open_clip image tower loaded from a file in "
            "models/clip_vision (an open_clip checkpoint, e.g. open_clip_model.safetensors). Needs "
            "`pip install open_clip_torch`. Only the image tower is built. Preprocessing is open_clip's own, with "
            "the settings of the checkpoint's pretrained tag (or of open_clip_config.json next to the file).",
            inputs=[
                io.Combo.Input(
                    "model_name",
                    options=_open_clip_names(),
                    default="ViT-L-14",
                    tooltip="open_clip architecture the weights file was trained as. Bigger: better judgement, "
                    "slower scoring.",
                ),
                io.Combo.Input(
                    "weights",
                    options=_clip_vision_files(),
                    tooltip="open_clip checkpoint in models/clip_vision (safetensors preferred; .bin/.pt are read "
                    "with weights_only). Must match model_name.",
                ),
                io.String.Input(
                    "pretrained_tag",
                    default="",
                    optional=True,
                    tooltip="open_clip tag the weights were released as, e.g. openai, laion2b_s32b_b82k, "
                    "laion2b_s39b_b160k, dfn5b, webli (open_clip.list_pretrained_tags_by_model). It sets mean/std, "
                    "resize mode and interpolation, and QuickGELU for OpenAI weights: a wrong one scores with "
                    "wrongly normalised or cropped frames. Empty: read open_clip_config.json next to the weights "
                    "file, else the settings all of the model's tags share, else open_clip's defaults (a warning "
                    "in the log).",
                ),
                _anchor_weight_input(),
                _frame_stride_input(),
                _batch_size_input(),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(
        cls, model_name, weights, anchor_weight=0.0, frame_stride=1, batch_size=16, pretrained_tag=""
    ) -> io.NodeOutput:
        require(cls)
        path = folder_paths.get_full_path("clip_vision", weights) if weights != NONE_FOUND else None
        if path is None:
            raise FileNotFoundError(
                f"open_clip weights {weights!r} not found in models/clip_vision "
                f"({folder_paths.get_folder_paths('clip_vision')}); put an open_clip checkpoint for {model_name} "
                "there (e.g. open_clip_model.safetensors from the model's Hugging Face page) and refresh"
            )
        device, dtype = _placement()
        encoder = OpenClipEncoder(
            model_name, path, device=device, dtype=dtype, batch_size=batch_size, pretrained_tag=pretrained_tag or None
        )
        return io.NodeOutput(ClipMinCosine(_managed(encoder), anchor_weight=anchor_weight, frame_stride=frame_stride))


class ChunkwiseScorerTransformers(io.ComfyNode):
    NEEDS = (Needs("transformers", "transformers"),)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerTransformers",
            display_name="Chunkwise Scorer (transformers)",
            category=CATEGORY,
            description="The paper's CLIP min-cosine verifier on a transformers CLIPVisionModelWithProjection "
            "folder (config.json, model.safetensors, preprocessor_config.json) under models/clip_vision or at a "
            "path. Loaded with local_files_only. Needs `pip install transformers`.",
            inputs=[
                io.Combo.Input(
                    "folder",
                    options=_transformers_folders(),
                    tooltip="A model folder directly inside models/clip_vision. Ignored when path is set.",
                ),
                io.String.Input(
                    "path",
                    default="",
                    optional=True,
                    tooltip="Absolute path to a model folder anywhere on disk; overrides folder. Leave empty to "
                    "use folder.",
                ),
                _anchor_weight_input(),
                _frame_stride_input(),
                _batch_size_input(),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, folder, path="", anchor_weight=0.0, frame_stride=1, batch_size=16) -> io.NodeOutput:
        require(cls)
        if path and path.strip():
            target = path.strip()
        else:
            config = _transformers_config(folder) if folder != NONE_FOUND else None
            target = os.path.dirname(config) if config else None
            if target is None:
                raise FileNotFoundError(
                    f"transformers model folder {folder!r} not found in models/clip_vision "
                    f"({folder_paths.get_folder_paths('clip_vision')}); put the folder (config.json, "
                    "model.safetensors, preprocessor_config.json) there, or set path"
                )
        device, dtype = _placement()
        encoder = TransformersEncoder(target, device=device, dtype=dtype, batch_size=batch_size)
        return io.NodeOutput(ClipMinCosine(_managed(encoder), anchor_weight=anchor_weight, frame_stride=frame_stride))


# ---------------------------------------------------------------- other verifiers


class ChunkwiseScorerMotionGuard(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerMotionGuard",
            display_name="Chunkwise Motion Guard",
            category=CATEGORY,
            description="Penalises near-static previews: 0 when the mean frame-to-frame change (grey, at 64 px) "
            "reaches min_motion, down to -1 for a frozen preview. Add it to a CLIP scorer in a Composite, "
            "because a min-over-frames CLIP score rewards chunks that barely move.",
            inputs=[
                io.Float.Input(
                    "min_motion",
                    default=0.02,
                    min=0.001,
                    max=0.5,
                    step=0.001,
                    tooltip="Mean absolute frame difference (0..1 scale) that counts as moving. Higher demands "
                    "more motion and can favour jittery chunks; lower only catches frozen ones.",
                ),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, min_motion=0.02) -> io.NodeOutput:
        return io.NodeOutput(MotionGuard(min_motion=min_motion))


class ChunkwiseScorerColour(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerColour",
            display_name="Chunkwise Scorer (colour, no weights)",
            category=CATEGORY,
            description="Scores a preview by its worst frame's colour distance to the guide: 1 - (|mean - "
            "mean_guide| + |std - std_guide|) / 100 of the per-channel CIE Lab statistics, the evaluation's "
            "colour drift. Needs no model file. Blind to shapes (motion is free, a distortion that keeps the "
            "colours too): pair it with a CLIP scorer in a Composite when content matters.",
            inputs=[
                io.Int.Input("size", default=64, min=8, max=1024,
                             tooltip="Frames are area-averaged to this longer side first. Smaller is faster; "
                                     "the statistics barely change."),
                io.Float.Input("anchor_weight", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Also score against the video's first image: 0 scores against the guide "
                                       "only (the paper), higher pulls drift that earlier chunks accumulated back."),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, size=64, anchor_weight=0.0) -> io.NodeOutput:
        return io.NodeOutput(ColourMatch(size=size, anchor_weight=anchor_weight))


class ChunkwiseScorerFlicker(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerFlicker",
            display_name="Chunkwise Temporal Flicker",
            category=CATEGORY,
            description="VBench temporal flickering: (255 - mean absolute difference of consecutive 8-bit "
            "frames) / 255; 1 = no change between frames. It also rewards stillness: pair it with the motion "
            "guard in a Composite.",
            inputs=[],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(TemporalFlicker())


class ChunkwiseScorerSubjectConsistency(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerSubjectConsistency",
            display_name="Chunkwise Subject Consistency",
            category=CATEGORY,
            description="VBench subject consistency: mean over frames of the cosine to the first frame and to "
            "the previous frame, on image features (VBench uses DINO: load a DINOv2 model with Load CLIP Vision; "
            "a CLIP model also works).",
            inputs=[
                io.ClipVision.Input(
                    "clip_vision",
                    tooltip="Feature encoder. DINOv2 follows object identity closely; CLIP follows semantics and "
                    "tolerates appearance change.",
                ),
                io.Boolean.Input(
                    "use_guide",
                    default=True,
                    tooltip="Use the guide image as the first frame, so a chunk must stay the subject it was "
                    "given. Off: VBench as published (consistency within the preview only).",
                ),
                _frame_stride_input(),
                _batch_size_input(),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, clip_vision, use_guide=True, frame_stride=1, batch_size=16) -> io.NodeOutput:
        encoder = ComfyClipVisionEncoder(clip_vision, batch_size=batch_size)
        return io.NodeOutput(SubjectConsistency(encoder, frame_stride=frame_stride, use_guide=use_guide))


class ChunkwiseScorerAesthetic(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerAesthetic",
            display_name="Chunkwise Aesthetic Score",
            category=CATEGORY,
            description="LAION aesthetic predictor on CLIP ViT-L/14 image embeddings: mean over frames of the "
            "predicted 1..10 rating, divided by 10 (as VBench). Put the head (e.g. sa_0_4_vit_l_14_linear.pth) "
            "in models/aesthetic.",
            inputs=[
                io.ClipVision.Input(
                    "clip_vision",
                    tooltip="Must be CLIP ViT-L/14 (768-dim embeddings), the model the LAION heads were trained on.",
                ),
                io.Combo.Input(
                    "head",
                    options=_aesthetic_files(),
                    tooltip="LAION aesthetic head in models/aesthetic (linear or the 'improved' MLP). A different "
                    "head changes what counts as pleasing.",
                ),
                _frame_stride_input(),
                _batch_size_input(),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, clip_vision, head, frame_stride=1, batch_size=16) -> io.NodeOutput:
        folder = _aesthetic_folder()
        path = folder_paths.get_full_path(folder, head) if head != NONE_FOUND else None
        if path is None:
            raise FileNotFoundError(
                f"aesthetic head {head!r} not found in {folder_paths.get_folder_paths(folder)}; put a LAION "
                "aesthetic predictor for CLIP ViT-L/14 (e.g. sa_0_4_vit_l_14_linear.pth from "
                "LAION-AI/aesthetic-predictor) there"
            )
        encoder = ComfyClipVisionEncoder(clip_vision, batch_size=batch_size)
        return io.NodeOutput(AestheticScore(encoder, load_aesthetic_head(path), frame_stride=frame_stride))


# ---------------------------------------------------------------- composite

COMPOSITE_SLOTS = 4


class ChunkwiseScorerComposite(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        inputs = []
        for i in range(1, COMPOSITE_SLOTS + 1):
            inputs.append(
                SCORER.Input(
                    f"scorer_{i}",
                    optional=True,
                    tooltip=f"Scorer {i}; leave unconnected to skip. Every scorer adds its own encoding cost "
                    "per candidate.",
                )
            )
            inputs.append(
                io.Float.Input(
                    f"weight_{i}",
                    default=1.0 if i == 1 else 0.1,
                    min=-100.0,
                    max=100.0,
                    step=0.01,
                    tooltip=f"Weight of scorer {i} in the sum, in that scorer's own units (e.g. 0.1 on the motion "
                    "guard costs a frozen preview 0.1 of CLIP cosine). Larger: that criterion dominates.",
                )
            )
        return io.Schema(
            node_id="ChunkwiseScorerComposite",
            display_name="Chunkwise Composite Scorer",
            category=CATEGORY,
            description="Weighted sum of up to four scorers: score = sum of weight_i * score_i over the connected "
            "ones. The search report keeps each part's score.",
            inputs=inputs,
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, **kwargs) -> io.NodeOutput:
        parts = []
        for i in range(1, COMPOSITE_SLOTS + 1):
            scorer = kwargs.get(f"scorer_{i}")
            if scorer is not None:
                parts.append((scorer, float(kwargs.get(f"weight_{i}", 1.0))))
        if not parts:
            raise ChunkwiseError(
                f"Chunkwise Composite Scorer got no scorer: connect at least one of scorer_1..scorer_{COMPOSITE_SLOTS}"
            )
        return io.NodeOutput(Composite(parts))


SCORER_NODES = [
    ChunkwiseScorerClipVision,
    ChunkwiseScorerOpenClip,
    ChunkwiseScorerTransformers,
    ChunkwiseScorerComposite,
    ChunkwiseScorerMotionGuard,
    ChunkwiseScorerColour,
    ChunkwiseScorerFlicker,
    ChunkwiseScorerSubjectConsistency,
    ChunkwiseScorerAesthetic,
]
