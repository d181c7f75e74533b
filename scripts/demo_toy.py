"""The demo on the toy world: naive chaining against the search, through a headless ComfyUI, no weights.

THE TOY WORLD IS A TOY MODEL THAT DEMONSTRATES THE MECHANISM, NOT A RESULT ABOUT REAL MODELS
(``nodes/toy_world.py``: an analytic image-to-video model whose initial noise decides how much
each chunk drifts in colour and shape).

Queues the bundled A/B workflow ``workflows/api/chunkwise_toy_world_ab.json`` (two ChunkLoops from
one image and seed, naive and with search by the weight-free colour scorer; both evaluated by
Chunkwise Evaluate and compared) and writes under the output folder:

- ``chunkwise_demo_toy_naive.mp4``, ``..._search.mp4``, ``..._side_by_side.mp4`` (naive left),
- ``chunkwise_demo_toy_naive.eval.json``, ``..._search.eval.json`` (chunkwise.eval/1),
- ``chunkwise_demo_toy_comparison.png`` (Chunkwise Compare's chart), ``..._comparison.txt``,
- ``chunkwise_demo_toy_search_report.json`` and ``..._search_scores.png`` (the search's scores),

and prints the per-chunk drift table with both last-chunk figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

WORKFLOW = "chunkwise_toy_world_ab"
LABEL = "a toy model that demonstrates the mechanism, not a result about real models"
START_IMAGE = "chunkwise_toy_world.png"
LOOP_TITLES = {"naive": "ChunkLoop: naive (no search)", "search": "ChunkLoop: k-step noise search"}
EVAL_TITLES = {"naive": "Evaluation: naive", "search": "Evaluation: search"}
VIDEO_PREFIXES = ("side_by_side", "naive", "search")


def write_toy_image(path: Path, width: int = 160, height: int = 96) -> None:
    """A small landscape that wraps around horizontally (the toy world pans it): sky, sun, hills, a fence,
    a house. Flat colours and straight edges, so colour drift and distortion show."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    img = np.stack([0.35 + 0.3 * v, 0.55 + 0.3 * v, 0.95 - 0.1 * v], axis=-1)
    img[((u - 0.72) ** 2 * (width / height) ** 2 + (v - 0.22) ** 2) < 0.012] = (1.0, 0.85, 0.25)  # sun
    hills = v > 0.5 + 0.08 * np.sin(2 * np.pi * 2 * u) + 0.04 * np.sin(2 * np.pi * 5 * u + 1.0)
    img[hills] = np.stack([0.2 + 0.1 * v, 0.55 - 0.2 * v, 0.2 + 0 * v], axis=-1)[hills]
    img[v > 0.78] = (0.45, 0.32, 0.2)  # ground
    posts = (np.mod(u * 16, 1.0) < 0.12) & (v > 0.66) & (v < 0.8)
    img[posts | (np.abs(v - 0.7) < 0.012)] = (0.95, 0.95, 0.92)  # fence
    img[(u > 0.18) & (u < 0.36) & (v > 0.5) & (v < 0.78)] = (0.8, 0.2, 0.15)  # house
    roof = (v <= 0.5) & (v > 0.5 - (0.09 - np.abs(u - 0.27)) * (width / height)) & (np.abs(u - 0.27) < 0.11)
    img[roof] = (0.3, 0.15, 0.1)
    img[(np.abs(u - 0.27) < 0.025) & (np.abs(v - 0.6) < 0.04)] = (1.0, 0.95, 0.6)  # window
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def _by_title(prompt: dict, title: str) -> str:
    found = [k for k, v in prompt.items() if v.get("_meta", {}).get("title") == title]
    if len(found) != 1:
        raise ValueError(f"expected one node titled {title!r} in {WORKFLOW}, found {found}; regenerate it with "
                         "`python scripts/make_workflows.py`")
    return found[0]


def toy_prompt(prompt: dict, image_name: str, overrides: dict) -> dict:
    """The A/B prompt with the start image and the command line's settings: chunks, k, steps and seed for
    both loops (one image and seed for both), candidates for the search loop only."""
    loops = {role: prompt[_by_title(prompt, title)]["inputs"] for role, title in LOOP_TITLES.items()}
    for role, inputs in loops.items():
        for key in ("chunks", "seed"):
            if key in overrides:
                inputs[key] = overrides[key]
        if "k" in overrides and role == "search":
            inputs["k"] = overrides["k"]
    if "candidates" in overrides:
        loops["search"]["candidates"] = overrides["candidates"]
    for node in prompt.values():
        if node["class_type"] == "ChunkwiseToyWorld" and "steps" in overrides:
            node["inputs"]["steps"] = overrides["steps"]
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = image_name
    return prompt


