"""Image-encoder backends behind one interface.

Every backend takes images ``[N, H, W, C]`` float in 0..1 (ComfyUI IMAGE
layout), runs its own model's preprocessing, and returns L2-normalised float32
embeddings ``[N, D]`` on the model's device. Encoding runs without autograd
and in batches of ``batch_size`` images, so a 25-frame preview at 576x1024
never goes to the model in one piece.

Backends:

- :class:`ComfyClipVisionEncoder` wraps ComfyUI's CLIP_VISION object (duck
  typed: anything with ``encode_image(image)`` returning ``.image_embeds``);
  ComfyUI does the preprocessing and the device placement.
- :class:`OpenClipEncoder` builds an open_clip model by name and loads a local
  weights file (safetensors, or a torch pickle with ``weights_only=True``).
- :class:`TransformersEncoder` loads ``CLIPVisionModelWithProjection`` (or a
  DINOv2 model) from a local folder with ``local_files_only=True``.
- :class:`CallableEncoder` wraps any function (hand-made features in tests).

open_clip and transformers are imported inside the constructors only; a
missing package raises :class:`ImportError` that names the pip command.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..search.errors import ChunkwiseError
from ..search.images import to_pil

logger = logging.getLogger("chunkwise")

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageEncoder:
    """Base class: ``encode(images [N, H, W, C]) -> [N, D]`` L2-normalised, batched, no grad.

    Subclasses implement ``_embed(batch)`` for one batch (``[n, H, W, 3]`` on
    the CPU or wherever the frames are) and return raw embeddings ``[n, D]``.
    ``calls`` counts ``encode`` calls and ``images_encoded`` the images
    encoded, so tests and benchmarks can prove what is cached.

    ``before_encode`` (optional) runs before each ``encode``; hosts use it to
    let their memory manager load the model (ComfyUI: ``load_model_gpu``).
    """

    name = "encoder"

    def __init__(self, batch_size: int = 16, before_encode: Optional[Callable[[], None]] = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ChunkwiseError(
                f"batch_size must be an integer >= 1, got {batch_size!r}; use 8-32 (more: faster, more memory)"
            )
        self.batch_size = batch_size
        self.before_encode = before_encode
        self.calls = 0
        self.images_encoded = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        images = _check_images(images)
        self.calls += 1
        self.images_encoded += images.shape[0]
        if self.before_encode is not None:
            self.before_encode()
        outs = []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                emb = self._embed(images[start : start + self.batch_size])
                if emb.ndim != 2 or emb.shape[0] != min(self.batch_size, images.shape[0] - start):
                    raise ChunkwiseError(
                        f"encoder {self.describe()!r} returned embeddings of shape {list(emb.shape)} for "
                        f"{min(self.batch_size, images.shape[0] - start)} images; expected [N, D]"
                    )
                outs.append(emb.float())
        emb = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]
        return torch.nn.functional.normalize(emb, dim=-1)

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ChunkwiseError(f"images must be a torch.Tensor [N, H, W, 3], got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[-1] < 3:
        raise ChunkwiseError(
            f"images must have shape [N, H, W, 3] (ComfyUI IMAGE) in 0..1, got shape {list(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ChunkwiseError("images is an empty batch: nothing to encode")
    if not images.is_floating_point():
        raise ChunkwiseError(f"images must be float in 0..1, got dtype {images.dtype}; divide 8-bit images by 255")
    return images[..., :3]


def _module_place(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(module.parameters(), None)
    if param is None:
        return torch.device("cpu"), torch.float32
    return param.device, param.dtype


class CallableEncoder(ImageEncoder):
    """Any function ``[n, H, W, 3] -> [n, D]`` as an encoder (hand-made features, test stand-ins)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "callable", batch_size: int = 16):
        super().__init__(batch_size)
        self.fn = fn
        self.name = name

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        return self.fn(batch)


