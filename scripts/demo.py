"""The demo: long videos made by a real, headless ComfyUI through its API.

Starts ComfyUI (``scripts/comfy_host.py``: ``COMFYUI_DIR`` or the 0.3.75 test
host) with this pack in custom_nodes/ and queues a bundled workflow
(``workflows/api/``) over HTTP.

Default (no weights): ``--workflow toy``, the A/B workflow on the toy world, a
toy model that demonstrates the mechanism, not a result about real models
(``scripts/demo_toy.py`` lists what it writes: the naive, search and side-by-side
videos, both evaluations, the comparison chart, and the per-chunk drift table).

With ``--workflow wan|wan22|svd`` (the default with ``--models``) it queues a
long-video workflow and writes under ``--output`` (default ``./output``):

- ``chunkwise_demo_<workflow>.mp4``: the video (ComfyUI's CreateVideo + SaveVideo),
- ``chunkwise_demo_<workflow>_report.json``: the search report (chunkwise.report/1),
- ``chunkwise_demo_<workflow>_scores.png``: every candidate's score per chunk,
- ``chunkwise_demo_<workflow>_summary.txt``: the readable per-chunk summary,
- ``demo_comfyui/``: the server's base directory (its log: ``comfyui.log``).

Models:

- default (no weights needed): tiny random models. For ``--workflow wan`` (and
  ``wan22``, whose two expert loaders both load the one tiny file) the
  workflow's own UNETLoader and VAELoader load tiny Wan files written into the
  server's models/ folder; the text encoder and CLIP vision are the test pack's
  tiny stand-ins (no small umt5/ViT-H file can be made). For ``--workflow svd``
  the checkpoint loader is the test pack's tiny SVD (ComfyUI's loaders accept
  only the full-size SVD UNet). Tiny models make moving colour noise, not a
  picture: the demo shows the pipeline, the report and the timings.
- ``--models DIR`` (a ComfyUI ``models/`` folder), or ``COMFYUI_DIR`` whose
  ``models/`` holds the files: the real weights under the workflow's standard
  names (svd_xt.safetensors; wan2.2_i2v_high_noise_14B_fp16.safetensors and
  wan2.2_i2v_low_noise_14B_fp16.safetensors for wan22; wan2.1_i2v_480p_14B_fp16.safetensors,
  umt5_xxl_fp8_e4m3fn_scaled.safetensors, wan_2.1_vae.safetensors,
  clip_vision_h.safetensors) at the workflow's real sizes, on ComfyUI's own
  device choice (a GPU when there is one).

Usage: ``bash scripts/demo.sh [--workflow wan|svd] [--models DIR] [--image PNG] [--chunks N] ...``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

try:
    from . import demo_toy  # imported as chunkwise.scripts.demo
    from .comfy_server import ComfyServer, ComfyServerError, comfy_root
except ImportError:
    import demo_toy  # run as a script: scripts/ is on sys.path
    from comfy_server import ComfyServer, ComfyServerError, comfy_root

ROOT = Path(__file__).resolve().parent.parent
API_DIR = ROOT / "workflows" / "api"
UI_DIR = ROOT / "workflows"
TESTPACK = ROOT / "tests" / "e2e" / "testpack"
TESTPACK_NAME = "chunkwise_testpack"
TINY_PY = ROOT / "tests" / "comfy" / "tiny.py"

WORKFLOW_FILES = {"svd": "chunkwise_svd_long_video", "wan": "chunkwise_wan21_i2v_long_video",
                  "wan22": "chunkwise_wan22_i2v_long_video", "toy": demo_toy.WORKFLOW}
TINY_WAN_UNET = "chunkwise_tiny_wan_i2v.safetensors"
TINY_WAN_VAE = "chunkwise_tiny_wan_vae.safetensors"
TINY_WAN_TEXT_WIDTH = 4096  # text_dim of the loadable tiny Wan file (umt5-xxl width)

# What a tiny demo run does: a few seconds per chunk on two CPU cores.
TINY = {
    "wan": {"width": 64, "height": 64, "length": 9, "steps": 6, "chunks": 4, "candidates": 3, "k": 2},
    "svd": {"width": 64, "height": 48, "video_frames": 5, "steps": 4, "chunks": 3, "candidates": 3, "k": 2},
}
TINY["wan22"] = dict(TINY["wan"])  # both experts load the one tiny Wan file

log = logging.getLogger("chunkwise.demo")


class DemoError(RuntimeError):
    """A demo set-up problem, worded with the value found and the fix."""


# ---------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------


def load_prompt(workflow: str) -> dict:
    path = API_DIR / f"{WORKFLOW_FILES[workflow]}.json"
    if not path.is_file():
        raise DemoError(f"the API workflow {path} is missing; regenerate it with `python scripts/make_workflows.py`")
    return json.loads(path.read_text())


def find(prompt: dict, class_type: str) -> str:
    found = [k for k, v in prompt.items() if v["class_type"] == class_type]
    if len(found) != 1:
        raise DemoError(f"expected one {class_type} node in the workflow, found {len(found)}: {found}")
    return found[0]


def set_inputs(prompt: dict, values: dict) -> None:
    """Set widget inputs by name on every node that has them (never a link).

    A new step count moves a two-expert binding's switch_step to half the steps, as the stock Wan 2.2
    workflow has it (10 of 20).
    """
    for node in prompt.values():
        for key, value in values.items():
            if key in node["inputs"] and not isinstance(node["inputs"][key], list):
                node["inputs"][key] = value
        if "steps" in values and node["inputs"].get("switch_step") and "switch_step" not in values:
            node["inputs"]["switch_step"] = max(1, int(values["steps"]) // 2)


def tiny_prompt(workflow: str, image_name: str, overrides: dict) -> dict:
    """The bundled workflow with tiny models and sizes (see the module docstring)."""
    prompt = load_prompt(workflow)
    set_inputs(prompt, {**TINY[workflow], **overrides})
    prompt[find(prompt, "LoadImage")]["inputs"]["image"] = image_name
    if workflow == "svd":
        node = prompt[find(prompt, "ImageOnlyCheckpointLoader")]
        node["class_type"], node["inputs"] = "ChunkwiseTestSVDCheckpoint", {"seed": 5}
        return prompt
    for node in prompt.values():  # Wan 2.2 has two (the experts)
        if node["class_type"] == "UNETLoader":
            node["inputs"]["unet_name"] = TINY_WAN_UNET
    prompt[find(prompt, "VAELoader")]["inputs"]["vae_name"] = TINY_WAN_VAE
    node = prompt[find(prompt, "CLIPVisionLoader")]
    node["class_type"], node["inputs"] = "ChunkwiseTestCLIPVision", {"seed": 3}
    del prompt[find(prompt, "CLIPLoader")]
    for nid, node in prompt.items():
        if node["class_type"] == "CLIPTextEncode":
            prompt[nid] = {"class_type": "ChunkwiseTestTextConditioning", "_meta": node.get("_meta", {}),
                           "inputs": {"text": node["inputs"]["text"], "width": TINY_WAN_TEXT_WIDTH, "tokens": 8}}
    return prompt


def real_prompt(workflow: str, image_name: str, overrides: dict) -> dict:
    prompt = load_prompt(workflow)
    set_inputs(prompt, overrides)
    prompt[find(prompt, "LoadImage")]["inputs"]["image"] = image_name
    return prompt


# ---------------------------------------------------------------------------
# Models and the start image
# ---------------------------------------------------------------------------


def required_models(workflow: str) -> list[dict]:
    """The workflow's model files ({name, url, directory}) from its UI twin's loader properties."""
    ui = json.loads((UI_DIR / f"{WORKFLOW_FILES[workflow]}.json").read_text())
    return [m for node in ui["nodes"] for m in node.get("properties", {}).get("models", [])]


def check_models(models_dir: Path, workflow: str) -> list[str]:
    """The missing files, each with where it goes and where to download it."""
    missing = []
    aliases = {"diffusion_models": ("diffusion_models", "unet"), "text_encoders": ("text_encoders", "clip")}
    for m in required_models(workflow):
        folders = aliases.get(m["directory"], (m["directory"],))
        if not any((models_dir / folder / m["name"]).is_file() for folder in folders):
            missing.append(f"{models_dir / folders[0] / m['name']} (download: {m['url']})")
    return missing


def write_extra_model_paths(path: Path, models_dir: Path) -> None:
    """Point ComfyUI at a models/ folder outside its base directory."""
    path.write_text(
        "chunkwise_demo:\n"
        f"    base_path: {models_dir}\n"
        "    checkpoints: checkpoints\n"
        "    diffusion_models: |\n        diffusion_models\n        unet\n"
        "    text_encoders: |\n        text_encoders\n        clip\n"
        "    vae: vae\n"
        "    clip_vision: clip_vision\n"
    )


def write_tiny_wan_files(models_dir: Path) -> None:
    """Tiny Wan diffusion model + VAE files that ComfyUI's own loaders accept (in a child process with ComfyUI)."""
    unet = models_dir / "diffusion_models" / TINY_WAN_UNET
    vae = models_dir / "vae" / TINY_WAN_VAE
    if unet.is_file() and vae.is_file():
        return
    log.info("writing tiny Wan model files into %s", models_dir)
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--write-tiny-wan", str(models_dir)], check=True)


