"""Tier 2: ComfyUI imported in-process on the CPU; nodes executed directly."""

from __future__ import annotations

import pytest
import torch
from chunkwise.tests.comfy_host import enable_in_process

COMFY_ROOT = enable_in_process()


@pytest.fixture(autouse=True)
def _inference_mode():
    # ComfyUI runs nodes under inference mode; so do these tests.
    with torch.inference_mode():
        torch.manual_seed(0)
        yield
