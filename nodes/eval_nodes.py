"""Evaluation nodes: VBench's quality dimensions of a finished long video per chunk, and two videos compared.

ChunkwiseEvaluate measures a video (an IMAGE, or a run folder written by
ChunkLoop) as the paper's Tables 1-3 do; ChunkwiseCompare puts two evaluations
(e.g. naive and search at the same seed) side by side. The work is in
``scorers.evaluation``; these nodes only pick the encoders and draw.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..scorers.encoders import ComfyClipVisionEncoder, ImageEncoder
from ..scorers.evaluation import EvalModels, dumps, evaluate_run_folder, evaluate_video
from ..scorers.evaluation_plots import comparison_chart, evaluation_chart
from ..scorers.evaluation_report import compare_evaluations, summarize_comparison, summarize_evaluation
from ..search.charts import to_image_tensor
from ..search.errors import ChunkwiseError
from .loop import runs_directory
from .plumbing import widget_problem
from .types import SCORER

log = logging.getLogger("chunkwise")

CATEGORY = "chunkwise/evaluation"
NONE_FOUND = "(none found)"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _scorer_parts(scorer, what: str):
    """The encoder (and aesthetic head) a chunkwise SCORER scores with; a Composite's first part that has one."""
    candidates = [scorer] + [part for part, _w in getattr(scorer, "parts", [])]
    for item in candidates:
        encoder = getattr(item, "encoder", None)
        if isinstance(encoder, ImageEncoder):
            return encoder, getattr(item, "head", None)
    raise ChunkwiseError(
        f"the {what} SCORER ({type(scorer).__name__}) holds no image encoder; connect a Chunkwise scorer node "
        "built on an encoder (CLIP Vision, open_clip, transformers, Subject Consistency, Aesthetic Score)"
    )


def eval_models(subject_clip_vision=None, subject_scorer=None, background_clip_vision=None,
                background_scorer=None, aesthetic_scorer=None, batch_size: int = 16) -> EvalModels:
    """EvalModels from the node's optional inputs: a SCORER's encoder wins over a CLIP_VISION."""
    models = EvalModels()
    if subject_scorer is not None:
        models.subject = _scorer_parts(subject_scorer, "subject")[0]
    elif subject_clip_vision is not None:
        models.subject = ComfyClipVisionEncoder(subject_clip_vision, batch_size=batch_size)
    if background_scorer is not None:
        models.background = _scorer_parts(background_scorer, "background")[0]
    elif background_clip_vision is not None:
        models.background = ComfyClipVisionEncoder(background_clip_vision, batch_size=batch_size)
    if aesthetic_scorer is not None:
        models.aesthetic, models.aesthetic_head = _scorer_parts(aesthetic_scorer, "aesthetic")
        if models.aesthetic_head is None:
            models.unavailable["aesthetic_quality"] = (
                "the aesthetic SCORER has no LAION head; connect a Chunkwise Aesthetic Score node "
                "(CLIP ViT-L/14 + sa_0_4_vit_l_14_linear.pth from models/aesthetic)"
            )
    models.unavailable.setdefault(
        "motion_smoothness",
        "no frame-interpolation model: VBench rebuilds odd frames with AMT-S (amt-s.pth), which neither ComfyUI "
        "nor this pack provides; use the Python API (scorers.evaluation.EvalModels(interpolate=...)) to compute it",
    )
    return models


def resolve_run_folder(run_folder: str) -> Path:
    """A run folder path as given (absolute) or a run name inside ``output/chunkwise``."""
    text = run_folder.strip()
    path = Path(text).expanduser()
    return path if path.is_absolute() else runs_directory() / path


def _dino_choices() -> list[str]:
    """Files and transformers ``vit`` folders in models/clip_vision whose name says DINO (DINOv2 excluded:
    Load CLIP Vision loads those)."""
    found = []
    for base in folder_paths.get_folder_paths("clip_vision"):
        root = Path(base)
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            name = entry.name.lower()
            if "dino" in name and "dinov2" not in name and (entry.is_dir() or entry.suffix in WEIGHT_SUFFIXES):
                found.append(entry.name)
    return found or [NONE_FOUND]


