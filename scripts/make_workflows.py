"""Generate the bundled workflows from the live node definitions.

Writes ``workflows/<name>.json`` (UI format, as the ComfyUI editor saves it:
the files ComfyUI's template browser lists for this pack) and
``workflows/api/<name>.json`` (API format, what ``POST /prompt`` takes; used by
the tests, the demo and API-mode users).

Widget values are laid out from ``/object_info`` (inputs in ``input_order``,
required then optional; one extra value after every ``control_after_generate``
widget; the upload button's value after an ``image_upload`` combo), never from
hard-coded lists, so the files follow the nodes when their inputs change.
Regenerate after changing a node's inputs::

    python scripts/make_workflows.py                 # starts a headless ComfyUI for /object_info
    python scripts/make_workflows.py --url http://127.0.0.1:8188
    python scripts/make_workflows.py --object-info object_info.json
    python scripts/make_workflows.py --check         # exit 1 when the files are stale
    CHUNKWISE_COMFY=0.28.2 .venv-comfy-0.28.2/bin/python scripts/make_workflows.py --made-on 0.28.2  # Kandinsky 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
FILE_LISTS = frozenset({"ckpt_name", "unet_name", "vae_name", "clip_name", "clip_name1", "clip_name2", "lora_name",
                        "image"})
MADE_ON = (0, 3, 75)
"""The ComfyUI the bundled workflows are made on (the oldest supported), unless a graph needs a newer one."""
FRONTEND_ONLY = frozenset({"MarkdownNote", "Note", "Reroute", "PrimitiveNode"})
"""Node types the editor draws but the server never sees (absent from /object_info and API prompts)."""


class WorkflowError(ValueError):
    """A graph that does not fit the node definitions (unknown node, input or output, wrong link type)."""


# ---------------------------------------------------------------------------
# Node definitions (/object_info entries)
# ---------------------------------------------------------------------------


@dataclass
class InputDef:
    name: str
    type: Any  # a type name, or a list of options for a legacy combo
    options: dict
    optional: bool

    @property
    def type_name(self) -> str:
        return "COMBO" if isinstance(self.type, list) else str(self.type)

    @property
    def is_widget(self) -> bool:
        return (isinstance(self.type, list) or self.type in WIDGET_TYPES) and not self.options.get("forceInput")

    @property
    def choices(self) -> Optional[list]:
        if isinstance(self.type, list):
            return self.type
        if self.type == "COMBO":
            return self.options.get("options")
        return None

    def default(self):
        if "default" in self.options:
            return self.options["default"]
        choices = self.choices
        if choices is not None:
            return choices[0] if choices else ""
        return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(self.type_name)

    def extra_widget_values(self, control: str) -> list:
        """Values the editor stores after this widget's own (seed control, upload button)."""
        extra = []
        if self.options.get("control_after_generate"):
            extra.append(control)
        if self.options.get("image_upload") or self.options.get("video_upload") or self.options.get("audio_upload"):
            extra.append("image" if self.options.get("image_upload") else
                         "video" if self.options.get("video_upload") else "audio")
        return extra


def node_inputs(info: dict) -> list[InputDef]:
    """A node's inputs in the order the editor lays them out (input_order: required, then optional)."""
    order = info.get("input_order") or {g: list((info["input"].get(g) or {}).keys()) for g in ("required", "optional")}
    found = []
    for group in ("required", "optional"):
        specs = info["input"].get(group) or {}
        for name in order.get(group, []):
            spec = specs[name]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            found.append(InputDef(name, spec[0], options, group == "optional"))
    return found


def node_outputs(info: dict) -> list[tuple[str, str]]:
    """(name, type) of each output slot."""
    return list(zip(info["output_name"], info["output"], strict=True))


def types_match(source: str, target: str) -> bool:
    """Whether a link from an output of type ``source`` may enter an input of type ``target``."""
    if "*" in (source, target):
        return True
    return bool(set(source.split(",")) & set(target.split(",")))


# ---------------------------------------------------------------------------
# A graph described by hand, laid out from the definitions
# ---------------------------------------------------------------------------


@dataclass
class Node:
    id: int
    type: str
    widgets: dict
    links: dict  # input name -> (source Node, output slot index or name)
    title: Optional[str] = None
    models: Optional[list] = None
    text: Optional[str] = None  # MarkdownNote content

    def __getitem__(self, slot):
        return (self, slot)