class ComfyClipVisionEncoder(ImageEncoder):
    """ComfyUI's CLIP_VISION (``comfy.clip_vision.ClipVisionModel``), duck typed.

    Preprocessing is ComfyUI's own ``clip_preprocess``: with ``crop=True``
    (ComfyUI's default) a non-square frame is resized so its short side is the
    model's image size (bicubic, antialiased) and centre-cropped to a square,
    so the outer parts of the long side are not seen; with ``crop=False`` it is
    squashed to a square. ComfyUI loads the model onto its device per call and
    returns the embeddings on its intermediate device. For a DINOv2
    CLIP_VISION, ``image_embeds`` is the pooled class token.
    """

    def __init__(self, clip_vision: Any, crop: bool = True, batch_size: int = 16, name: Optional[str] = None):
        super().__init__(batch_size)
        if not callable(getattr(clip_vision, "encode_image", None)):
            raise ChunkwiseError(
                f"expected a CLIP_VISION object with encode_image(image), got {type(clip_vision).__name__}; "
                "connect a Load CLIP Vision node"
            )
        self.clip_vision = clip_vision
        self.crop = bool(crop)
        self.name = name or f"comfy-clip-vision({type(clip_vision).__name__})"

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.clip_vision.encode_image(batch) if self.crop else self.clip_vision.encode_image(batch, crop=False)
        emb = getattr(out, "image_embeds", None)
        if emb is None:
            raise ChunkwiseError(
                f"{type(self.clip_vision).__name__}.encode_image returned {type(out).__name__} without "
                "image_embeds; expected ComfyUI's CLIP vision output"
            )
        return emb

    def describe(self) -> str:
        return self.name + ("" if self.crop else " crop=False")


# ---------------------------------------------------------------- weights files