def _progress():
    """A progress callback over the chunks (the bar is made at the first chunk, when their number is known);
    Cancel stops the evaluation between chunks."""
    bars = []

    def step(done: int, total: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if not bars:
            bars.append(comfy.utils.ProgressBar(max(1, total)))
        bars[0].update_absolute(done, max(1, total))

    return step


def _encoder_inputs() -> list:
    return [
        io.ClipVision.Input(
            "subject_clip_vision", optional=True,
            tooltip="Features for subject consistency. VBench uses DINO ViT-B/16 (connect Chunkwise Scorer (DINO) "
                    "to subject_scorer instead); a DINOv2 model from Load CLIP Vision is close but not VBench's "
                    "number (the JSON names the model used). Unconnected: left out.",
        ),
        SCORER.Input(
            "subject_scorer", optional=True,
            tooltip="A Chunkwise scorer whose encoder gives the subject features: Chunkwise Scorer (DINO) for "
                    "VBench's DINO ViT-B/16. Takes precedence over subject_clip_vision.",
        ),
        io.ClipVision.Input(
            "background_clip_vision", optional=True,
            tooltip="CLIP for background consistency and for the embedding drift. VBench uses OpenAI CLIP "
                    "ViT-B/32, which Load CLIP Vision cannot load: use background_scorer for VBench's number. A "
                    "bigger CLIP gives different (not comparable) numbers. Unconnected: left out.",
        ),
        SCORER.Input(
            "background_scorer", optional=True,
            tooltip="A Chunkwise scorer whose encoder is used for background consistency; VBench's is Chunkwise "
                    "Scorer (open_clip) with ViT-B-32 and pretrained_tag openai, or (transformers) with an "
                    "openai/clip-vit-base-patch32 folder. Takes precedence over background_clip_vision.",
        ),
        SCORER.Input(
            "aesthetic_scorer", optional=True,
            tooltip="A Chunkwise Aesthetic Score node (CLIP ViT-L/14 + LAION head): its encoder and head give "
                    "VBench's aesthetic quality. Unconnected: left out.",
        ),
    ]


class ChunkwiseScorerDino(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseScorerDINO",
            display_name="Chunkwise Scorer (DINO, VBench subject)",
            category="chunkwise/scoring",
            description="VBench's subject-consistency encoder: DINO ViT-B/16 with VBench's preprocessing (short "
                        "side 224, no crop, ImageNet mean/std), loaded from models/clip_vision: the file "
                        "dino_vitbase16_pretrain.pth (facebookresearch/dino, needs timm) or a transformers "
                        "facebook/dino-vitb16 folder. Gives a Subject Consistency SCORER; connect it to "
                        "Chunkwise Evaluate's subject_scorer for VBench's number, or use it as a verifier.",
            inputs=[
                io.Combo.Input(
                    "weights", options=_dino_choices(),
                    tooltip="dino_vitbase16_pretrain.pth (a file) or a facebook/dino-vitb16 folder in "
                            "models/clip_vision. Another DINO ViT (ViT-S/16, ViT-B/8) loads too but is not VBench's.",
                ),
                io.Boolean.Input(
                    "use_guide", default=True,
                    tooltip="As a verifier: score the chunk against its guide frame as VBench's first frame. "
                            "Chunkwise Evaluate uses only the encoder, so this does not change its numbers.",
                ),
            ],
            outputs=[SCORER.Output(display_name="scorer")],
        )

    @classmethod
    def execute(cls, weights, use_guide=True) -> io.NodeOutput:
        from ..scorers.dino import DINO_FILE, DinoEncoder
        from ..scorers.verifiers import SubjectConsistency
        from .scorer_nodes import _managed, _placement

        path = None
        for base in folder_paths.get_folder_paths("clip_vision"):
            if weights != NONE_FOUND and (Path(base) / weights).exists():
                path = Path(base) / weights
                break
        if path is None:
            raise FileNotFoundError(
                f"DINO weights {weights!r} not found in models/clip_vision ({folder_paths.get_folder_paths('clip_vision')}); "
                f"put {DINO_FILE} (facebookresearch/dino ViT-B/16) or a facebook/dino-vitb16 folder there and refresh"
            )
        device, dtype = _placement()
        encoder = _managed(DinoEncoder(path, device=device, dtype=dtype))
        return io.NodeOutput(SubjectConsistency(encoder, use_guide=use_guide))


class ChunkwiseEvaluate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseEvaluate",
            display_name="Chunkwise Evaluate (VBench per chunk)",
            category=CATEGORY,
            description="Measure a finished long video as the paper does (arXiv 2411.18668, Tables 1-3): VBench's "
                        "subject consistency, background consistency, temporal flickering, motion smoothness and "
                        "aesthetic quality, for the whole video, for each chunk and for the video truncated after "
                        "1..n chunks, plus each chunk's colour and embedding drift from the first image. A "
                        "dimension without its model is left out and the summary says which file it needs. "
                        "Outputs the chunkwise.eval/1 JSON, a chart and a summary.",
            inputs=[
                io.Image.Input("video", optional=True,
                               tooltip="The whole video (e.g. ChunkLoop's video output). Ignored when run_folder "
                                       "is set; a long high-resolution video needs its frames in memory, a run "
                                       "folder is read chunk by chunk."),
                io.String.Input("run_folder", default="", optional=True,
                                tooltip="A ChunkLoop run folder: its path, or its run name inside output/chunkwise. "
                                        "The chunk layout is read from the folder (frames_per_chunk and "
                                        "drop_first_frame are then ignored). Empty: evaluate video."),
                io.Int.Input("frames_per_chunk", default=25, min=1, max=10000,
                             tooltip="Frames each chunk had when generated (SVD 25, Wan 81, CogVideoX 49). Wrong "
                                     "values cut the video at the wrong places; the totals stay right."),
                io.Boolean.Input("drop_first_frame", default=True,
                                 tooltip="As ChunkLoop's drop_first_frame: later chunks have one frame fewer."),
                io.Image.Input("image", optional=True,
                               tooltip="The run's input image: the reference for the drift columns. Unconnected: "
                                       "the video's first frame (close to it for I2V models)."),
                *_encoder_inputs(),
                io.Int.Input("batch_size", default=16, min=1, max=256, optional=True,
                             tooltip="Frames encoded per forward pass for CLIP_VISION inputs. Larger is faster, "
                                     "smaller needs less memory."),
                io.String.Input("label", default="", optional=True,
                                tooltip="A name for this evaluation in the JSON, the charts and Chunkwise Compare "
                                        "(e.g. naive, search m=4). Empty: the run folder's name, or 'video'."),
            ],
            outputs=[
                io.String.Output("evaluation", tooltip="The evaluation, JSON format chunkwise.eval/1."),
                io.Image.Output("plot", tooltip="Each dimension against the chunk number; per chunk and cumulative."),
                io.String.Output("summary", tooltip="The readable summary also shown on the node."),
            ],
        )

    @classmethod
    def validate_inputs(cls, frames_per_chunk=None, batch_size=None):
        return widget_problem(cls, frames_per_chunk=frames_per_chunk, batch_size=batch_size) or True

    @classmethod
    def execute(cls, frames_per_chunk=25, drop_first_frame=True, video=None, run_folder="", image=None,
                subject_clip_vision=None, subject_scorer=None, background_clip_vision=None, background_scorer=None,
                aesthetic_scorer=None, batch_size=16, label="") -> io.NodeOutput:
        # 1. What to evaluate, with which models.
        models = eval_models(subject_clip_vision, subject_scorer, background_clip_vision, background_scorer,
                             aesthetic_scorer, batch_size)
        if run_folder and run_folder.strip():
            folder = resolve_run_folder(run_folder)
            if video is not None:
                log.info("chunkwise: evaluating the run folder %s; the video input is ignored", folder)
            evaluation = evaluate_run_folder(folder, models=models, image=image, label=label.strip() or None,
                                             progress=_progress())
        elif video is not None:
            evaluation = evaluate_video(video, frames_per_chunk, drop_first_frame=drop_first_frame, models=models,
                                        image=image, label=label.strip() or "video", progress=_progress())
        else:
            raise ChunkwiseError(
                "Chunkwise Evaluate got neither a video nor a run_folder; connect ChunkLoop's video output, or set "
                "run_folder to its run folder (ChunkLoop's run_folder output or the run name)"
            )
        comfy.model_management.soft_empty_cache()
        # 2. The JSON, the chart and the summary (also on the node).
        text = summarize_evaluation(evaluation)
        log.info("%s", text)
        return io.NodeOutput(dumps(evaluation), to_image_tensor(evaluation_chart(evaluation)), text,
                             ui={"text": [text]})