@dataclass
class Graph:
    name: str
    description: str
    nodes: list = field(default_factory=list)
    made_on: tuple = MADE_ON
    """The ComfyUI whose /object_info the files are made from: the oldest supported, or the oldest with the
    graph's nodes (Kandinsky 5: 0.28.2)."""

    def add(self, type_: str, *, title: Optional[str] = None, models: Optional[list] = None,
            widgets: Optional[dict] = None, **links) -> Node:
        node = Node(len(self.nodes) + 1, type_, dict(widgets or {}), {}, title, models)
        for name, src in links.items():
            node.links[name] = src if isinstance(src, tuple) else (src, 0)
        self.nodes.append(node)
        return node

    def note(self, text: str) -> Node:
        node = Node(len(self.nodes) + 1, "MarkdownNote", {}, {}, text=text)
        self.nodes.append(node)
        return node


def _info(object_info: dict, node: Node) -> dict:
    if node.type not in object_info:
        raise WorkflowError(
            f"node type {node.type!r} (node {node.id}) is not in /object_info; expected one of the installed nodes. "
            "Is the pack (or ComfyUI's comfy_extras) loaded without IMPORT FAILED?"
        )
    return object_info[node.type]


def _slot(object_info: dict, src: Node, slot) -> int:
    outputs = node_outputs(_info(object_info, src))
    if isinstance(slot, str):
        names = [n for n, _ in outputs]
        if slot not in names:
            raise WorkflowError(f"{src.type} has no output {slot!r}; its outputs are {names}")
        return names.index(slot)
    if not 0 <= slot < len(outputs):
        raise WorkflowError(f"{src.type} has no output slot {slot}; it has {len(outputs)}")
    return slot


def _resolve(graph: Graph, object_info: dict):
    """Check the graph against the definitions; returns per-node (inputs, outputs, links) and the link list."""
    links = []  # [id, from_node, from_slot, to_node, to_slot, type]
    resolved = {}
    for node in graph.nodes:
        if node.type in FRONTEND_ONLY:
            continue
        info = _info(object_info, node)
        inputs = node_inputs(info)
        names = {i.name for i in inputs}
        for name in [w.split(":")[0] for w in node.widgets] + list(node.links):
            if name not in names:
                raise WorkflowError(f"{node.type} (node {node.id}) has no input {name!r}; its inputs are {sorted(names)}")
        resolved[node.id] = {"inputs": inputs, "outputs": node_outputs(info)}
    for node in graph.nodes:
        if node.type in FRONTEND_ONLY:
            continue
        sockets = [i for i in resolved[node.id]["inputs"] if not i.is_widget]
        for name, (src, slot) in node.links.items():
            target = next(i for i in resolved[node.id]["inputs"] if i.name == name)
            if target.is_widget:
                raise WorkflowError(f"{node.type}.{name} is a widget; link only socket inputs here")
            slot_index = _slot(object_info, src, slot)
            src_type = resolved[src.id]["outputs"][slot_index][1]
            if not types_match(src_type, target.type_name):
                raise WorkflowError(
                    f"link {src.type}[{slot_index}] ({src_type}) -> {node.type}.{name} ({target.type_name}): types differ"
                )
            links.append([len(links) + 1, src.id, slot_index, node.id, sockets.index(target), src_type])
        for i in sockets:
            if not i.optional and i.name not in node.links:
                raise WorkflowError(f"{node.type} (node {node.id}) needs its input {i.name!r} connected")
    return resolved, links


def _widget_value(node: Node, inp: InputDef):
    value = node.widgets.get(inp.name, inp.default())
    choices = inp.choices
    # A loader's file list (and LoadImage's) reflects the server's folders, not what the workflow may name.
    if choices and value not in choices and inp.name not in FILE_LISTS:
        raise WorkflowError(f"{node.type}.{inp.name} = {value!r} is not one of {choices}")
    return value


def _depths(graph: Graph) -> dict:
    depth = {}

    def visit(node: Node) -> int:
        if node.id not in depth:
            depth[node.id] = 1 + max((visit(src) for src, _ in node.links.values()), default=-1)
        return depth[node.id]

    for node in graph.nodes:
        visit(node)
    return depth


