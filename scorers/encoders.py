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
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..search.errors import ChunkwiseError

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
