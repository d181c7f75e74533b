"""ComfyUI fleets: ``chunkwise batch`` jobs that are API-format ComfyUI workflows, each run on a worker's own
headless ComfyUI server (the pack's server script, ``scripts/comfy_server.py``).

A workflow job line::

    {"run": "beach", "workflow": "workflows/api/chunkwise_wan21_i2v_long_video.json",
     "images": {"example.png": "beach.png"},
     "inputs": {"ChunkwiseChunkLoop": {"chunks": 20, "seed": 3}},
     "comfyui": {"models": "/data/ComfyUI/models"}}

- ``images``: the name a LoadImage node of the workflow takes -> a local file. Each is uploaded to the
  worker's server (``POST /upload/image``) and the nodes that named it take the uploaded name.
- ``inputs``: per node class type (every node of that type) or node id, the inputs set before queueing.
- ``comfyui`` (all optional): ``models`` (a ComfyUI models folder, given to the server as its extra model
  paths), ``root`` (a ComfyUI checkout; default ``COMFYUI_DIR`` or the test host), ``python`` (the
  interpreter that runs it), ``custom_nodes`` (name -> folder, linked beside this pack), ``args`` (more
  ``main.py`` flags), ``cpu`` (default: a GPU when the worker has one).

Each worker starts one server on its first workflow job and keeps it for the next jobs with the same
``comfyui`` settings (a job with other settings restarts it). Every server of a batch writes into one
output folder, ``<output>/comfyui-output`` (``--output-directory``), so a ChunkLoop's run folder
(``chunkwise/<run_name>``; a ChunkLoop whose ``run_name`` the job does not set gets the job's run name)
is shared: a job retried on another worker resumes from the chunks the first one finished, and the run
folder's writer lock keeps two servers from writing one run. When the prompt has finished, its outputs
(the files its history lists) are copied into the job's folder with ``fleet.json`` (the prompt's digest
and the files), which a second ``chunkwise batch`` reads to skip the job.

Failures: a prompt ComfyUI refuses (validation) is a ChunkwiseError, not retried; a node that fails, a
server that dies and a lost worker are retried by the batch (the server is started again).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..search.errors import ChunkwiseError

log = logging.getLogger("chunkwise")

RECORD = "fleet.json"
"""The record a finished workflow job leaves in its folder."""
SHARED_OUTPUT = "comfyui-output"
"""The servers' common output folder, under the batch's output folder."""
PROMPT_TIMEOUT = 24 * 3600.0


def _server_module():
    try:
        from ..scripts import comfy_server
    except ImportError as exc:
        raise ChunkwiseError(
            f"ComfyUI fleets start the pack's server script (scripts/comfy_server.py), which this install lacks "
            f"({exc}); run chunkwise batch from a checkout of the pack (e.g. ComfyUI/custom_nodes/chunkwise)"
        ) from exc
    return comfy_server


def load_workflow(job: dict) -> dict:
    """The job's API-format prompt with its ``inputs`` set (images not yet uploaded)."""
    path = Path(job["workflow"])
    try:
        prompt = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChunkwiseError(f"workflow job {job.get('run')!r}: cannot read {path} as JSON ({exc}); give an "
                             "API-format workflow (ComfyUI: Workflow > Export (API))") from None
    if not isinstance(prompt, dict) or not all(isinstance(n, dict) and "class_type" in n for n in prompt.values()):
        raise ChunkwiseError(f"workflow job {job.get('run')!r}: {path} is not an API-format workflow (a UI-format "
                             "file has 'nodes' and 'links'); export it with Workflow > Export (API)")
    for key, inputs in (job.get("inputs") or {}).items():
        nodes = [n for nid, n in prompt.items() if nid == key or n["class_type"] == key]
        if not nodes:
            raise ChunkwiseError(f"workflow job {job.get('run')!r}: its inputs name {key!r}, which is neither a "
                                 f"node id nor a node type of {path.name}")
        for node in nodes:
            node["inputs"].update(inputs)
    for node in prompt.values():  # a ChunkLoop streams to a run folder named after the job, unless set
        if node["class_type"] == "ChunkwiseChunkLoop" and not node["inputs"].get("run_name"):
            node["inputs"]["run_name"] = job["run"]
    return prompt