def _write_tiny_wan_in_process(models_dir: Path) -> None:
    import importlib.util

    root = comfy_root()
    sys.path.insert(0, str(root))  # a child process of the demo, never the pack
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    spec = importlib.util.spec_from_file_location("chunkwise_demo_tiny", TINY_PY)
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    paths = tiny.save_tiny_wan_files(models_dir)
    paths["unet"].rename(models_dir / "diffusion_models" / TINY_WAN_UNET)
    paths["vae"].rename(models_dir / "vae" / TINY_WAN_VAE)


def write_start_image(path: Path, width: int = 512, height: int = 320, seed: int = 7) -> None:
    """A smooth seeded colour field with a few soft discs: something for the scorer to hold on to."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(x / width * (2 + c) * np.pi + rng.uniform(0, 6)) *
                    np.cos(y / height * (1 + c) * np.pi) for c in range(3)], axis=-1)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 80)
        colour = rng.uniform(0, 1, 3)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - weight) + colour * weight
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def collect(server: ComfyServer, entry: dict, prompt: dict, out_dir: Path, stem: str) -> dict:
    """Copy the video, report, plot and summary out of the server's folders; returns what was written."""
    written = {}
    outputs = entry["outputs"]
    videos = outputs.get(find(prompt, "SaveVideo"), {}).get("images") or []
    if videos:
        src = server.output_path(videos[0])
        written["video"] = out_dir / f"{stem}{src.suffix}"
        shutil.copyfile(src, written["video"])
    loop = outputs.get(find(prompt, "ChunkwiseChunkLoop"), {})
    texts = loop.get("report") or outputs.get(find(prompt, "PreviewAny"), {}).get("text") or []
    if texts:
        report = json.loads(texts[0])
        written["report"] = out_dir / f"{stem}_report.json"
        written["report"].write_text(json.dumps(report, indent=2) + "\n")
    plots = outputs.get(find(prompt, "PreviewImage"), {}).get("images") or []
    if plots:
        written["scores"] = out_dir / f"{stem}_scores.png"
        shutil.copyfile(server.output_path(plots[0]), written["scores"])
    summary = loop.get("text") or []
    if summary:
        written["summary"] = out_dir / f"{stem}_summary.txt"
        written["summary"].write_text(str(summary[0]).rstrip() + "\n")
    return written


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="chunkwise demo: a long video through a headless ComfyUI's API.")
    parser.add_argument("--workflow", choices=sorted(WORKFLOW_FILES), default=None,
                        help="toy: naive against search on the toy world, no weights (the default without "
                             "--models); wan: Wan 2.1 I2V 480p long video (the default with --models); wan22: Wan "
                             "2.2 14B I2V (two experts); svd: SVD-XT long video. wan/wan22/svd without weights run "
                             "tiny random models (moving colour noise)")
    parser.add_argument("--models", type=Path, default=None,
                        help="a ComfyUI models/ folder with the workflow's real weights (default: $COMFYUI_DIR/models "
                             "when it has them, else tiny random models)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models even when real weights are found")
    parser.add_argument("--image", type=Path, default=None, help="start image (default: a generated one)")
    parser.add_argument("--output", type=Path, default=Path("output"), help="where results go (default ./output)")
    parser.add_argument("--chunks", type=int, default=None, help="chunks (n); default: the workflow's (tiny: 4/3)")
    parser.add_argument("--candidates", type=int, default=None, help="candidates per chunk (m)")
    parser.add_argument("--k", type=int, default=None, help="preview steps per candidate")
    parser.add_argument("--steps", type=int, default=None, help="full sampling steps (s)")
    parser.add_argument("--seed", type=int, default=None, help="base seed")
    parser.add_argument("--cpu", action="store_true", help="force ComfyUI onto the CPU with real weights")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the video")
    parser.add_argument("--write-tiny-wan", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def choose_models(args) -> Optional[Path]:
    """The real models/ folder to use, or None for tiny models."""
    if args.tiny:
        return None
    if args.models is not None:
        models = args.models.expanduser().resolve()
        missing = check_models(models, args.workflow)
        if missing:
            raise DemoError(f"--models {models} lacks the files of the {args.workflow} workflow:\n  "
                            + "\n  ".join(missing) + "\nDownload them there, or drop --models for tiny models.")
        return models
    env = os.environ.get("COMFYUI_DIR")
    if env and not check_models(Path(env) / "models", args.workflow):
        return Path(env).resolve() / "models"
    return None


ENCODER_FILES = {
    "--dino": ("clip_vision", ("dino_vitbase16",)),
    "--clip-b32": ("clip_vision", ("vit-b-32", "vit_b_32", "vit-b32", "clip-vit-base-patch32")),
    "--clip-l14": ("clip_vision", ("vit-l-14", "vit_l_14", "clip-vit-large-patch14")),
    "--aesthetic-head": ("aesthetic", ("sa_0_4_vit_l_14_linear",)),
}
"""chunkwise evaluate's encoder options, and the models/ subfolder and name fragments that find their files."""


def find_encoders(models_dir: Path) -> dict[str, Path]:
    """The evaluation encoders a models/ folder holds: chunkwise evaluate option -> file or folder."""
    found = {}
    for option, (folder, names) in ENCODER_FILES.items():
        base = models_dir / folder
        entries = sorted(base.iterdir()) if base.is_dir() else []
        match = [e for e in entries if any(n in e.name.lower() for n in names)]
        if match:
            found[option] = match[0]
    return found


def load_pack():
    """This repository as the package ``chunkwise`` (the evaluator lives in it), loaded by file path."""
    import importlib.util

    if "chunkwise" in sys.modules and Path(sys.modules["chunkwise"].__file__).resolve().parent == ROOT:
        return sys.modules["chunkwise"]
    spec = importlib.util.spec_from_file_location("chunkwise", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["chunkwise"] = module
    spec.loader.exec_module(module)
    return module


def evaluate_real_run(folder: Path, models_dir: Path, image: Path, out_dir: Path, stem: str) -> dict:
    """``chunkwise evaluate`` on the run folder with whatever encoders ``models_dir`` holds."""
    load_pack()
    from chunkwise.scorers.evaluation_cli import evaluate_command

    encoders = find_encoders(models_dir)
    log.info("evaluating %s with %s", folder, ", ".join(f"{k} {v.name}" for k, v in encoders.items()) or
             "no encoder files (only the dimensions that need no model)")
    written = {"eval": out_dir / f"{stem}.eval.json", "eval_plot": out_dir / f"{stem}_eval.png"}
    argv = [str(folder), "--json", str(written["eval"]), "--plot", str(written["eval_plot"]), "--image", str(image)]
    for option, path in encoders.items():
        argv += [option, str(path)]
    if evaluate_command(argv) != 0:
        raise DemoError(f"evaluating {folder} failed (see the message above)")
    return written


def run_toy(args) -> int:
    """Naive against search on the toy world (scripts/demo_toy.py): no weights, a few CPU seconds per chunk."""
    if args.models is not None:
        raise DemoError(f"--workflow toy needs no weights, got --models {args.models}; drop --models, or pick "
                        "--workflow wan, wan22 or svd to run real weights")
    out_dir = args.output.resolve()
    base = out_dir / "demo_comfyui"
    (base / "input").mkdir(parents=True, exist_ok=True)
    prompt = load_prompt("toy")
    # 1. The start image (the toy landscape, sized like the Toy World node, unless --image), and the settings.
    image_name = demo_toy.START_IMAGE
    if args.image is not None:
        if not args.image.is_file():
            raise DemoError(f"--image {args.image} does not exist; give a PNG/JPEG file or leave --image out")
        image_name = "chunkwise_demo_start" + args.image.suffix.lower()
        shutil.copyfile(args.image, base / "input" / image_name)
    else:
        width, height, _ = demo_toy.toy_size(prompt)
        demo_toy.write_toy_image(base / "input" / image_name, width, height)
    overrides = {k: v for k, v in (("chunks", args.chunks), ("candidates", args.candidates), ("k", args.k),
                                  ("steps", args.steps), ("seed", args.seed)) if v is not None}
    prompt = demo_toy.toy_prompt(prompt, image_name, overrides)
    # 2. Server up, the A/B prompt through the API, results out, server down.
    stem = "chunkwise_demo_toy"
    started = time.monotonic()
    with ComfyServer(base, port=args.port, cpu=True) as server:
        failures = server.import_failures()
        if failures:
            raise DemoError(f"custom nodes failed to import: {failures}; see {server.log_path}")
        log.info("ComfyUI on %s (log %s); queueing %s", server.url, server.log_path, demo_toy.WORKFLOW)
        entry = server.wait(server.queue(prompt), timeout=args.timeout)
        written = demo_toy.collect(server, entry, prompt, out_dir, stem)
    seconds = time.monotonic() - started
    # 3. The table and where things are.
    (out_dir / f"{stem}_prompt.json").write_text(json.dumps(prompt, indent=2, ensure_ascii=False) + "\n")
    print(f"\nchunkwise demo on the toy world ({demo_toy.LABEL}), naive against search from one image and seed, "
          f"finished in {seconds:.0f} s")
    missing = [k for k in ("naive", "search", "side_by_side", "naive_eval", "search_eval", "comparison_plot")
               if k not in written]
    if "naive_eval" in written and "search_eval" in written:
        print(demo_toy.report(written))
    for role, path in written.items():
        print(f"  {role:15s} {path}")
    print(f"  {'server':15s} {base} (log: {base / 'comfyui.log'})")
    if missing:
        print(f"  missing outputs: {', '.join(missing)}: see the server log", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[demo] %(message)s")
    if args.write_tiny_wan is not None:
        _write_tiny_wan_in_process(args.write_tiny_wan)
        return 0
    if args.workflow is None:
        args.workflow = "toy" if args.models is None else "wan"
    if args.workflow == "toy":
        return run_toy(args)

    # 1. Models: real weights when given, else tiny ones.
    models = choose_models(args)
    out_dir = args.output.resolve()
    base = out_dir / "demo_comfyui"
    for name in ("models", "input"):
        (base / name).mkdir(parents=True, exist_ok=True)
    extra_args, extra_nodes = [], {}
    if models is None:
        extra_nodes[TESTPACK_NAME] = TESTPACK
        if args.workflow != "svd":  # wan, wan22
            write_tiny_wan_files(base / "models")
        log.info("models: tiny random ones (pass --models DIR for real weights)")
    else:
        write_extra_model_paths(base / "extra_model_paths.yaml", models)
        extra_args = ["--extra-model-paths-config", str(base / "extra_model_paths.yaml")]
        log.info("models: real weights from %s", models)

    # 2. The start image, in the server's input folder.
    image_name = "chunkwise_demo_start.png"
    if args.image is not None:
        if not args.image.is_file():
            raise DemoError(f"--image {args.image} does not exist; give a PNG/JPEG file or leave --image out")
        image_name = "chunkwise_demo_start" + args.image.suffix.lower()
        shutil.copyfile(args.image, base / "input" / image_name)
    else:
        write_start_image(base / "input" / image_name)

    # 3. The prompt.
    overrides = {k: v for k, v in (("chunks", args.chunks), ("candidates", args.candidates), ("k", args.k),
                                  ("steps", args.steps), ("seed", args.seed)) if v is not None}
    if "candidates" in overrides:
        overrides["count"] = overrides["candidates"]
    build = tiny_prompt if models is None else real_prompt
    prompt = build(args.workflow, image_name, overrides)
    set_inputs(prompt, {"filename_prefix": f"video/chunkwise_demo_{args.workflow}"})
    run_name = f"chunkwise_demo_{args.workflow}_{time.strftime('%Y%m%d-%H%M%S')}"
    if models is not None:  # frames stream to a run folder, which the evaluation reads back losslessly
        prompt[find(prompt, "ChunkwiseChunkLoop")]["inputs"]["run_name"] = run_name

    # 4. Server up, prompt through the API, results out, server down.
    stem = f"chunkwise_demo_{args.workflow}"
    cpu = models is None or args.cpu
    started = time.monotonic()
    with ComfyServer(base, port=args.port, extra_custom_nodes=extra_nodes, extra_args=extra_args, cpu=cpu) as server:
        failures = server.import_failures()
        if failures:
            raise DemoError(f"custom nodes failed to import: {failures}; see {server.log_path}")
        log.info("ComfyUI on %s (log %s); queueing %s", server.url, server.log_path, WORKFLOW_FILES[args.workflow])
        prompt_id = server.queue(prompt)
        entry = server.wait(prompt_id, timeout=args.timeout)
        written = collect(server, entry, prompt, out_dir, stem)
    seconds = time.monotonic() - started
    if models is not None:
        written.update(evaluate_real_run(base / "output" / "chunkwise" / run_name, models, base / "input" / image_name,
                                         out_dir, stem))

    # 5. Where things are.
    (out_dir / f"{stem}_prompt.json").write_text(json.dumps(prompt, indent=2, ensure_ascii=False) + "\n")
    print(f"\nchunkwise demo ({args.workflow}, {'tiny models' if models is None else 'real weights'}) "
          f"finished in {seconds:.0f} s")
    if "summary" in written:
        print(written["summary"].read_text())
    for role in ("video", "report", "scores", "summary", "eval", "eval_plot"):
        if role in written:
            print(f"  {role:8s} {written[role]}")
    print(f"  {'prompt':8s} {out_dir / (stem + '_prompt.json')}")
    print(f"  {'server':8s} {base} (log: {base / 'comfyui.log'})")
    if "video" not in written:
        print("  no video was saved: see the server log", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DemoError, ComfyServerError) as exc:
        print(f"chunkwise demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
