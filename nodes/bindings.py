"""Model binding nodes, one per family: each makes the I2V object ChunkLoop drives.

The nodes live with their families in nodes/families/ (one file each); this module is the node group
ComfyUI's extension lists.
"""

from __future__ import annotations

from .families import BINDING_NODES, I2VSVD, I2VWan

__all__ = ["BINDING_NODES", "I2VSVD", "I2VWan"]
