"""The open_clip image-encoder backend: an open_clip model by name with a local weights file.

Only the image tower is built, so checkpoints whose text tower is a Hugging Face model load offline.
Preprocessing (mean/std, resize mode, QuickGELU) follows the checkpoint: its ``pretrained_tag``, an
``open_clip_config.json`` beside the weights, or the settings all of the model's tags share.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Optional

import torch

from ..search.errors import ChunkwiseError
from ..search.images import to_pil
from .encoders import (
    ImageEncoder,
    _import_or_explain,
    _module_place,
    load_weights_file,
)

logger = logging.getLogger("chunkwise")

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
