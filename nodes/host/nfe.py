"""Counting model evaluations (NFE) on a model clone, through ComfyUI's unet function wrapper."""

from __future__ import annotations

from typing import Any, Optional

import torch


class NFECounter:
    """Counts model evaluations seen by a unet function wrapper.

    One sampler evaluation is one call when cond and uncond are batched. When
    ComfyUI splits them (low memory) the calls share the sigma and cover
    disjoint cond indices, so they are merged into one evaluation. A call at a
    new sigma, or one repeating a cond index already seen at this sigma (Heun's
    second evaluation meets the next step's first at the same sigma), starts a
    new evaluation. Known over-count: several area conds of the same kind split
    over calls at one sigma count once per call.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sigma: Optional[float] = None
        self._seen: set = set()

    def new_window(self) -> None:
        """Forget the last sigma: the next call is a new evaluation (a new sampler run)."""
        self._sigma = None
        self._seen = set()

    def observe(self, timestep, cond_or_uncond) -> None:
        sigma = float(timestep.reshape(-1)[0]) if isinstance(timestep, torch.Tensor) else float(timestep)
        indices = set(cond_or_uncond or ())
        if self._sigma is None or sigma != self._sigma or (indices & self._seen):
            self.count += 1
            self._sigma = sigma
            self._seen = indices
        else:
            self._seen |= indices


def count_nfe(model, counter: Optional[NFECounter] = None) -> tuple[Any, NFECounter]:
    """A clone of ``model`` whose evaluations are counted (the original is untouched).

    Uses ``set_model_unet_function_wrapper``; a wrapper already on the model
    keeps working: the counter observes the call and hands it on to it. Pass
    ``counter`` to count several models (two experts) on one counter.
    """
    patched = model.clone()
    counter = counter if counter is not None else NFECounter()
    previous = patched.model_options.get("model_function_wrapper")

    def counting_wrapper(apply_model, args):
        counter.observe(args["timestep"], args.get("cond_or_uncond"))
        if previous is not None:
            return previous(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])

    patched.set_model_unet_function_wrapper(counting_wrapper)
    return patched, counter
