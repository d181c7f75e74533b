"""Everything that touches ComfyUI: V3 nodes, the sampler adapter, progress and previews.

Imported only by ``comfy_entrypoint`` (inside ComfyUI) and by tier-2 tests.
Optional node groups whose dependencies are missing are left out with a
logged warning naming what to install; the core nodes always load.
"""

from __future__ import annotations

import importlib
import logging

from comfy_api.latest import ComfyExtension, io

log = logging.getLogger("chunkwise")

# (module, list name, what to install when it fails)
_GROUPS = [
    (".chunk_nodes", "CHUNK_NODES", None),
    (".loop", "LOOP_NODES", None),
    (".bindings", "BINDING_NODES", None),
    (".scorer_nodes", "SCORER_NODES", "open_clip_torch / transformers for their scorer backends"),
    (".diffusers_node", "DIFFUSERS_NODES", "diffusers (pip install diffusers)"),
]


def node_list() -> list[type[io.ComfyNode]]:
    found: list[type[io.ComfyNode]] = []
    for module, name, install in _GROUPS:
        try:
            found.extend(getattr(importlib.import_module(module, __name__), name))
        except ImportError as exc:
            if install is None:
                raise
            log.warning("chunkwise: %s nodes disabled (%s); install %s", module.strip("."), exc, install)
    return found


class ChunkwiseExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return node_list()