def digest(job: dict) -> str:
    """What decides a workflow job's result: the prompt and the bytes of its images."""
    h = hashlib.sha256(json.dumps(load_workflow(job), sort_keys=True).encode())
    for name, path in sorted((job.get("images") or {}).items()):
        h.update(name.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def workflow_job_done(job: dict, folder: Path) -> bool:
    """Whether ``folder`` holds this job's finished outputs (same prompt, same images)."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text(encoding="utf-8"))
        return record.get("digest") == digest(job) and all((Path(folder) / f).is_file() for f in record["files"])
    except (OSError, ValueError, KeyError, TypeError, ChunkwiseError):
        return False


def _server_settings(job: dict, output: Path) -> tuple:
    comfy = dict(job.get("comfyui") or {})
    unknown = sorted(set(comfy) - {"models", "root", "python", "custom_nodes", "args", "cpu"})
    if unknown:
        raise ChunkwiseError(f"workflow job {job.get('run')!r}: unknown comfyui settings {unknown}; known: models, "
                             "root, python, custom_nodes, args, cpu")
    return json.dumps(comfy, sort_keys=True), comfy, output


def _start_server(comfy: dict, output: Path):
    import torch

    server_module = _server_module()
    base = Path(tempfile.mkdtemp(prefix="chunkwise-fleet-"))
    args = ["--output-directory", str(output), *[str(a) for a in comfy.get("args", [])]]
    if comfy.get("models"):
        config = base / "extra_model_paths.yaml"
        config.write_text(f"chunkwise_fleet:\n    base_path: {json.dumps(str(Path(comfy['models']).resolve()))}\n"
                          + "".join(f"    {kind}: {kind}/\n" for kind in (
                              "checkpoints", "diffusion_models", "unet", "vae", "text_encoders", "clip",
                              "clip_vision", "loras", "vae_approx", "diffusers", "aesthetic")), encoding="utf-8")
        args += ["--extra-model-paths-config", str(config)]
    cpu = comfy.get("cpu", not torch.cuda.is_available())
    server = server_module.ComfyServer(base, extra_custom_nodes=comfy.get("custom_nodes") or {}, extra_args=args,
                                       python=comfy.get("python"), comfy_dir=comfy.get("root") or os.environ.get(
                                           "COMFYUI_DIR"), cpu=bool(cpu))
    server.start()
    atexit.register(server.stop)
    log.info("chunkwise: ComfyUI fleet server on %s (pid %s)", server.url, server.process.pid)
    return server


def worker_server(worker, job: dict, output: Path):
    """The worker's running server for this job's settings: kept, started, or restarted."""
    key, comfy, output = _server_settings(job, output)
    server = getattr(worker, "fleet_server", None)
    alive = server is not None and server.process is not None and server.process.poll() is None
    if alive and getattr(worker, "fleet_key", None) == key:
        return server
    if server is not None:
        server.stop()
    worker.fleet_server, worker.fleet_key = _start_server(comfy, output), key
    return worker.fleet_server


def _upload(server, job: dict, prompt: dict) -> dict:
    """Upload the job's images; returns each LoadImage name with the name its server gave the upload."""
    uploads = {}
    for name, path in (job.get("images") or {}).items():
        if not Path(path).is_file():
            raise ChunkwiseError(f"workflow job {job.get('run')!r}: image {name!r} -> {path} does not exist")
        uploaded = server.upload_image(path)
        named = [n for n in prompt.values() if n["class_type"] == "LoadImage" and n["inputs"].get("image") == name]
        if not named:
            raise ChunkwiseError(f"workflow job {job.get('run')!r}: no LoadImage node of its workflow takes {name!r}; "
                                 "the images keys are the names its LoadImage nodes hold")
        for node in named:
            node["inputs"]["image"] = uploaded
        uploads[name] = uploaded
    return uploads


def output_files(entry: dict) -> list:
    """The output files (``{filename, subfolder, type: output}``) a finished prompt's history lists."""
    files = []
    for node_out in (entry.get("outputs") or {}).values():
        for items in node_out.values():
            if isinstance(items, list):
                files += [i for i in items if isinstance(i, dict) and "filename" in i and i.get("type") == "output"]
    return files


def run_workflow_job(job: dict, folder: Path, worker) -> dict:
    """Run one workflow job on ``worker``'s server; its outputs end up in ``folder`` (see the module docstring)."""
    server_module = _server_module()
    folder = Path(folder)
    output = folder.parent / SHARED_OUTPUT
    output.mkdir(parents=True, exist_ok=True)
    prompt = load_workflow(job)
    server = worker_server(worker, job, output)
    uploads = _upload(server, job, prompt)
    try:
        prompt_id = server.queue(prompt)
    except server_module.ComfyServerError as exc:
        if "refused the prompt" in str(exc):
            raise ChunkwiseError(f"workflow job {job.get('run')!r}: {exc}") from None
        raise
    entry = server.wait(prompt_id, timeout=PROMPT_TIMEOUT)
    files = []
    for item in output_files(entry):
        source = output / item.get("subfolder", "") / item["filename"]
        target = folder / item.get("subfolder", "") / item["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        files.append(str(target.relative_to(folder)))
    record = {"format": "chunkwise.fleet/1", "workflow": str(job["workflow"]), "digest": digest(job),
              "server": server.url, "prompt_id": prompt_id, "images": uploads, "files": files}
    (folder / RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return {"files": len(files), "server": server.url}


__all__ = ["RECORD", "SHARED_OUTPUT", "load_workflow", "output_files", "run_workflow_job", "workflow_job_done"]