def build_api(graph: Graph, object_info: dict) -> dict:
    """The API-format prompt: {id: {class_type, inputs, _meta}}."""
    resolved, _ = _resolve(graph, object_info)
    prompt = {}
    for node in graph.nodes:
        if node.type in FRONTEND_ONLY:
            continue
        inputs = {}
        for inp in resolved[node.id]["inputs"]:
            if inp.name in node.links:
                src, slot = node.links[inp.name]
                inputs[inp.name] = [str(src.id), _slot(object_info, src, slot)]
            elif inp.is_widget:
                inputs[inp.name] = _widget_value(node, inp)
        title = node.title or object_info[node.type].get("display_name") or node.type
        prompt[str(node.id)] = {"class_type": node.type, "inputs": inputs, "_meta": {"title": title}}
    return prompt


def build_ui(graph: Graph, object_info: dict) -> dict:
    """The editor's save format (version 0.4): nodes with sockets, link ids and widgets_values, and links."""
    resolved, links = _resolve(graph, object_info)
    depth = _depths(graph)
    order = {n.id: i for i, n in enumerate(sorted(graph.nodes, key=lambda n: (depth[n.id], n.id)))}
    column_y: dict = {}
    nodes = []
    for node in sorted(graph.nodes, key=lambda n: (depth[n.id], n.id)):
        col = depth[node.id]
        if node.type in FRONTEND_ONLY:
            size = [420, 300]
            entry = {"id": node.id, "type": node.type, "pos": [-400, 40], "size": size, "flags": {},
                     "order": order[node.id], "mode": 0, "inputs": [], "outputs": [], "properties": {},
                     "widgets_values": [node.text], "color": "#432", "bgcolor": "#653"}
            nodes.append(entry)
            continue
        inputs, outputs = [], []
        widgets_values = []
        n_widgets = 0
        for inp in resolved[node.id]["inputs"]:
            if inp.is_widget:
                widgets_values.append(_widget_value(node, inp))
                widgets_values.extend(inp.extra_widget_values(node.widgets.get(inp.name + ":control", "fixed")))
                n_widgets += 1
                continue
            link = next((lk[0] for lk in links if lk[3] == node.id and lk[4] == len(inputs)), None)
            item = {"name": inp.name, "type": inp.type_name, "link": link}
            if inp.optional:
                item["shape"] = 7
            inputs.append(item)
        for index, (name, type_) in enumerate(resolved[node.id]["outputs"]):
            out_links = [lk[0] for lk in links if lk[1] == node.id and lk[2] == index]
            outputs.append({"name": name, "type": type_, "slot_index": index, "links": out_links or None})
        height = 46 + 22 * max(len(inputs), len(outputs)) + 26 * n_widgets
        width = 340 if n_widgets else 260
        y = column_y.get(col, 40)
        column_y[col] = y + height + 60
        properties = {"Node name for S&R": node.type}
        if node.models:
            properties["models"] = node.models
        entry = {"id": node.id, "type": node.type, "pos": [40 + 400 * col, y], "size": [width, height],
                 "flags": {}, "order": order[node.id], "mode": 0, "inputs": inputs, "outputs": outputs,
                 "properties": properties, "widgets_values": widgets_values}
        if node.title:
            entry["title"] = node.title
        nodes.append(entry)
    nodes.sort(key=lambda n: n["id"])
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "chunkwise/workflows/" + graph.name)),
        "revision": 0,
        "last_node_id": max(n.id for n in graph.nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [450, 80]}, "chunkwise": {"description": graph.description}},
        "version": 0.4,
    }


# ---------------------------------------------------------------------------
# The three bundled workflows
# ---------------------------------------------------------------------------

SVD_XT = {
    "name": "svd_xt.safetensors",
    "url": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt/resolve/main/svd_xt.safetensors?download=true",
    "directory": "checkpoints",
}
_WAN_REPACK = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
WAN21_I2V = {"name": "wan2.1_i2v_480p_14B_fp16.safetensors",
             "url": _WAN_REPACK + "diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors", "directory": "diffusion_models"}
