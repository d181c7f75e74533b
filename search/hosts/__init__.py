"""diffusers as a host of the search engine: image-to-video pipelines as ``I2VDenoiser``.

Supported pipelines (diffusers' own classes, loaded from a local folder):

==================================  ================  ==========================================
pipeline class                      family            conditioning computed once per chunk
==================================  ================  ==========================================
StableVideoDiffusionPipeline        ``svd``           CLIP image embedding, VAE image latent
CogVideoXImageToVideoPipeline       ``cogvideox``     VAE image latent (+ T5 text, once per run)
WanImageToVideoPipeline             ``wan``           CLIP hidden states, masked VAE latent (+ text)
LTXImageToVideoPipeline             ``ltx``           sampled VAE latent as the first frame (+ text)
HunyuanVideo15ImageToVideoPipeline  ``hunyuan15``     SigLIP hidden states, masked VAE latent (+ text)
Kandinsky5I2VPipeline               ``kandinsky5``    sampled VAE latent as the first frame (+ text)
==================================  ================  ==========================================

Each denoiser runs its own loop over the pipeline's components, so a run can
stop after k steps and resume exactly, exposes the x0 prediction for previews,
and matches the stock pipeline call for the same initial noise and seed.
Importing this module is cheap: diffusers is imported when a model is loaded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..errors import ChunkwiseError
from .base import DiffusersCond, DiffusersDenoiser, ResumeState, require_diffusers

log = logging.getLogger("chunkwise")

PIPELINE_FAMILIES = {
    "StableVideoDiffusionPipeline": "svd",
    "CogVideoXImageToVideoPipeline": "cogvideox",
    "WanImageToVideoPipeline": "wan",
    "LTXImageToVideoPipeline": "ltx",
    "HunyuanVideo15ImageToVideoPipeline": "hunyuan15",
    "Kandinsky5I2VPipeline": "kandinsky5",
}
"""diffusers pipeline class name -> family name."""

DEFAULT_DTYPES = {"svd": "float16", "cogvideox": "bfloat16", "wan": "bfloat16", "ltx": "bfloat16",
                  "hunyuan15": "bfloat16", "kandinsky5": "bfloat16"}
"""The dtype each family's weights are published in, used on accelerators when none is asked for."""

_DTYPE_NAMES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
                "bf16": "bfloat16", "bfloat16": "bfloat16"}


def _denoiser_class(family: str):
    if family == "svd":
        from .svd import SVDDenoiser

        return SVDDenoiser
    if family == "cogvideox":
        from .cogvideox import CogVideoXDenoiser

        return CogVideoXDenoiser
    if family == "wan":
        from .wan import WanDenoiser

        return WanDenoiser
    if family == "ltx":
        from .ltx import LTXDenoiser

        return LTXDenoiser
    if family == "hunyuan15":
        from .hunyuan15 import HunyuanVideo15Denoiser

        return HunyuanVideo15Denoiser
    if family == "kandinsky5":
        from .kandinsky5 import Kandinsky5Denoiser

        return Kandinsky5Denoiser
    raise ChunkwiseError(f"unknown family {family!r}; expected one of {sorted(set(PIPELINE_FAMILIES.values()))}")


def pipeline_class_name(model_dir: Union[str, Path]) -> str:
    """The ``_class_name`` of a diffusers folder's ``model_index.json``, with clear errors."""
    return _model_index(model_dir).get("_class_name")


def _absent_components(model_dir: Union[str, Path]) -> list[str]:
    """Components the folder was saved without (``[null, null]`` in model_index.json, e.g. no tokenizer)."""
    index = _model_index(model_dir)
    return [k for k, v in index.items() if not k.startswith("_") and (v is None or v == [None, None])]


def _model_index(model_dir: Union[str, Path]) -> dict:
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise ChunkwiseError(
            f"model folder {str(path)!r} does not exist; pass a local diffusers folder (one with model_index.json), "
            "e.g. one saved by pipe.save_pretrained() or downloaded with huggingface-cli download"
        )
    if not path.is_dir():
        raise ChunkwiseError(f"model path {str(path)!r} is a file, expected a diffusers folder with model_index.json")
    index = path / "model_index.json"
    if not index.is_file():
        raise ChunkwiseError(
            f"model folder {str(path)!r} has no model_index.json, so it is not a diffusers pipeline folder; "
            "point --model at the folder that holds model_index.json"
        )
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChunkwiseError(f"cannot read {str(index)!r}: {exc}; the file must be JSON with a '_class_name'") from exc
    name = data.get("_class_name") if isinstance(data, dict) else None
    if name not in PIPELINE_FAMILIES:
        raise ChunkwiseError(
            f"unknown pipeline type {name!r} in {str(index)!r}; chunkwise drives image-to-video pipelines "
            f"{sorted(PIPELINE_FAMILIES)}"
        )
    return data


