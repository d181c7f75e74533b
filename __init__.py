"""chunkwise: long videos from short image-to-video models, with k-step noise search.

ComfyUI entry point only. Nothing is imported or done here at import time:
``comfy_entrypoint`` imports the nodes lazily, so ``search`` and ``scorers``
stay importable on a machine without ComfyUI.
"""


async def comfy_entrypoint():
    from .nodes import ChunkwiseExtension

    return ChunkwiseExtension()