def toy_size(prompt: dict) -> tuple[int, int, int]:
    """(width, height, frames per chunk) of the workflow's Toy World node."""
    node = next(v for v in prompt.values() if v["class_type"] == "ChunkwiseToyWorld")
    return node["inputs"]["width"], node["inputs"]["height"], node["inputs"]["length"]


def collect(server, entry: dict, prompt: dict, out_dir: Path, stem: str) -> dict:
    """Copy the videos, plots, reports and evaluations out of the server's /history; returns what was written."""
    outputs, written = entry["outputs"], {}
    for nid, node in prompt.items():
        if node["class_type"] != "SaveVideo":
            continue
        prefix = node["inputs"]["filename_prefix"].rsplit("_ab_", 1)[-1]
        items = outputs.get(nid, {}).get("images") or []
        if prefix in VIDEO_PREFIXES and items:
            src = server.output_path(items[0])
            written[prefix] = out_dir / f"{stem}_{prefix}{src.suffix}"
            shutil.copyfile(src, written[prefix])
    for role, title in EVAL_TITLES.items():
        text = (outputs.get(_by_title(prompt, title), {}).get("text") or [None])[0]
        if text:
            written[f"{role}_eval"] = out_dir / f"{stem}_{role}.eval.json"
            written[f"{role}_eval"].write_text(json.dumps(json.loads(text), indent=2) + "\n")
    images = {"comparison_plot": "Naive vs search", "search_scores": "Search scores per chunk"}
    for key, title in images.items():
        items = outputs.get(_by_title(prompt, title), {}).get("images") or []
        if items:
            written[key] = out_dir / f"{stem}_{key.replace('_plot', '')}.png"
            shutil.copyfile(server.output_path(items[0]), written[key])
    summary = (outputs.get(_by_title(prompt, "Comparison"), {}).get("text") or [None])[0]
    if summary:
        written["comparison"] = out_dir / f"{stem}_comparison.txt"
        written["comparison"].write_text(summary.rstrip() + "\n")
    report = (outputs.get(_by_title(prompt, LOOP_TITLES["search"]), {}).get("report") or [None])[0]
    if report:
        written["search_report"] = out_dir / f"{stem}_search_report.json"
        written["search_report"].write_text(json.dumps(json.loads(report), indent=2) + "\n")
    return written


def last_drifts(naive: dict, search: dict) -> tuple[float, float]:
    """The colour drift of the last chunk's last frame from the input image: (naive, search)."""
    return naive["chunks"][-1]["drift"]["colour"], search["chunks"][-1]["drift"]["colour"]


def drift_table(naive: dict, search: dict) -> str:
    """Per chunk: colour drift of its last frame from the input image and temporal flickering, naive and search."""
    lines = [f"{'chunk':>5}  {'colour drift naive':>18}  {'search':>7}  {'flicker naive':>13}  {'search':>7}"]
    for a, b in zip(naive["chunks"], search["chunks"], strict=True):
        fa, fb = a["scores"].get("temporal_flickering"), b["scores"].get("temporal_flickering")
        lines.append(f"{a['index'] + 1:>5}  {a['drift']['colour']:>18.2f}  {b['drift']['colour']:>7.2f}  "
                     f"{'-' if fa is None else f'{fa:.4f}':>13}  {'-' if fb is None else f'{fb:.4f}':>7}")
    drift_a, drift_b = last_drifts(naive, search)
    lines.append(f"last chunk ({len(naive['chunks'])}): colour drift naive {drift_a:.2f}, search {drift_b:.2f} "
                 "(CIE Lab, |mean difference| + |std difference|; about 2.3 is just noticeable)")
    left = sorted(set(naive.get("left_out", {})))
    if left:
        lines.append(f"not computed (no encoder weights in the toy demo): {', '.join(left)}")
    return "\n".join(lines)


def report(written: dict) -> str:
    """The table (from the two evaluations) for the terminal."""
    naive = json.loads(written["naive_eval"].read_text())
    search = json.loads(written["search_eval"].read_text())
    return drift_table(naive, search)


__all__ = ["LABEL", "START_IMAGE", "WORKFLOW", "collect", "drift_table", "last_drifts", "report", "toy_prompt",
           "toy_size", "write_toy_image"]