UMT5 = {"name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "url": _WAN_REPACK + "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "directory": "text_encoders"}
WAN_VAE = {"name": "wan_2.1_vae.safetensors", "url": _WAN_REPACK + "vae/wan_2.1_vae.safetensors", "directory": "vae"}
_WAN22_REPACK = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
WAN22_I2V_HIGH = {"name": "wan2.2_i2v_high_noise_14B_fp16.safetensors",
                  "url": _WAN22_REPACK + "diffusion_models/wan2.2_i2v_high_noise_14B_fp16.safetensors",
                  "directory": "diffusion_models"}
WAN22_I2V_LOW = {"name": "wan2.2_i2v_low_noise_14B_fp16.safetensors",
                 "url": _WAN22_REPACK + "diffusion_models/wan2.2_i2v_low_noise_14B_fp16.safetensors",
                 "directory": "diffusion_models"}
CLIP_VISION_H = {"name": "clip_vision_h.safetensors",
                 "url": _WAN_REPACK + "clip_vision/clip_vision_h.safetensors", "directory": "clip_vision"}

START_IMAGE = "example.png"
"""ComfyUI ships input/example.png; users pick their own start image in LoadImage."""

WAN_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
                "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
                "三条腿，背景人很多，倒着走")
"""The stock Wan templates' negative prompt."""


def _models_note(title: str, body: str, models: list) -> str:
    lines = [f"## {title}", "", body, "", "**Models** (the Missing Models dialog offers these downloads):", ""]
    for m in models:
        lines.append(f"- `models/{m['directory']}/` [{m['name']}]({m['url']})")
    return "\n".join(lines)


def svd_single_chunk() -> Graph:
    g = Graph("chunkwise_svd_single_chunk",
              "One SVD chunk with k-step noise search wired by hand: candidates -> k-step previews -> CLIP "
              "min-cosine scores -> best noise -> full denoise.")
    g.note(_models_note(
        "chunkwise: one chunk, the search step by step",
        "NoiseCandidates draws m seeds; KStepPreview denoises each for only k steps and decodes a preview; "
        "ClipMinCosineScore scores each preview by its worst frame's CLIP cosine to the start image; "
        "SelectBestNoise picks the best; FullDenoise runs the full schedule from that noise only. Cost: m*k + s "
        "model evaluations instead of s. SelectBestNoise's seed output replays the winner in a plain KSampler.",
        [SVD_XT]))
    ckpt = g.add("ImageOnlyCheckpointLoader", models=[SVD_XT], widgets={"ckpt_name": SVD_XT["name"]})
    image = g.add("LoadImage", widgets={"image": START_IMAGE})
    model = g.add("VideoLinearCFGGuidance", widgets={"min_cfg": 1.0}, model=ckpt[0])
    cond = g.add("SVD_img2vid_Conditioning", clip_vision=ckpt[1], init_image=image[0], vae=ckpt[2],
                 widgets={"width": 1024, "height": 576, "video_frames": 25, "motion_bucket_id": 127, "fps": 6,
                          "augmentation_level": 0.0})
    sampler = {"steps": 20, "cfg": 2.5, "sampler_name": "euler", "scheduler": "karras"}
    cands = g.add("ChunkwiseNoiseCandidates", latent=cond[2], widgets={"count": 4, "seed": 0})
    previews = g.add("ChunkwiseKStepPreview", model=model[0], positive=cond[0], negative=cond[1], latent=cond[2],
                     candidates=cands[0], vae=ckpt[2], widgets={"k": 5, "mode": "short schedule", **sampler})
    scores = g.add("ChunkwiseClipMinCosineScore", guide=image[0], previews=previews[0], clip_vision=ckpt[1])
    best = g.add("ChunkwiseSelectBestNoise", candidates=cands[0], scores=scores[0])
    latent = g.add("ChunkwiseFullDenoise", model=model[0], positive=cond[0], negative=cond[1], latent=cond[2],
                   noise=best[0], widgets=dict(sampler))
    frames = g.add("VAEDecode", samples=latent[0], vae=ckpt[2])
    video = g.add("CreateVideo", images=frames[0], widgets={"fps": 8.0})
    g.add("SaveVideo", video=video[0], widgets={"filename_prefix": "video/chunkwise_svd_chunk"})
    return g