def resolve_dtype(dtype: Optional[Any], family: str, device: Any):
    """``None``/"auto" -> the family's published dtype on an accelerator, float32 on the CPU."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if torch.device(device).type == "cpu":
            return torch.float32
        dtype = DEFAULT_DTYPES[family]
    name = _DTYPE_NAMES.get(str(dtype).lower())
    if name is None:
        raise ChunkwiseError(f"unknown dtype {dtype!r}; use one of auto, fp32, fp16, bf16")
    return getattr(torch, name)


def default_device():
    """The first accelerator torch sees, else the CPU (for the command line; ComfyUI passes its own)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_devices() -> list[str]:
    """The torch devices this machine can run on: ``cpu``, then each CUDA device, ``mps`` and ``xpu`` if present."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found += [f"xpu:{i}" for i in range(xpu.device_count())]
    return found


def check_device(device: Any):
    """``device`` as a ``torch.device`` if this machine has it, else an error naming what it has.

    ``None`` stays ``None`` (the caller picks the default). CUDA, XPU and MPS
    are checked before any weights load, so a wrong ``--device`` fails at once
    with what is available instead of a driver traceback after loading.
    """
    import torch

    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ChunkwiseError(
            f"device {str(device)!r} is not a torch device name ({exc}); use one of "
            f"{', '.join(available_devices())}"
        ) from exc
    available = available_devices()
    if dev.type == "cpu":
        return dev
    if dev.type in ("cuda", "xpu"):
        backend = torch.cuda if dev.type == "cuda" else getattr(torch, "xpu", None)
        count = backend.device_count() if backend is not None and backend.is_available() else 0
        if count and (dev.index is None or dev.index < count):
            return dev
        what = (f"this machine has {count} {dev.type.upper()} device(s)" if count
                else f"{dev.type.upper()} is not available to this torch build (no device or no driver)")
    elif dev.type == "mps":
        if "mps" in available:
            return dev
        what = "MPS (Apple GPU) is not available here"
    else:  # other backends (DirectML's privateuseone, ...) cannot be probed here: torch reports on first use
        return dev
    raise ChunkwiseError(
        f"device {str(device)!r} was asked for, but {what}; available: {', '.join(available)}. "
        "Pass one of those (or leave the device out to use the first accelerator)"
    )


def _dtype_keyword() -> str:
    """``dtype`` for diffusers releases that renamed ``torch_dtype`` (and warn on it), else ``torch_dtype``."""
    try:
        from diffusers.utils import deprecation_utils
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def pipeline_bytes(pipe) -> int:
    """Bytes of every torch module's parameters and buffers in a pipeline."""
    import torch

    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in (*component.parameters(), *component.buffers()))
    return total


def from_pipeline(pipe, **options) -> DiffusersDenoiser:
    """Wrap an already loaded diffusers pipeline; ``options`` go to the family's denoiser."""
    name = type(pipe).__name__
    family = PIPELINE_FAMILIES.get(name)
    if family is None:
        for base in type(pipe).__mro__:
            family = PIPELINE_FAMILIES.get(base.__name__)
            if family:
                break
    if family is None:
        raise ChunkwiseError(
            f"unknown pipeline type {name!r}; chunkwise drives image-to-video pipelines {sorted(PIPELINE_FAMILIES)}"
        )
    return _denoiser_class(family)(pipe, **options)


def load_denoiser(
    model_dir: Union[str, Path],
    *,
    device: Any = None,
    dtype: Any = None,
    offload: bool = False,
    before_move: Optional[Callable[[int], None]] = None,
    **options,
) -> DiffusersDenoiser:
    """Load a local diffusers I2V folder (``local_files_only``) and wrap it as a search denoiser.

    ``device`` defaults to the first accelerator; ``dtype`` ("auto", "fp32",
    "fp16", "bf16") to the family's published dtype there, float32 on the CPU.
    ``offload`` uses diffusers' model CPU offload (needs accelerate) instead of
    moving everything to the device. ``before_move(nbytes)`` runs before the
    weights go to the device (hosts free that much memory there). Other ``options`` (width, height,
    num_frames, prompt, guidance ...) go to the family's denoiser.
    """
    class_name = pipeline_class_name(model_dir)
    diffusers = require_diffusers()

    family = PIPELINE_FAMILIES[class_name]
    device = check_device(device) or default_device()
    torch_dtype = resolve_dtype(dtype, family, device)
    cls = getattr(diffusers, class_name)
    log.info("chunkwise: loading %s from %s (%s on %s)", class_name, model_dir, torch_dtype, device)
    try:
        # Components saved as absent (e.g. no tokenizer when prompt embeddings are used) stay absent.
        absent = {name: None for name in _absent_components(model_dir)}
        pipe = cls.from_pretrained(str(Path(model_dir).expanduser()), local_files_only=True,
                                   **{_dtype_keyword(): torch_dtype}, **absent)
    except ImportError as exc:
        raise ChunkwiseError(
            f"loading {class_name} from {str(model_dir)!r} needs a package that is not installed ({exc}); "
            "install it, e.g. pip install transformers accelerate sentencepiece"
        ) from exc
    except (OSError, ValueError) as exc:
        # Missing or unreadable component files (scheduler_config.json, truncated weights, broken config JSON).
        raise ChunkwiseError(
            f"incomplete or damaged diffusers folder {str(model_dir)!r} ({class_name}): "
            f"{str(exc).strip().rstrip('.')}; expected the files a "
            "pipeline's save_pretrained writes (model_index.json and one folder per component with its config and "
            "weights); download or save the folder again"
        ) from exc
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        if before_move is not None and device.type != "cpu":
            before_move(pipeline_bytes(pipe))
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return _denoiser_class(family)(pipe, device=None if offload else device, **options)


__all__ = [
    "DEFAULT_DTYPES",
    "DiffusersCond",
    "DiffusersDenoiser",
    "PIPELINE_FAMILIES",
    "ResumeState",
    "available_devices",
    "check_device",
    "default_device",
    "from_pipeline",
    "load_denoiser",
    "pipeline_bytes",
    "pipeline_class_name",
    "require_diffusers",
    "resolve_dtype",
]
