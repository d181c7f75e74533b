"""Fingerprints of the models a run uses, so a run folder is never resumed with other weights.

A run folder's ``state.json`` records these digests beside the settings: another
checkpoint, LoRA strength, sampling shift or CLIP file changes the frames without
changing any widget, and would otherwise resume into a mixed video.
"""

from __future__ import annotations

import hashlib
import logging

import torch

log = logging.getLogger("chunkwise")

SAMPLE_VALUES = 64
"""Values read from the start of every weight tensor for a fingerprint (cheap even for 14B models)."""


def _digest_options(patcher, h) -> None:
    """What a ModelPatcher changes besides weights: its sampling schedule (ModelSamplingSD3's shift,
    ModelSamplingDiscrete ...), object patches and model options (cfg functions such as
    VideoLinearCFGGuidance, with the numbers their closures hold)."""
    get = getattr(patcher, "get_model_object", None)
    if callable(get):
        try:
            sampling = get("model_sampling")
        except Exception:  # noqa: BLE001 - a model without a schedule has nothing to add
            sampling = None
        sigmas = getattr(sampling, "sigmas", None)
        if isinstance(sigmas, torch.Tensor):
            h.update(f"{type(sampling).__name__}".encode())
            h.update(sigmas.detach().to("cpu", torch.float64).numpy().tobytes())
    for key in sorted(getattr(patcher, "object_patches", {}) or {}):
        h.update(f"object:{key}:{type(patcher.object_patches[key]).__name__}".encode())

    def describe(value, depth=0) -> str:
        if callable(value):
            cells = [c.cell_contents for c in (getattr(value, "__closure__", None) or ())
                     if isinstance(getattr(c, "cell_contents", None), (int, float, str, bool))]
            return f"{getattr(value, '__qualname__', type(value).__name__)}{cells}"
        if isinstance(value, dict) and depth < 3:
            return "{" + ",".join(f"{k}:{describe(v, depth + 1)}" for k, v in sorted(value.items(), key=str)) + "}"
        if isinstance(value, (list, tuple)) and depth < 3:
            return "[" + ",".join(describe(v, depth + 1) for v in value) + "]"
        if isinstance(value, (int, float, str, bool)) or value is None:
            return repr(value)
        return type(value).__name__

    options = getattr(patcher, "model_options", None)
    if isinstance(options, dict):
        h.update(describe(options).encode())


def _digest_module(obj, h) -> bool:
    """Feed a model's identity into ``h``: every weight's name, shape, dtype and first values.

    For a ComfyUI ModelPatcher the original weight is read where a patch (a LoRA) has
    replaced it in place, so the digest does not depend on whether the model happens
    to be loaded; the patches enter through their keys and strengths instead, and the
    patcher's schedule, object patches and model options through :func:`_digest_options`.
    """
    backup = getattr(obj, "backup", None)
    backup = backup if isinstance(backup, dict) else {}
    patches = getattr(obj, "patches", None)
    if isinstance(patches, dict) and patches:
        for key in sorted(patches):
            strengths = [(float(p[0]), float(p[2])) for p in patches[key] if isinstance(p, tuple) and len(p) > 2
                         and isinstance(p[0], (int, float)) and isinstance(p[2], (int, float))]
            h.update(f"{key}{strengths}".encode())
    if hasattr(obj, "model_options"):
        _digest_options(obj, h)
    for attr in ("model", "first_stage_model", "diffusion_model", "transformer", "unet"):
        inner = getattr(obj, attr, None)
        if isinstance(inner, torch.nn.Module):
            obj = inner
            break
    if not isinstance(obj, torch.nn.Module):
        return False
    params = list(obj.state_dict().items())
    h.update(f"{type(obj).__name__}|{len(params)}".encode())
    for name, t in params:
        if name in backup:
            t = backup[name].weight
        t = t.detach()
        flat = t.reshape(-1) if t.is_contiguous() else t.flatten()
        sample = flat[:SAMPLE_VALUES].to("cpu", torch.float32)
        h.update(f"{name}{list(t.shape)}{t.dtype}".encode())
        h.update(sample.numpy().tobytes())
    return True


def _modules_of(obj, depth: int = 0, seen=None) -> list:
    """Torch modules (or ComfyUI model wrappers) a scorer holds, in a stable order, to fingerprint its weights."""
    seen = seen if seen is not None else set()
    if obj is None or id(obj) in seen or depth > 3:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module) or isinstance(getattr(obj, "model", None), torch.nn.Module):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [m for item in obj for m in _modules_of(item, depth + 1, seen)]
    found = []
    for key in sorted(getattr(obj, "__dict__", {})):
        if key.startswith("_"):
            continue
        found += _modules_of(getattr(obj, key), depth + 1, seen)
    return found


def scorer_fingerprint(scorer) -> str:
    """A digest of the weights a scorer scores with (its CLIP model, a DINO model, an aesthetic head):
    another CLIP file changes every choice, so a run folder made with one must not be resumed with another."""
    h = hashlib.sha256()
    modules = _modules_of(scorer)
    for module in modules:
        _digest_module(module, h)
    return h.hexdigest()[:16] if modules else "no weights"


def binding_fingerprint(i2v) -> dict:
    """Facts about the bound model that change the frames but not its settings text: a sample of
    the model's and VAE's weights and the text conditioning. Best effort: a part that cannot be
    read is named as unknown (then only the settings protect a resumed run)."""
    out = {}
    family = getattr(i2v, "family", None)
    parts = {
        "model": getattr(i2v, "model", None),
        "model_low_noise": getattr(i2v, "model_low_noise", None),
        "vae": getattr(i2v, "vae", None),
        "clip_vision": getattr(family, "clip_vision", None),
    }
    for key, obj in parts.items():
        if obj is None:
            continue
        h = hashlib.sha256()
        try:
            out[key] = h.hexdigest()[:16] if _digest_module(obj, h) else type(obj).__name__
        except Exception as e:  # a model we cannot read must not stop the run: it only weakens the check
            log.warning("chunkwise: could not fingerprint the %s (%s); resume checks only the settings", key, e)
            out[key] = "unknown"
    for key in ("positive", "negative"):
        cond = getattr(family, key, None)
        if isinstance(cond, list):
            h = hashlib.sha256()
            for item in cond:
                if item and isinstance(item[0], torch.Tensor):
                    h.update(item[0].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            out[key] = h.hexdigest()[:16]
    return out

