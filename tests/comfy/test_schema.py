"""Tier 2: the pack as ComfyUI loads it: entry point, node ids, display names, tooltips, descriptions."""

from __future__ import annotations

import asyncio

import chunkwise
import pytest

REQUIRED = {
    "ChunkwiseNoiseCandidates": "NoiseCandidates",
    "ChunkwiseKStepPreview": "KStepPreview",
    "ChunkwiseClipMinCosineScore": "ClipMinCosineScore",
    "ChunkwiseSelectBestNoise": "SelectBestNoise",
    "ChunkwiseFullDenoise": "FullDenoise",
    "ChunkwiseChunkLoop": "ChunkLoop",
    "ChunkwiseSearchOptions": "Search Options",
    "ChunkwiseI2VSVD": "I2V Model (SVD)",
    "ChunkwiseI2VWan": "I2V Model (Wan)",
    "ChunkwiseI2VWan22TI2V": "I2V Model (Wan 2.2 5B TI2V)",
    "ChunkwiseI2VLTXV": "I2V Model (LTX-Video)",
    "ChunkwiseI2VKandinsky5": "I2V Model (Kandinsky 5)",
    "ChunkwiseI2VCosmosPredict2": "I2V Model (Cosmos Predict2)",
}


def node_list():
    extension = asyncio.run(chunkwise.comfy_entrypoint())
    asyncio.run(extension.on_load())
    return asyncio.run(extension.get_node_list())


@pytest.fixture(scope="module")
def schemas():
    return {s.node_id: s for s in (n.define_schema() for n in node_list())}


def test_every_required_node_is_listed_with_its_display_name(schemas):
    for node_id, display in REQUIRED.items():
        assert node_id in schemas, f"{node_id} missing from the node list"
        assert schemas[node_id].display_name == display


def test_node_ids_are_unique_and_prefixed():
    ids = [n.define_schema().node_id for n in node_list()]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("Chunkwise") for i in ids)


def test_every_node_has_a_description_and_every_input_a_tooltip(schemas):
    problems = []
    for node_id, schema in schemas.items():
        if not (schema.description or "").strip():
            problems.append(f"{node_id}: no description")
        for item in schema.inputs:
            if not (getattr(item, "tooltip", None) or "").strip():
                problems.append(f"{node_id}.{item.id}: no tooltip")
    assert not problems, "\n".join(problems)


def test_schemas_serialise_for_object_info(schemas):
    # What /object_info sends: every schema must convert to the V1 info dict.
    for schema in schemas.values():
        info = schema.get_v1_info(type("Node", (), {}))
        assert info.name == schema.node_id
