"""Tiny API prompts from the bundled workflows, and readers for their results (tier 3).

:func:`tiny_prompt` loads ``workflows/api/<name>.json`` and swaps the loader
nodes for the test pack's tiny random stand-ins (``tests/e2e/testpack``), shrinks
sizes, steps and counts, and adds a ``ChunkwiseTestSaveTensor`` node that saves
the final frames losslessly. Every other node (the chunkwise nodes, ComfyUI's
own conditioning, decode and save nodes) runs as the workflow has it.

Readers: :func:`frames_of` (the saved frames as a tensor), :func:`report_of`
(the ``chunkwise.report/1`` JSON of a ChunkLoop run), :func:`node_id`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent.parent
API_DIR = ROOT / "workflows" / "api"
TESTPACK = Path(__file__).resolve().parent / "testpack"
TESTPACK_NAME = "chunkwise_testpack"

WORKFLOWS = ("chunkwise_svd_single_chunk", "chunkwise_svd_long_video", "chunkwise_wan21_i2v_long_video",
             "chunkwise_wan22_i2v_long_video", "chunkwise_wan22_5b_ti2v_long_video", "chunkwise_ltxv_i2v_long_video",
             "chunkwise_kandinsky5_i2v_long_video", "chunkwise_toy_world_ab", "chunkwise_wan21_i2v_ab",
             "chunkwise_hunyuan15_i2v_long_video", "chunkwise_hunyuan_i2v_long_video",
             "chunkwise_cosmos_predict2_i2v_long_video")
SAVE_TENSOR = "ChunkwiseTestSaveTensor"
REPORT_FORMAT = "chunkwise.report/1"

# Loader -> (tiny stand-in, its inputs). The stand-ins keep the loaders' output slots.
SWAPS = {
    "ImageOnlyCheckpointLoader": ("ChunkwiseTestSVDCheckpoint", {"seed": 5}),
    "UNETLoader": ("ChunkwiseTestWanModel", {"seed": 1}),
    "VAELoader": ("ChunkwiseTestWanVAE", {"seed": 1}),
    "CLIPVisionLoader": ("ChunkwiseTestCLIPVision", {"seed": 3}),
    "CheckpointLoaderSimple": ("ChunkwiseTestLTXVCheckpoint", {"seed": 1}),  # the LTX-Video workflow's
}
WAN_TEXT_WIDTH = 16  # text_dim of ChunkwiseTestWanModel (and of ChunkwiseTestWan22Model, ChunkwiseTestCosmosModel)
WORKFLOW_SWAPS = {
    "chunkwise_wan22_5b_ti2v_long_video": {"UNETLoader": ("ChunkwiseTestWan22Model", {"seed": 1}),
                                           "VAELoader": ("ChunkwiseTestWan22VAE", {"seed": 2})},
    "chunkwise_kandinsky5_i2v_long_video": {"UNETLoader": ("ChunkwiseTestKandinsky5Model", {"seed": 1}),
                                            "VAELoader": ("ChunkwiseTestKandinsky5VAE", {"seed": 1})},
    "chunkwise_cosmos_predict2_i2v_long_video": {"UNETLoader": ("ChunkwiseTestCosmosModel", {"seed": 1})},
}
WORKFLOW_SWAPS.update({
    "chunkwise_hunyuan15_i2v_long_video": {
        "UNETLoader": ("ChunkwiseTestHunyuan15Model", {"seed": 1}),
        "VAELoader": ("ChunkwiseTestHunyuan15VAE", {"seed": 2}),
        "CLIPTextEncode": ("ChunkwiseTestHunyuanTextConditioning", {"width": 16, "tokens": 8, "pooled_width": 0}),
    },
    "chunkwise_hunyuan_i2v_long_video": {
        "UNETLoader": ("ChunkwiseTestHunyuanModel", {"seed": 1, "guidance_type": "v1 (concat)"}),
        "VAELoader": ("ChunkwiseTestHunyuanVAE", {"seed": 2}),
        "TextEncodeHunyuanVideo_ImageToVideo": ("ChunkwiseTestHunyuanTextConditioning",
                                                {"width": 16, "tokens": 8, "pooled_width": 8}),
    },
})
"""Per workflow, stand-ins over :data:`SWAPS` for families whose loaders need other tiny models (same output
slots). A text-encoder entry keeps the prompt's text and takes these inputs besides."""
K5_POOLED_WIDTH = 8
"""The Kandinsky 5 text conditioning's pooled output width."""
TEXT_INPUTS = {"CLIPTextEncode": "text", "TextEncodeHunyuanVideo_ImageToVideo": "prompt"}
"""Text encoders and their prompt input: a swapped one keeps the prompt as the stand-in's ``text``."""


