"""Everything that touches ComfyUI: V3 nodes, the sampler adapter, progress and previews.

Imported only by ``comfy_entrypoint`` (inside ComfyUI) and by tier-2 tests. The
node modules import nothing optional; nodes that need an optional package
(``NEEDS``, see :mod:`.optional`) stay listed when it is missing, a warning per
missing package is logged when ComfyUI asks for the node list, and such a node
fails with that message when it runs.
"""

from __future__ import annotations

import importlib

from comfy_api.latest import ComfyExtension, io

from .optional import log_missing

# (module, list name)
_GROUPS = [
    (".chunk_nodes", "CHUNK_NODES"),
    (".loop", "LOOP_NODES"),
    (".families", "BINDING_NODES"),
    (".scorer_nodes", "SCORER_NODES"),
    (".diffusers_node", "DIFFUSERS_NODES"),
    (".eval_nodes", "EVAL_NODES"),
    (".toy_world", "TOY_NODES"),
]


def node_list() -> list[type[io.ComfyNode]]:
    found: list[type[io.ComfyNode]] = []
    for module, name in _GROUPS:
        found.extend(getattr(importlib.import_module(module, __name__), name))
    return found


class ChunkwiseExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        nodes = node_list()
        log_missing(nodes)
        return nodes
