"""DINO ViT features with VBench's preprocessing: the encoder of VBench's subject consistency.

VBench (``vbench/subject_consistency.py``) loads ``dino_vitb16`` from
facebookresearch/dino and feeds it ``dino_transform(224)`` frames
(``vbench/utils.py``: the short side resized to 224, no crop, ImageNet mean/std);
the feature is the class token after the final norm. :class:`DinoEncoder` does
the same from a local file, never the network:

- a DINO checkpoint file (``dino_vitbase16_pretrain.pth``, safetensors or a
  plain state dict read with ``weights_only=True``): built as timm's
  ``VisionTransformer``, whose weight names are DINO's own (the architecture
  is read from the tensors' shapes, so ViT-S/16 and ViT-B/8 load too);
- a transformers folder of a ``vit`` model (``facebook/dino-vitb16``): built
  as ``ViTModel`` with ``local_files_only=True``.

Non-square frames keep their aspect ratio, so the position embeddings are
resampled to the frame's patch grid (timm: ``dynamic_img_size``, bicubic;
transformers: ``interpolate_pos_encoding``), as DINO's ``interpolate_pos_encoding``
does, up to that resampling's rounding; pixels beyond the last whole patch are
dropped, as DINO's stride-16 patch convolution drops them.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable, Optional

import torch

from ..search.errors import ChunkwiseError
from .encoders import ImageEncoder, _import_or_explain, _module_place, load_weights_file
from .vbench import DINO_SIZE, dino_preprocess

logger = logging.getLogger("chunkwise")

DINO_FILE = "dino_vitbase16_pretrain.pth"
"""VBench's DINO weights (facebookresearch/dino's ViT-B/16 backbone)."""


def _vit_arch(sd: dict[str, torch.Tensor], source: str) -> dict:
    """timm VisionTransformer arguments read from a DINO state dict's shapes."""
    need = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")
    missing = [k for k in need if k not in sd]
    if missing:
        raise ChunkwiseError(
            f"{source} is not a DINO ViT checkpoint: it lacks {missing} (keys: {list(sd)[:5]}); expected "
            f"facebookresearch/dino's backbone weights, e.g. {DINO_FILE}"
        )
    embed_dim = int(sd["cls_token"].shape[-1])
    patch = int(sd["patch_embed.proj.weight"].shape[-1])
    grid = math.isqrt(int(sd["pos_embed"].shape[1]) - 1)
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    hidden = int(sd["blocks.0.mlp.fc1.weight"].shape[0])
    return {
        "img_size": grid * patch,
        "patch_size": patch,
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": max(1, embed_dim // 64),
        "mlp_ratio": hidden / embed_dim,
    }


class DinoEncoder(ImageEncoder):
    """A DINO ViT (VBench: ViT-B/16) from a local checkpoint file or transformers folder; see the module docstring.

    ``num_heads`` overrides the head count read from the file (DINO's ViTs use
    64-dim heads; a checkpoint of another layout needs it).
    """

    def __init__(
        self,
        path,
        *,
        device=None,
        dtype: Optional[torch.dtype] = None,
        batch_size: int = 16,
        before_encode: Optional[Callable[[], None]] = None,
        num_heads: Optional[int] = None,
    ) -> None:
        super().__init__(batch_size, before_encode)
        path = Path(path)
        if path.is_dir():
            self.model, self._backend = self._from_folder(path), "transformers"
        elif path.is_file():
            self.model, self._backend = self._from_file(path, num_heads), "timm"
        else:
            raise FileNotFoundError(
                f"DINO weights not found: {str(path)!r}; put VBench's {DINO_FILE} (facebookresearch/dino ViT-B/16) "
                "or a transformers facebook/dino-vitb16 folder there"
            )
        self.model.eval().requires_grad_(False)
        self.model.to(device=device or "cpu", dtype=dtype or torch.float32)
        self.size = DINO_SIZE
        self.name = f"dino {self._backend} ({path.name})"

    @staticmethod
    def _from_file(path: Path, num_heads: Optional[int]) -> torch.nn.Module:
        _import_or_explain("timm", "timm")
        from timm.models.vision_transformer import VisionTransformer

        sd = load_weights_file(path)
        arch = _vit_arch(sd, repr(str(path)))
        if num_heads:
            arch["num_heads"] = int(num_heads)
        model = VisionTransformer(num_classes=0, global_pool="token", dynamic_img_size=True, **arch)
        own = model.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        if missing or unexpected:
            raise ChunkwiseError(
                f"{str(path)!r} does not fit a DINO ViT ({arch}): {len(missing)} missing keys (e.g. {missing[:3]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); use facebookresearch/dino's backbone "
                f"weights such as {DINO_FILE}"
            )
        model.load_state_dict(sd, strict=True)
        return model

    @staticmethod
    def _from_folder(folder: Path) -> torch.nn.Module:
        config = folder / "config.json"
        if not config.is_file():
            raise FileNotFoundError(
                f"no transformers model folder at {str(folder)!r} (config.json missing); put facebook/dino-vitb16 "
                f"(config.json, model.safetensors) there, or give VBench's {DINO_FILE} file instead"
            )
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type", "")
        if model_type != "vit":
            raise ChunkwiseError(
                f"{str(folder)!r} holds a {model_type!r} model; a DINO folder is a 'vit' model "
                "(facebook/dino-vitb16). DINOv2 and CLIP folders load with TransformersEncoder"
            )
        transformers = _import_or_explain("transformers", "transformers")
        model, info = transformers.ViTModel.from_pretrained(
            str(folder), local_files_only=True, add_pooling_layer=False, output_loading_info=True
        )
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ChunkwiseError(
                f"{str(folder)!r} lacks {len(missing)} weights of its ViTModel (e.g. {missing[:3]}), which would "
                "be random; use the complete model folder"
            )
        return model

    def _patch_size(self) -> int:
        if self._backend == "transformers":
            return int(self.model.config.patch_size)
        size = self.model.patch_embed.patch_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        device, dtype = _module_place(self.model)
        pixels = dino_preprocess(batch.to(device), self.size).to(dtype)
        # DINO's patch convolution drops the pixels right of and below the last whole patch; so does this crop.
        patch = self._patch_size()
        pixels = pixels[..., : pixels.shape[-2] // patch * patch, : pixels.shape[-1] // patch * patch]
        if self._backend == "transformers":
            out = self.model(pixel_values=pixels, interpolate_pos_encoding=True)
            return out.last_hidden_state[:, 0]
        return self.model(pixels)


__all__ = ["DINO_FILE", "DinoEncoder"]