@dataclass
class TinySettings:
    """What a tiny run does; the defaults finish in seconds on two CPU cores."""

    chunks: int = 2
    candidates: int = 2
    k: int = 1
    steps: int = 2
    seed: int = 0
    svd_frames: int = 3  # frames per SVD chunk
    wan_length: int = 5  # frames per Wan chunk (4n+1)
    svd_size: tuple = (64, 48)  # width, height
    wan_size: tuple = (32, 32)
    ltxv_length: int = 9  # frames per LTX-Video chunk (8n+1, at least 9)
    ltxv_size: tuple = (64, 64)
    k5_length: int = 17  # frames per Kandinsky 5 chunk (4n+1; 5 latent frames: NormalizeVideoLatentStart's 4 + 1)
    k5_size: tuple = (32, 32)
    image_seed: int = 7
    prefix: str = "chunkwise_e2e"

    def frames_per_chunk(self, workflow: str) -> int:
        if "ltxv" in workflow:
            return self.ltxv_length
        if "kandinsky5" in workflow:
            return self.k5_length
        return self.svd_frames if "svd" in workflow else self.wan_length

    def size(self, workflow: str) -> tuple:
        """(width, height) of the workflow's frames."""
        if "ltxv" in workflow:
            return self.ltxv_size
        if "kandinsky5" in workflow:
            return self.k5_size
        return self.svd_size if "svd" in workflow else self.wan_size


def load_api(name: str, api_dir: Path = API_DIR) -> dict:
    path = api_dir / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no API workflow {path}; run scripts/make_workflows.py (have: {sorted(WORKFLOWS)})")
    return json.loads(path.read_text())


def node_id(prompt: dict, class_type: str) -> str:
    """The id of the only node of ``class_type`` in ``prompt``."""
    found = [k for k, v in prompt.items() if v["class_type"] == class_type]
    if len(found) != 1:
        raise KeyError(f"expected one {class_type} node in the prompt, found {found}")
    return found[0]