class ChunkwiseCompare(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ChunkwiseCompare",
            display_name="Chunkwise Compare Evaluations",
            category=CATEGORY,
            description="Compare two Chunkwise Evaluate results (e.g. a = naive, b = search at the same seed): for "
                        "every dimension both computed, b - a per chunk, per number of chunks and for the whole "
                        "video, as JSON (chunkwise.eval-compare/1), a chart (a and b per chunk, and the "
                        "difference as bars) and a summary.",
            inputs=[
                io.String.Input("a", force_input=True,
                                tooltip="The first evaluation (the baseline, e.g. naive chunk-by-chunk)."),
                io.String.Input("b", force_input=True,
                                tooltip="The second evaluation (e.g. with noise search); differences are b - a, "
                                        "so > 0 means b scores higher (for drift: b drifts more)."),
            ],
            outputs=[
                io.String.Output("comparison", tooltip="The comparison, JSON format chunkwise.eval-compare/1."),
                io.Image.Output("plot", tooltip="Per dimension: a and b per chunk, and b - a as bars."),
                io.String.Output("summary", tooltip="The readable summary also shown on the node."),
            ],
        )

    @classmethod
    def execute(cls, a, b) -> io.NodeOutput:
        comparison = compare_evaluations(a, b)
        text = summarize_comparison(comparison)
        log.info("%s", text)
        return io.NodeOutput(json.dumps(comparison, indent=2, allow_nan=False),
                             to_image_tensor(comparison_chart(comparison)), text, ui={"text": [text]})


EVAL_NODES = [ChunkwiseEvaluate, ChunkwiseCompare, ChunkwiseScorerDino]
