"""Tier 2: ComfyUI imported in-process on the CPU; nodes executed directly."""

from __future__ import annotations

import pytest
import torch
from chunkwise.tests.comfy_host import enable_in_process

COMFY_ROOT = enable_in_process()

from chunkwise.tests.comfy import tiny  # noqa: E402 - imports ComfyUI, enabled just above


@pytest.fixture(autouse=True)
def _inference_mode():
    # ComfyUI runs nodes under inference mode; so do these tests.
    with torch.inference_mode():
        torch.manual_seed(0)
        yield


# Tiny models shared by the binding tests (built once per test module).
@pytest.fixture(scope="module")
def wan_parts():
    return tiny.tiny_wan()


@pytest.fixture(scope="module")
def svd_parts():
    return tiny.tiny_svd()


@pytest.fixture(scope="module")
def wan22_5b_parts():
    from chunkwise.tests.comfy import tiny_wan22_5b

    return tiny_wan22_5b.tiny_wan22_5b()


@pytest.fixture(scope="module")
def ltxv_parts():
    from chunkwise.tests.comfy import tiny_ltxv

    return tiny_ltxv.tiny_ltxv()


@pytest.fixture(scope="module")
def kandinsky5_parts():
    from chunkwise.tests.comfy.tiny_kandinsky5 import KANDINSKY5_COMFY
    from chunkwise.tests.comfy_host import comfy_version

    if comfy_version() < KANDINSKY5_COMFY:
        pytest.skip(f"Kandinsky 5 (Kandinsky5ImageToVideo) needs ComfyUI {'.'.join(map(str, KANDINSKY5_COMFY))}; "
                    f"this host is {'.'.join(map(str, comfy_version()))}")
    from chunkwise.tests.comfy.tiny_kandinsky5 import tiny_kandinsky5

    return tiny_kandinsky5()


@pytest.fixture(scope="module")
def cosmos_parts():
    from chunkwise.tests.comfy import tiny_cosmos

    return tiny_cosmos.tiny_cosmos()


@pytest.fixture(params=["wan", "svd", "wan22_5b", "cosmos", "ltxv", "kandinsky5"])
def family_name(request):
    return request.param


@pytest.fixture
def parts(family_name, request):
    return request.getfixturevalue(f"{family_name}_parts")