def load_weights_file(path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` (safetensors) or a torch pickle (``weights_only=True``).

    Unwraps a ``state_dict``/``model`` entry and a ``module.`` prefix. A
    missing file raises FileNotFoundError naming the path and where to put it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file not found: {str(path)!r}; put the file there (ComfyUI: models/clip_vision/) "
            "and pick it in the node"
        )
    if path.suffix.lower() in (".safetensors", ".sft"):
        from safetensors.torch import load_file

        sd = load_file(str(path), device="cpu")
    else:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:  # a TorchScript archive or a pickle with code in it
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
            reason = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0])[:300]
            raise ChunkwiseError(
                f"could not load {str(path)!r} with torch.load(weights_only=True) ({reason}); "
                "use a .safetensors file or a plain state-dict checkpoint (not a TorchScript/JIT archive)"
            ) from e
    for key in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ChunkwiseError(f"{str(path)!r} does not hold a state dict of tensors (got {type(sd).__name__})")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _import_or_explain(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"this scorer needs the package {pip_name!r}, which is not installed ({e}); "
            f"install it into ComfyUI's Python with: pip install {pip_name}"
        ) from e


# ---------------------------------------------------------------- open_clip

# The preprocessing settings open_clip keeps per pretrained tag (open_clip/pretrained.py), not per model config.
_TAG_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")
# Vision settings that do not change the weights' layout or the forward pass at inference.
_VISION_CFG_IGNORED = ("timm_model_pretrained", "patch_dropout", "output_tokens", "timm_drop", "timm_drop_path")
OPEN_CLIP_CONFIG_FILE = "open_clip_config.json"


def _same_vision(open_clip_model, a: dict, b: dict) -> bool:
    """Whether two open_clip model configs describe the same image tower (defaults filled in, sizes as pairs)."""
    from dataclasses import asdict, fields

    cfg_cls = open_clip_model.CLIPVisionCfg
    known = {f.name for f in fields(cfg_cls)}

    def norm(cfg: dict):
        vision = cfg.get("vision_cfg") or {}
        try:
            full = asdict(cfg_cls(**{k: v for k, v in vision.items() if k in known}))
        except TypeError:
            return None
        for key in _VISION_CFG_IGNORED:
            full.pop(key, None)
        for key, value in full.items():
            if isinstance(value, list):
                full[key] = tuple(value)
        size = full.get("image_size")
        full["image_size"] = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
        return cfg.get("embed_dim"), full

    left = norm(a)
    return left is not None and left == norm(b)


class OpenClipEncoder(ImageEncoder):
    """An open_clip image tower by model name, with weights from a local file.

    ``model_name`` is an open_clip config name (``ViT-L-14``, ``ViT-B-32``,
    ``ViT-H-14`` ...) or a path to a config ``.json`` (registered with
    ``open_clip.add_model_config``). Only the image tower is built (open_clip's
    ``_build_vision_tower`` from the model config), so a config whose text tower
    is a Hugging Face model (``xlm-roberta-*``, ``roberta-*``, ``mt5-*``,
    ``nllb-*``) builds offline and ViT-bigG does not build ~700M unused text
    parameters. ``weights`` is a full open_clip CLIP checkpoint (only its
    ``visual.*`` tensors are read) or an image-tower-only state dict, loaded
    with safetensors or ``torch.load(weights_only=True)``; ``None`` keeps random
    weights (only for tests and benchmarks: the scores then mean nothing).

    open_clip keeps mean/std, interpolation, resize mode and QuickGELU per
    *pretrained tag*, not per model config, so they come from, in order:

    1. ``pretrained_tag`` (``"openai"``, ``"laion2b_s32b_b82k"``, ``"webli"``
       ...; ``open_clip.list_pretrained_tags_by_model(model_name)``): that
       tag's settings, and QuickGELU where the tag was trained with it (OpenAI
       weights). An unknown tag is refused with the model's tags listed.
    2. ``open_clip_config.json`` next to the weights file (Hugging Face
       open_clip repositories ship it): its ``preprocess_cfg`` and its
       ``model_cfg``'s ``quick_gelu``, if its ``model_cfg`` describes the same
       image tower (otherwise it is ignored with a warning).
    3. The model's pretrained tags, when they all agree (SigLIP, the
       ``-quickgelu`` names ...).
    4. The model config's own defaults (OpenAI mean/std, bicubic,
       ``shortest``), with a logged warning naming ``pretrained_tag``.

    The merged settings go to open_clip's own eval transform
    (``image_transform_v2``), run on tensors in batches. What a non-square
    frame becomes, per resize mode:

    - ``shortest`` (OpenAI, LAION, DFN, MetaCLIP ...): resized so its short
      side is the model's image size, then centre-cropped to a square; the
      outer parts of the long side are not seen.
    - ``squash`` (SigLIP, CLIPA, PE ...): resized to a square ignoring the
      aspect ratio; the whole frame is seen, stretched.
    - ``longest``: resized so its long side is the image size, then padded to
      a square with black bars; the whole frame is seen, smaller (this mode
      runs open_clip's PIL path, frame by frame, on 8-bit frames).

    Frames are not rounded to 8 bits first otherwise (open_clip's PIL path
    does), a difference far below CLIP's sensitivity.
    """

    def __init__(
        self,
        model_name: str,
        weights=None,
        *,
        device=None,
        dtype: Optional[torch.dtype] = None,
        batch_size: int = 16,
        before_encode: Optional[Callable[[], None]] = None,
        pretrained_tag: Optional[str] = None,
    ) -> None:
        super().__init__(batch_size, before_encode)
        open_clip = _import_or_explain("open_clip", "open_clip_torch")
        from open_clip.transform import PreprocessCfg, ResizeKeepRatio, image_transform_v2, merge_preprocess_dict

        # 1. Resolve the config: a registered name, a .json file or a local-dir: folder; never the network.
        name = str(model_name)
        sidecar = None if weights is None else Path(weights).parent / OPEN_CLIP_CONFIG_FILE
        if name.startswith("hf-hub:"):
            raise ChunkwiseError(
                f"open_clip model {name!r} would be fetched from the Hugging Face Hub, which this scorer never "
                f"does; download the repository's {OPEN_CLIP_CONFIG_FILE} and open_clip_model.safetensors into "
                "models/clip_vision and pick the architecture name (e.g. ViT-L-14)"
            )
        if name.startswith("local-dir:"):
            sidecar = Path(name[len("local-dir:") :]) / OPEN_CLIP_CONFIG_FILE
            if not sidecar.is_file():
                raise FileNotFoundError(f"open_clip config file not found: {str(sidecar)!r}")
        elif name.lower().endswith(".json"):
            if not os.path.isfile(name):
                raise FileNotFoundError(f"open_clip config file not found: {name!r}")
            open_clip.add_model_config(name)
            name = Path(name).stem
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            close = [m for m in open_clip.list_models() if name.lower().split("-")[0] in m.lower()][:10]
            raise ChunkwiseError(
                f"open_clip has no model config {name!r}; pick one of open_clip.list_models(), e.g. {close or 'ViT-L-14'}"
            )
        # 2. Preprocessing and QuickGELU: tag, open_clip_config.json, the model's tags, defaults.
        overlay, quick_gelu, source = self._pretrained_settings(
            open_clip, name, model_cfg, pretrained_tag, sidecar, weights
        )
        # 3. Build the image tower alone on the CPU, load its weights.
        sd = None
        if weights is not None:
            sd = _read_open_clip_visual(weights)
        else:
            logger.warning("open_clip %s has random weights (no weights file given): its scores mean nothing", name)
        visual = _build_open_clip_image_tower(open_clip, model_cfg, quick_gelu=quick_gelu)
        if sd is not None:
            self._load_visual(visual, sd, name, weights)
        visual.eval().requires_grad_(False)
        visual.to(device=device or "cpu", dtype=dtype or torch.float32)
        self.model = visual
        # 4. open_clip's own eval transform for the merged settings, at the tower's input size.
        merged = merge_preprocess_dict(PreprocessCfg(), model_cfg.get("preprocess_cfg") or {})
        merged = merge_preprocess_dict(merged, overlay)
        if getattr(visual, "image_size", None) is not None:
            merged["size"] = visual.image_size
        self.preprocess_cfg = dict(merged)
        self.quick_gelu = quick_gelu
        self.preprocess_source = source
        self.transform = image_transform_v2(PreprocessCfg(**merged), is_train=False)
        self._tensor_ok = not any(isinstance(t, ResizeKeepRatio) for t in getattr(self.transform, "transforms", []))
        self.model_name = name
        self.pretrained_tag = (pretrained_tag or "").strip() or None
        self.weights_name = None if weights is None else Path(weights).name
        self.name = f"open_clip {name}" + (f" ({self.weights_name})" if self.weights_name else " (random)")

    @staticmethod
    def _pretrained_settings(open_clip, name: str, model_cfg: dict, tag, sidecar, weights):
        """``(preprocess overlay, quick_gelu, where they came from)`` for the model (see the class docstring)."""
        from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

        own_quick_gelu = bool(model_cfg.get("quick_gelu", False))
        tags = list_pretrained_tags_by_model(name)
        tag = (tag or "").strip()
        if tag:
            cfg = get_pretrained_cfg(name, tag)
            if not cfg:
                hint = (
                    f"one of {tags}"
                    if tags
                    else f"empty (open_clip knows no tags for {name!r}; put the checkpoint's {OPEN_CLIP_CONFIG_FILE} "
                    "next to the weights file instead)"
                )
                raise ChunkwiseError(f"open_clip {name!r} has no pretrained tag {tag!r}; set pretrained_tag to {hint}")
            overlay = {k: cfg[k] for k in _TAG_PREPROCESS_KEYS if k in cfg}
            tag_quick_gelu = bool(cfg.get("quick_gelu", False))
            if own_quick_gelu and not tag_quick_gelu:
                logger.warning(
                    "open_clip %s uses QuickGELU but its tag %r was trained with GELU: pick the model name without "
                    "-quickgelu",
                    name,
                    tag,
                )
            return overlay, own_quick_gelu or tag_quick_gelu, f"pretrained tag {tag!r}"
        if sidecar is not None and sidecar.is_file():
            try:
                config = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                config = None
                logger.warning("open_clip %s: could not read %s (%s); ignoring it", name, sidecar, e)
            if isinstance(config, dict):
                other = config.get("model_cfg")
                if isinstance(other, dict) and not _same_vision(open_clip.model, other, model_cfg):
                    logger.warning(
                        "open_clip %s: ignoring %s, which describes another image tower (embed_dim %s, vision_cfg "
                        "%s); set pretrained_tag or keep each checkpoint in its own folder with its own config",
                        name,
                        sidecar,
                        other.get("embed_dim"),
                        other.get("vision_cfg"),
                    )
                else:
                    overlay = dict(config.get("preprocess_cfg") or {})
                    quick_gelu = own_quick_gelu or bool((other or {}).get("quick_gelu", False))
                    return overlay, quick_gelu, str(sidecar)
        if tags:
            settings = set()
            for t in tags:
                cfg = get_pretrained_cfg(name, t)
                same = tuple(
                    (k, tuple(cfg[k]) if isinstance(cfg[k], list) else cfg[k]) for k in _TAG_PREPROCESS_KEYS if k in cfg
                )
                settings.add(same + (("quick_gelu", bool(cfg.get("quick_gelu", False))),))
            if len(settings) == 1:
                cfg = dict(settings.pop())
                tag_quick_gelu = bool(cfg.pop("quick_gelu"))
                quick_gelu = own_quick_gelu or tag_quick_gelu
                logger.info("open_clip %s: all its pretrained tags %s share the preprocessing %s", name, tags, cfg)
                return cfg, quick_gelu, f"the pretrained tags {tags}"
        if weights is not None:
            logger.warning(
                "open_clip %s: no pretrained_tag and no %s next to %s: using the model config's defaults (OpenAI "
                "mean/std, bicubic, short side resized + centre crop, %s). Checkpoints trained otherwise (LAION "
                "ViT-L-14 laion2b: mean 0.5; OpenAI weights: QuickGELU) score wrongly with them: set pretrained_tag "
                "to the checkpoint's tag%s",
                name,
                OPEN_CLIP_CONFIG_FILE,
                Path(weights).name,
                "QuickGELU" if own_quick_gelu else "GELU",
                f" (one of {tags})" if tags else "",
            )
        return {}, own_quick_gelu, "defaults"

    @staticmethod
    def _load_visual(visual: torch.nn.Module, sd: dict, name: str, weights) -> None:
        if any(k.startswith("visual.") for k in sd):
            sd = {k[len("visual.") :]: v for k, v in sd.items() if k.startswith("visual.")}
        elif any(k.startswith("vision_model.") for k in sd):
            raise ChunkwiseError(
                f"{str(weights)!r} is a transformers/ComfyUI CLIP vision checkpoint (vision_model.* keys), "
                "not an open_clip one; load it with ComfyUI's Load CLIP Vision node and use "
                "ChunkwiseScorerClipVision, or pick an open_clip checkpoint (open_clip_model.safetensors)"
            )
        own = visual.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        resized = [
            f"{k} {list(sd[k].shape)} vs {list(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape
        ]
        if missing or unexpected or resized:
            raise ChunkwiseError(
                f"{str(weights)!r} does not fit open_clip {name!r}: {len(missing)} missing keys "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
                f"{len(resized)} with other shapes (e.g. {resized[:2]}); "
                "pick the model name the checkpoint was trained as"
            )
        visual.load_state_dict(sd, strict=True)

    def _preprocess(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.movedim(-1, 1).float().clamp(0, 1)  # [n, 3, H, W]
        if self._tensor_ok:
            return self.transform(x)
        return torch.stack([self.transform(to_pil(f)) for f in x.movedim(1, -1)])

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        device, dtype = _module_place(self.model)
        pixels = self._preprocess(batch.to(device)).to(device=device, dtype=dtype)
        out = self.model(pixels)
        return out[0] if isinstance(out, (tuple, list)) else out  # CoCa towers also return their tokens


def _build_open_clip_image_tower(open_clip, model_cfg: dict, quick_gelu: bool = False) -> torch.nn.Module:
    """open_clip's image tower alone, as ``CLIP``/``CustomTextCLIP``/``CoCa`` build it; no text tower, no download."""
    try:
        from open_clip.model import _build_vision_tower
    except ImportError as e:
        raise ImportError(
            f"this open_clip_torch ({getattr(open_clip, '__version__', '?')}) lacks open_clip.model._build_vision_tower; "
            "update it with: pip install -U open_clip_torch"
        ) from e
    vision_cfg = dict(model_cfg["vision_cfg"])
    if vision_cfg.get("timm_model_name"):
        _import_or_explain("timm", "timm")
        vision_cfg["timm_model_pretrained"] = False  # timm's own weights would be downloaded, then overwritten
    return _build_vision_tower(model_cfg["embed_dim"], vision_cfg, quick_gelu=bool(quick_gelu), cast_dtype=None)


def _read_open_clip_visual(weights) -> dict[str, torch.Tensor]:
    """The image tower's tensors of an open_clip checkpoint: a safetensors file's ``visual.*`` tensors are read
    alone (a full ViT-bigG checkpoint's text tower stays on disk); anything else goes through load_weights_file."""
    path = Path(weights)
    if path.is_file() and path.suffix.lower() in (".safetensors", ".sft"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            strip = len("module.") if keys and all(k.startswith("module.") for k in keys) else 0
            wanted = [k for k in keys if k[strip:].startswith("visual.")]
            if wanted:
                return {k[strip:]: f.get_tensor(k) for k in wanted}
    return load_weights_file(path)


# ---------------------------------------------------------------- transformers


class TransformersEncoder(ImageEncoder):
    """A transformers vision model from a local folder (``local_files_only=True``).

    CLIP folders (``clip_vision_model`` or a full ``clip`` config) load as
    ``CLIPVisionModelWithProjection`` and give ``image_embeds``; DINOv2 folders
    (``dinov2``) load as ``Dinov2Model`` and give the pooled class token.
    Weights are read by transformers (``model.safetensors``, or ``.bin`` with
    ``weights_only``); a full CLIP folder's text tower is skipped, and a folder
    that lacks some of the model's weights (a ``CLIPVisionModel`` folder has no
    projection) is refused rather than run with random ones.

    Preprocessing is the folder's own image processor
    (``preprocessor_config.json`` via ``AutoImageProcessor``): for CLIP,
    resize the short side to the crop size (bicubic) and centre-crop, so a
    non-square frame loses the outer parts of its long side; rescaling is
    skipped because frames are already 0..1. A folder without a processor
    config gets CLIP's (or, for DINOv2, ImageNet's) mean/std with resize and
    centre crop at the model's image size, and a logged warning.
    """

    def __init__(
        self,
        folder,
        *,
        device=None,
        dtype: Optional[torch.dtype] = None,
        batch_size: int = 16,
        before_encode: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(batch_size, before_encode)
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"no transformers model folder at {str(folder)!r} (config.json missing); put the model folder "
                "(config.json, model.safetensors, preprocessor_config.json) under ComfyUI's models/clip_vision/"
            )
        transformers = _import_or_explain("transformers", "transformers")
        # 1. Pick the model class from the config.
        model_type = json.loads((folder / "config.json").read_text()).get("model_type", "")
        if model_type in ("clip", "clip_vision_model"):
            model_cls, self._output = transformers.CLIPVisionModelWithProjection, "image_embeds"
            mean, std = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
        elif model_type == "dinov2":
            model_cls, self._output = transformers.Dinov2Model, "pooler_output"
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            raise ChunkwiseError(
                f"{str(folder)!r} holds a {model_type!r} model; expected a CLIP vision ('clip_vision_model', "
                "'clip') or DINOv2 ('dinov2') folder"
            )
        # 2. Load it locally. A full CLIP folder keeps projection_dim at the top level of its config, where
        #    CLIPVisionConfig does not look: hand it over, or the projection would be re-initialised.
        kwargs = {}
        if model_type == "clip":
            full = transformers.CLIPConfig.from_pretrained(str(folder), local_files_only=True)
            vision = full.vision_config
            vision.projection_dim = full.projection_dim
            kwargs["config"] = vision
        model, info = model_cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True, **kwargs)
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ChunkwiseError(
                f"{str(folder)!r} lacks {len(missing)} weights of its {model_cls.__name__} (e.g. {missing[:3]}), "
                "which would be random; use the complete model folder (model.safetensors or pytorch_model.bin)"
            )
        model.eval().requires_grad_(False)
        model.to(device=device or "cpu", dtype=dtype or torch.float32)
        self.model = model
        # 3. Its own image processor.
        if (folder / "preprocessor_config.json").is_file():
            self.processor = transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
        else:
            size = getattr(getattr(model.config, "vision_config", model.config), "image_size", 224)
            logger.warning(
                "%s has no preprocessor_config.json: using resize + centre crop to %d with mean %s, std %s",
                folder,
                size,
                mean,
                std,
            )
            self.processor = transformers.CLIPImageProcessor(
                size={"shortest_edge": size},
                crop_size={"height": size, "width": size},
                image_mean=list(mean),
                image_std=list(std),
            )
        self.model_type = model_type
        self.name = f"transformers {model_type} ({folder.name})"

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        device, dtype = _module_place(self.model)
        x = batch.movedim(-1, 1).float().clamp(0, 1)
        pixels = self.processor(images=x, return_tensors="pt", do_rescale=False)["pixel_values"]
        out = self.model(pixel_values=pixels.to(device=device, dtype=dtype))
        return getattr(out, self._output)