OPTIONS_NOTE = ("Search Options (wired to ChunkLoop's options input, at its defaults) holds what the run returns, what "
                "it does with an existing run folder, colour anchoring and the cost options (batched candidates, "
                "cheaper previews, early accept, successive halving); without it ChunkLoop uses the same defaults.")


def _loop_tail(g: Graph, i2v: Node, image: Node, clip_vision, fps: float, prefix: str, chunks: int) -> Node:
    loop = g.add("ChunkwiseChunkLoop", i2v=i2v[0], image=image[0], clip_vision=clip_vision,
                 widgets={"chunks": chunks, "candidates": 4, "k": 5, "preview_mode": "short schedule", "seed": 0,
                          "search": True, "drop_first_frame": True})
    video = g.add("CreateVideo", images=loop[0], widgets={"fps": fps})
    g.add("SaveVideo", video=video[0], widgets={"filename_prefix": prefix})
    g.add("PreviewAny", title="Search report", source=loop[1])
    g.add("PreviewImage", title="Scores per chunk", images=loop[2])
    loop.links["options"] = g.add("ChunkwiseSearchOptions")[0]  # added last: the other nodes keep their ids
    return loop


def svd_long_video() -> Graph:
    g = Graph("chunkwise_svd_long_video",
              "A long SVD video: ChunkLoop chains chunks, each started from the last frame of the one before, "
              "with k-step noise search before each chunk.")
    g.note(_models_note(
        "chunkwise: long video with SVD",
        "I2V Model (SVD) binds svd_xt to its conditioning; ChunkLoop makes `chunks` chunks, each from the last "
        "frame of the one before, and before each chunk previews `candidates` noises for `k` steps and fully "
        "denoises only the best (CLIP min-cosine to the chunk's start frame). candidates = 1 or search off is the "
        "naive chain. The report (JSON) and a score plot come out beside the video. " + OPTIONS_NOTE,
        [SVD_XT]))
    ckpt = g.add("ImageOnlyCheckpointLoader", models=[SVD_XT], widgets={"ckpt_name": SVD_XT["name"]})
    image = g.add("LoadImage", widgets={"image": START_IMAGE})
    model = g.add("VideoLinearCFGGuidance", widgets={"min_cfg": 1.0}, model=ckpt[0])
    i2v = g.add("ChunkwiseI2VSVD", model=model[0], clip_vision=ckpt[1], vae=ckpt[2],
                widgets={"width": 1024, "height": 576, "video_frames": 25, "motion_bucket_id": 127, "fps": 6,
                         "augmentation_level": 0.0, "steps": 20, "cfg": 2.5, "sampler_name": "euler",
                         "scheduler": "karras"})
    _loop_tail(g, i2v, image, ckpt[1], 8.0, "video/chunkwise_svd_long", chunks=5)
    return g


