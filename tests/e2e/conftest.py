"""Tier 3: a real ComfyUI server in API mode on 127.0.0.1, CPU only.

One server per test session (about 10 s to start), with this pack linked as
custom_nodes/chunkwise and the test pack (tiny random loaders,
``tests/e2e/testpack``) beside it, in a temporary base directory.

Fixtures (a stable interface other tier-3 tests build on):

- ``server``: a started :class:`ComfyServer` -- ``queue(prompt) -> prompt_id``,
  ``wait(prompt_id, timeout) -> history entry`` (raises with the node's error
  when the prompt fails or is interrupted; ``check=False`` returns the entry
  anyway), ``run(prompt, timeout, check=True)``, ``interrupt(prompt_id=None)``,
  ``free()`` (drop the executor's caches so an identical prompt runs again),
  ``wait_idle()``, ``base_dir``, ``dir("output")``, ``output_path(item)``,
  ``object_info()``, ``get(path)``/``post(path, body)``, ``log_text()``,
  ``import_failures()``.
- ``tiny_prompt``: :func:`chunkwise.tests.e2e.tiny_prompts.tiny_prompt`, which
  builds a bundled API workflow with tiny models, e.g.
  ``tiny_prompt("chunkwise_svd_long_video", chunks=3, seed=1)``.
- ``object_info``: the server's /object_info, fetched once.
"""

from __future__ import annotations

import pytest
from chunkwise.scripts.comfy_server import ComfyServer
from chunkwise.tests.e2e import tiny_prompts


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui")
    srv = ComfyServer(base, extra_custom_nodes={tiny_prompts.TESTPACK_NAME: tiny_prompts.TESTPACK})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def object_info(server) -> dict:
    return server.object_info()


@pytest.fixture(scope="session")
def tiny_prompt():
    return tiny_prompts.tiny_prompt