def tiny_prompt(name: str, settings: Optional[TinySettings] = None, api_dir: Path = API_DIR, **overrides) -> dict:
    """The API workflow ``name`` (from ``api_dir``: the bundled ones by default) with tiny test models and sizes.

    ``overrides`` set :class:`TinySettings` fields (``chunks=3, seed=5``), or
    ``inputs={"ChunkwiseChunkLoop": {"preview_mode": "truncated"}}`` sets any
    node's inputs by class type after the swaps.
    """
    node_inputs = overrides.pop("inputs", {})
    s = settings or TinySettings()
    for key, value in overrides.items():
        if not hasattr(s, key):
            raise TypeError(f"tiny_prompt got an unknown setting {key!r}; known: {sorted(vars(TinySettings()))}")
        setattr(s, key, value)
    prompt = copy.deepcopy(load_api(name, api_dir))
    wan = any(n["class_type"] == "UNETLoader" for n in prompt.values())
    ltxv = any(n["class_type"] == "ChunkwiseI2VLTXV" for n in prompt.values())
    k5 = any(n["class_type"] == "ChunkwiseI2VKandinsky5" for n in prompt.values())
    width, height = s.ltxv_size if ltxv else s.k5_size if k5 else s.wan_size if wan else s.svd_size
    length = s.ltxv_length if ltxv else s.k5_length if k5 else s.wan_length

    # 1. Sizes, steps and counts on the nodes that have them.
    common = {"steps": s.steps, "k": s.k, "chunks": s.chunks, "candidates": s.candidates, "count": s.candidates,
              "seed": s.seed, "width": width, "height": height, "video_frames": s.svd_frames, "length": length}
    for node in prompt.values():
        for key, value in common.items():
            if key in node["inputs"] and not isinstance(node["inputs"][key], list):
                node["inputs"][key] = value
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = f"{s.prefix}/{name}"
        if node["inputs"].get("switch_step"):  # two experts: hand over halfway through the tiny schedule
            node["inputs"]["switch_step"] = max(1, s.steps // 2)

    # 2. Loaders -> tiny stand-ins (same output slots), text encoder -> seeded conditioning. A second loader
    #    of a kind (Wan 2.2's low-noise expert) gets another seed, so the two models differ.
    seen: dict[str, int] = {}
    swaps = {**SWAPS, **WORKFLOW_SWAPS.get(name, {})}
    for nid, node in sorted(prompt.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0):
        kind = node["class_type"]
        if kind in TEXT_INPUTS and kind in swaps:
            node["class_type"], inputs = swaps[kind]
            node["inputs"] = {"text": node["inputs"][TEXT_INPUTS[kind]], **inputs}
        elif kind in swaps:
            new_type, inputs = swaps[kind]
            index = seen[kind] = seen.get(kind, -1) + 1
            node["class_type"], node["inputs"] = new_type, {**inputs, "seed": inputs["seed"] + 10 * index}
        elif kind == "LoadImage":
            node["class_type"] = "ChunkwiseTestImage"
            node["inputs"] = {"width": width, "height": height, "seed": s.image_seed}
        elif kind == "CLIPTextEncode":
            node["class_type"] = "ChunkwiseTestTextConditioning"
            node["inputs"] = {"text": node["inputs"]["text"], "width": WAN_TEXT_WIDTH, "tokens": 8}
            if ltxv:  # T5 text with its attention_mask, as LTXV's model takes it (width 16 too)
                node["inputs"]["attention_mask"] = True
            if k5:  # Kandinsky 5 text carries a pooled output
                node["inputs"]["pooled_width"] = K5_POOLED_WIDTH
        elif kind in ("CLIPLoader", "DualCLIPLoader"):
            del prompt[nid]

    # 3. A lossless copy of the frames that go to the video (workflows with one video).
    creates = [k for k, v in prompt.items() if v["class_type"] == "CreateVideo"]
    if len(creates) == 1:
        prompt["900"] = {
            "class_type": SAVE_TENSOR,
            "inputs": {"images": list(prompt[creates[0]]["inputs"]["images"]), "filename_prefix": f"{s.prefix}/{name}"},
            "_meta": {"title": "frames (lossless)"},
        }

    # 4. Explicit inputs last, on every node of the class type.
    for class_type, inputs in node_inputs.items():
        found = [node for node in prompt.values() if node["class_type"] == class_type]
        if not found:
            raise KeyError(f"no {class_type} node in the prompt to set {sorted(inputs)} on")
        for node in found:
            node["inputs"].update(inputs)
    return prompt


def frames_of(server, entry: dict):
    """The frames ``ChunkwiseTestSaveTensor`` saved in a finished run, as a float32 [N, H, W, 3] tensor."""
    import safetensors.torch

    items = [item for out in entry["outputs"].values() for item in out.get("tensors", [])]
    if len(items) != 1:
        raise AssertionError(f"expected one saved tensor file in the run's outputs, got {items}")
    return safetensors.torch.load_file(str(server.output_path(items[0])))["images"]


def report_of(entry: dict, prompt: dict) -> dict:
    """The ChunkLoop search report of a finished run.

    Read from the ChunkLoop node's own UI output (``"report"``) when it has
    one, else from the PreviewAny node the workflow wires to its report output.
    """
    loop = entry["outputs"].get(node_id(prompt, "ChunkwiseChunkLoop"), {})
    texts = loop.get("report") or []
    if not texts:
        texts = entry["outputs"].get(node_id(prompt, "PreviewAny"), {}).get("text") or []
    if not texts:
        raise AssertionError(f"no report in the run's outputs: {sorted(entry['outputs'])}")
    report = json.loads(texts[0])
    if report.get("format") != REPORT_FORMAT:
        raise AssertionError(f"report format is {report.get('format')!r}, expected {REPORT_FORMAT!r}")
    return report