def _wan21_i2v(g: Graph) -> tuple:
    """The stock Wan 2.1 I2V 480p loaders, prompts and I2V Model (Wan) binding: ``(i2v, image, clip_vision)``."""
    unet = g.add("UNETLoader", models=[WAN21_I2V], widgets={"unet_name": WAN21_I2V["name"], "weight_dtype": "default"})
    clip = g.add("CLIPLoader", models=[UMT5], widgets={"clip_name": UMT5["name"], "type": "wan"})
    vae = g.add("VAELoader", models=[WAN_VAE], widgets={"vae_name": WAN_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[CLIP_VISION_H], widgets={"clip_name": CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": START_IMAGE})
    model = g.add("ModelSamplingSD3", model=unet[0], widgets={"shift": 8.0})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0],
                     widgets={"text": "a calm lake at sunrise, mist over the water, the camera slowly pans right"})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": WAN_NEGATIVE})
    i2v = g.add("ChunkwiseI2VWan", model=model[0], positive=positive[0], negative=negative[0], vae=vae[0],
                clip_vision=clip_vision[0],
                widgets={"width": 832, "height": 480, "length": 33, "steps": 20, "cfg": 6.0,
                         "sampler_name": "uni_pc", "scheduler": "simple"})
    return i2v, image, clip_vision


def wan21_long_video() -> Graph:
    g = Graph("chunkwise_wan21_i2v_long_video",
              "A long Wan 2.1 I2V 480p video: ChunkLoop chains chunks with k-step noise search before each chunk.")
    g.note(_models_note(
        "chunkwise: long video with Wan 2.1 I2V 480p",
        "The stock Wan 2.1 image-to-video models, bound by I2V Model (Wan) and chained by ChunkLoop: each chunk "
        "starts from the last frame of the one before; before each chunk `candidates` noises are previewed for "
        "`k` steps and scored with clip_vision_h, and only the best is fully denoised. " + OPTIONS_NOTE,
        [WAN21_I2V, UMT5, WAN_VAE, CLIP_VISION_H]))
    i2v, image, clip_vision = _wan21_i2v(g)
    _loop_tail(g, i2v, image, clip_vision[0], 16.0, "video/chunkwise_wan21_long", chunks=5)
    return g


def wan22_long_video() -> Graph:
    g = Graph("chunkwise_wan22_i2v_long_video",
              "A long Wan 2.2 14B I2V video: the high- and low-noise experts share each chunk's schedule, and "
              "ChunkLoop chains chunks with k-step noise search before each chunk.")
    g.note(_models_note(
        "chunkwise: long video with Wan 2.2 14B I2V",
        "The stock Wan 2.2 image-to-video experts, bound by I2V Model (Wan): the high-noise model denoises the "
        "first `switch_step` steps, the low-noise model the rest, as the stock two-KSamplerAdvanced workflow. "
        "ChunkLoop chains the chunks; before each chunk `candidates` noises are previewed for `k` steps and scored "
        "with clip_vision_h (used only for scoring: Wan 2.2 has no CLIP-vision input), and only the best is fully "
        "denoised. " + OPTIONS_NOTE,
        [WAN22_I2V_HIGH, WAN22_I2V_LOW, UMT5, WAN_VAE, CLIP_VISION_H]))
    high = g.add("UNETLoader", title="High-noise expert", models=[WAN22_I2V_HIGH],
                 widgets={"unet_name": WAN22_I2V_HIGH["name"], "weight_dtype": "default"})
    low = g.add("UNETLoader", title="Low-noise expert", models=[WAN22_I2V_LOW],
                widgets={"unet_name": WAN22_I2V_LOW["name"], "weight_dtype": "default"})
    clip = g.add("CLIPLoader", models=[UMT5], widgets={"clip_name": UMT5["name"], "type": "wan"})
    vae = g.add("VAELoader", models=[WAN_VAE], widgets={"vae_name": WAN_VAE["name"]})
    clip_vision = g.add("CLIPVisionLoader", models=[CLIP_VISION_H], widgets={"clip_name": CLIP_VISION_H["name"]})
    image = g.add("LoadImage", widgets={"image": START_IMAGE})
    high_model = g.add("ModelSamplingSD3", model=high[0], widgets={"shift": 8.0})
    low_model = g.add("ModelSamplingSD3", model=low[0], widgets={"shift": 8.0})
    positive = g.add("CLIPTextEncode", title="Positive prompt", clip=clip[0],
                     widgets={"text": "a calm lake at sunrise, mist over the water, the camera slowly pans right"})
    negative = g.add("CLIPTextEncode", title="Negative prompt", clip=clip[0], widgets={"text": WAN_NEGATIVE})
    i2v = g.add("ChunkwiseI2VWan", model=high_model[0], positive=positive[0], negative=negative[0], vae=vae[0],
                model_low_noise=low_model[0],
                widgets={"width": 832, "height": 480, "length": 33, "steps": 20, "cfg": 3.5,
                         "sampler_name": "euler", "scheduler": "simple", "switch_step": 10})
    _loop_tail(g, i2v, image, clip_vision[0], 16.0, "video/chunkwise_wan22_long", chunks=5)
    return g


TOY_AB_SETTINGS = {"chunks": 8, "k": 2, "seed": 0, "preview_mode": "short schedule", "drop_first_frame": True}
TOY_WORLD = {"width": 160, "height": 96, "length": 13, "drift": 1.0, "pan": 1, "steps": 8, "sampler_name": "euler",
             "scheduler": "simple"}


def _ab_tail(g: Graph, i2v: Node, image: Node, settings: dict, frames: int, fps: float, prefix: str, *,
             scorer=None, clip_vision=None, background=None) -> None:
    """Two ChunkLoops from one image and seed (naive, and with search), both evaluated and compared, and
    the videos: naive, search, and side by side (naive left)."""
    scoring = {"scorer": scorer} if scorer is not None else {"clip_vision": clip_vision}
    naive = g.add("ChunkwiseChunkLoop", title="ChunkLoop: naive (no search)", i2v=i2v[0], image=image[0],
                  widgets={**settings, "candidates": 1, "search": False})
    search = g.add("ChunkwiseChunkLoop", title="ChunkLoop: k-step noise search", i2v=i2v[0], image=image[0],
                   widgets={**settings, "candidates": 4, "search": True}, **scoring)
    encoders = {"background_clip_vision": background} if background is not None else {}
    widgets = {"frames_per_chunk": frames, "drop_first_frame": True}
    eval_a = g.add("ChunkwiseEvaluate", title="Evaluate: naive", video=naive[0], image=image[0],
                   widgets={**widgets, "label": "naive"}, **encoders)
    eval_b = g.add("ChunkwiseEvaluate", title="Evaluate: search", video=search[0], image=image[0],
                   widgets={**widgets, "label": "search m=4"}, **encoders)
    compare = g.add("ChunkwiseCompare", a=eval_a[0], b=eval_b[0])
    g.add("PreviewImage", title="Naive vs search", images=compare[1])
    g.add("PreviewAny", title="Comparison", source=compare[2])
    g.add("PreviewAny", title="Evaluation: naive", source=eval_a[0])
    g.add("PreviewAny", title="Evaluation: search", source=eval_b[0])
    g.add("PreviewImage", title="Search scores per chunk", images=search[2])
    side = g.add("ImageStitch", title="Naive | search", image1=naive[0], image2=search[0],
                 widgets={"direction": "right", "match_image_size": True, "spacing_width": 4,
                          "spacing_color": "white"})
    for source, name in ((side, "side_by_side"), (naive, "naive"), (search, "search")):
        video = g.add("CreateVideo", images=source[0], widgets={"fps": fps})
        g.add("SaveVideo", video=video[0], widgets={"filename_prefix": f"video/{prefix}_{name}"})


def toy_world_ab() -> Graph:
    g = Graph("chunkwise_toy_world_ab",
              "Naive chaining against k-step noise search, from one image and seed, on the toy world (an analytic "
              "model needing no weights): both videos side by side, both evaluated and compared.")
    g.note(
        "## chunkwise: naive against search, on a toy world\n\n"
        "**A toy model that demonstrates the mechanism, not a result about real models.** Toy World is an "
        "analytic image-to-video model (no weights, a second on a CPU per chunk): each chunk pans its start "
        "frame and drifts in colour, saturation and shape by an amount its initial noise decides, plus a warm "
        "bias every chunk adds.\n\n"
        "The two ChunkLoops share the image, the seed and every setting but the search: `candidates = 1, search "
        "off` (naive) and `candidates = 4` scored by the colour scorer (no weights: the worst frame's Lab colour "
        "distance to the chunk's start frame). Both videos are evaluated (Chunkwise Evaluate: colour drift of "
        "every chunk's last frame from the input image, temporal flickering; the model-based VBench dimensions "
        "need their encoders) and compared (b = search minus a = naive). The side-by-side video shows naive on "
        "the left, search on the right. Keep both seeds equal when you change one.")
    image = g.add("LoadImage", widgets={"image": START_IMAGE})
    toy = g.add("ChunkwiseToyWorld", widgets=dict(TOY_WORLD))
    scorer = g.add("ChunkwiseScorerColour", widgets={"size": 64, "anchor_weight": 0.0})
    _ab_tail(g, toy, image, TOY_AB_SETTINGS, TOY_WORLD["length"], 12.0, "chunkwise_toy_ab", scorer=scorer)
    return g


def wan21_ab() -> Graph:
    g = Graph("chunkwise_wan21_i2v_ab",
              "Naive chaining against k-step noise search with Wan 2.1 I2V 480p, from one image and seed: both "
              "videos side by side, both evaluated and compared.")
    g.note(_models_note(
        "chunkwise: naive against search with Wan 2.1 I2V 480p",
        "The two ChunkLoops share the image, the seed and every setting but the search (`candidates = 1, search "
        "off` against `candidates = 4` scored with clip_vision_h). Both videos are evaluated by Chunkwise "
        "Evaluate (colour drift and temporal flickering need no model; clip_vision_h gives a background "
        "consistency and an embedding drift that are not VBench's numbers, which need CLIP ViT-B/32: connect "
        "Chunkwise Scorer (open_clip) to background_scorer, and Chunkwise Scorer (DINO) to subject_scorer) and "
        "compared (b = search minus a = naive). Keep both seeds equal when you change one.",
        [WAN21_I2V, UMT5, WAN_VAE, CLIP_VISION_H]))
    i2v, image, clip_vision = _wan21_i2v(g)
    settings = {"chunks": 5, "k": 5, "seed": 0, "preview_mode": "short schedule", "drop_first_frame": True}
    _ab_tail(g, i2v, image, settings, 33, 16.0, "chunkwise_wan21_ab", clip_vision=clip_vision[0],
             background=clip_vision[0])
    return g


try:  # the families' graph modules take this module's helpers as ``mw`` (no import back)
    from . import (  # as chunkwise.scripts.make_workflows
        workflows_hunyuan,
        workflows_kandinsky5,
        workflows_ltxv,
        workflows_masked,
    )
except ImportError:
    import workflows_hunyuan  # run as a script: scripts/ is on sys.path
    import workflows_kandinsky5
    import workflows_ltxv
    import workflows_masked

GRAPHS = {g.name: g for g in (svd_single_chunk(), svd_long_video(), wan21_long_video(), wan22_long_video(),
                              toy_world_ab(), wan21_ab())}
GRAPHS.update({g.name: g for g in (*workflows_masked.graphs(sys.modules[__name__]),
                                    workflows_ltxv.ltxv_long_video(sys.modules[__name__]),
                                    workflows_kandinsky5.kandinsky5_long_video(sys.modules[__name__]),
                                    *workflows_hunyuan.graphs(sys.modules[__name__]))})


def render(object_info: dict, made_on: tuple = MADE_ON) -> dict[Path, str]:
    """The path and text of every workflow file made on ComfyUI ``made_on``, from its /object_info."""
    files = {}
    for name, graph in GRAPHS.items():
        if graph.made_on != made_on:
            continue
        files[WORKFLOWS / f"{name}.json"] = json.dumps(build_ui(graph, object_info), indent=2, ensure_ascii=False) + "\n"
        files[WORKFLOWS / "api" / f"{name}.json"] = (
            json.dumps(build_api(graph, object_info), indent=2, ensure_ascii=False) + "\n"
        )
    return files


def fetch_object_info(url: Optional[str]) -> dict:
    if url:
        with urllib.request.urlopen(url.rstrip("/") + "/object_info", timeout=120) as resp:  # noqa: S310
            return json.loads(resp.read())
    try:
        from .comfy_server import ComfyServer  # imported as chunkwise.scripts.make_workflows
    except ImportError:
        from comfy_server import ComfyServer  # run as a script: scripts/ is on sys.path
    with tempfile.TemporaryDirectory(prefix="chunkwise-workflows-") as tmp, ComfyServer(tmp) as server:
        failures = server.import_failures()
        if failures:
            raise SystemExit(f"the pack failed to import, so its nodes are missing: {failures}\n{server.log_tail()}")
        return server.object_info()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running ComfyUI to read /object_info from (default: start one headless)")
    parser.add_argument("--object-info", type=Path, help="a saved /object_info JSON instead of a server")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file differs")
    parser.add_argument("--made-on", default=".".join(map(str, MADE_ON)),
                        help="the ComfyUI version serving /object_info: writes the workflows made on it (default "
                             "%(default)s; 0.28.2 for Kandinsky 5, with CHUNKWISE_COMFY=0.28.2 and its venv)")
    args = parser.parse_args(argv)
    object_info = json.loads(args.object_info.read_text()) if args.object_info else fetch_object_info(args.url)
    made_on = tuple(int(part) for part in args.made_on.split("."))
    stale = []
    for path, text in render(object_info, made_on).items():
        old = path.read_text() if path.is_file() else None
        if old == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "stale" if args.check else "written"
    print(f"{len(stale)} workflow file(s) {verb}: {', '.join(map(str, stale)) or 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
