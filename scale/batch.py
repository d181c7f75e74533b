"""``chunkwise batch JOBS.jsonl``: many videos over the workers of a Ray cluster, one run folder per job.

A job file holds one JSON object per line (blank lines and lines starting with ``#`` are skipped)::

    {"run": "beach", "model": "models/svd-xt", "image": "beach.png",
     "settings": {"chunks": 20, "candidates": 4, "k": 8, "steps": 25, "seed": 0}}

``settings`` takes ``chunkwise generate``'s flags by their long names (``preview_mode`` or ``preview-mode``;
``true`` for a switch such as ``no_search``). Relative paths are read from the job file's folder. Every
job streams into ``<output>/<run>/`` (``search.sinks.DiskSink``), so:

- a job that fails (its worker died, an error on the way) is queued again, up to ``--retries`` times, and
  resumes from its finished chunks; an input the pack refuses (a ChunkwiseError: a bad setting, a run
  folder holding other settings, a folder another writer holds) fails at once, since running it again
  cannot help;
- a second ``chunkwise batch`` over the same file skips every job whose run folder already holds all its
  chunks, made with the same settings and image (read from the folder's ``state.json``, no model loaded),
  and finishes the others from where they stopped.

Jobs run one per worker at a time; each worker keeps the pipeline of its last job, so jobs on the same
model reuse it. The table (job, chunk i of n, state) is printed whenever it changes.

**Workflow jobs.** A line with ``"workflow": PATH`` (an API-format ComfyUI workflow, plus ``"images"``
and ``"inputs"``) is a job for a fleet of headless ComfyUI servers, run by ``chunkwise.scale.fleet``.
That module provides, on the worker the job was given to::

    run_workflow_job(job: dict, folder: pathlib.Path, worker: scale.workers.Worker) -> dict

which runs the job (the line as read, paths made absolute) with its outputs in ``folder`` (the job's
own folder under ``--output``, created), using ``worker`` (the Ray actor's state: one GPU, its
``load``-kept parts, where a server it starts can be kept between jobs), raises on failure (a
ChunkwiseError is not retried) and returns a small JSON-able summary; and optionally
``workflow_job_done(job: dict, folder: pathlib.Path) -> bool`` on the driver, so a second batch run
skips what is finished. Without that module a workflow job fails with an error that says so.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..search.errors import ChunkwiseError

log = logging.getLogger("chunkwise")

RESERVED = ("model", "image", "out", "run", "report", "workers", "ray_address", "quiet")
"""generate's flags a job's settings cannot set: the job line and the batch set them."""


@dataclass
class Job:
    """One line of a job file, checked."""

    line: int
    name: str
    spec: dict
    folder: Path
    chunks: int = 0
    argv: list = field(default_factory=list)
    workflow: bool = False
    state: str = "queued"
    attempts: int = 0
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state.startswith("done") or self.state.startswith("failed")


# ---------------------------------------------------------------------------- reading the job file


def settings_argv(settings: dict, where: str) -> list:
    """A job's ``settings`` as generate's flags."""
    if not isinstance(settings, dict):
        raise ChunkwiseError(f"{where}: settings must be a JSON object of generate's flags, got "
                             f"{type(settings).__name__}; e.g. {{\"chunks\": 5, \"candidates\": 4}}")
    argv = []
    for key, value in settings.items():
        name = str(key).replace("-", "_")
        if name in RESERVED:
            raise ChunkwiseError(f"{where}: settings cannot set {key!r}; give it on the job line (run, model, image) "
                                 "or to chunkwise batch (--workers, --ray-address)")
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv


def _path(value, base: Path, where: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ChunkwiseError(f"{where}: {what!r} must be a path string, got {value!r}")
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def parse_generate(argv: list, where: str):
    """generate's arguments for ``argv``, argparse's complaint turned into an error naming the job."""
    import contextlib
    import io

    from ..cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(["generate", *argv])
    except SystemExit:
        message = (err.getvalue().strip().splitlines() or ["invalid flags"])[-1].split("error: ", 1)[-1]
        raise ChunkwiseError(f"{where}: {message}; use generate's flags in settings") from None


def read_job(line: int, data, base: Path, output: Path) -> Job:
    from ..cli import generate_settings
    from ..search.sinks import check_run_name, run_folder

    where = f"job line {line}"
    if not isinstance(data, dict):
        raise ChunkwiseError(f"{where}: expected a JSON object, got {type(data).__name__}")
    name = data.get("run")
    try:
        check_run_name(name)
    except ChunkwiseError as exc:
        raise ChunkwiseError(f"{where}: {exc}") from None
    folder = run_folder(output, name)
    if "workflow" in data:
        images = data.get("images") or {}
        if not isinstance(images, dict):
            raise ChunkwiseError(f"{where}: 'images' must map the names the workflow's LoadImage nodes hold to "
                                 f"local files, got {images!r}")
        spec = dict(data, workflow=_path(data["workflow"], base, where, "workflow"),
                    images={name: _path(path, base, where, f"images[{name!r}]") for name, path in images.items()})
        return Job(line, name, spec, folder, workflow=True)
    for key in ("model", "image"):
        if key not in data:
            raise ChunkwiseError(f"{where}: no {key!r}; a job needs run, model, image (and settings), or a workflow")
    model, image = _path(data["model"], base, where, "model"), _path(data["image"], base, where, "image")
    argv = ["--model", model, "--image", image, "--out", str(folder / "video.mp4"),
            *settings_argv(data.get("settings", {}), where)]
    try:
        settings = generate_settings(parse_generate(argv, where))
    except ChunkwiseError as exc:
        raise ChunkwiseError(f"{where}: {exc}") from None
    return Job(line, name, dict(data, model=model, image=image), folder, chunks=settings.chunks, argv=argv)


def read_jobs(path, output) -> list:
    """Every job of the file, each line checked before any work starts; run names must be distinct."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ChunkwiseError(f"job file {str(p)!r} does not exist; pass a JSON-lines file, one job per line")
    jobs, names = [], {}
    for n, text in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ChunkwiseError(f"job line {n} of {p} is not JSON ({exc}); write one JSON object per line") from None
        job = read_job(n, data, p.parent, Path(output))
        if job.name in names:
            raise ChunkwiseError(f"job lines {names[job.name]} and {n} both write run {job.name!r}; give every job "
                                 "its own run name")
        names[job.name] = n
        jobs.append(job)
    if not jobs:
        raise ChunkwiseError(f"job file {p} holds no job; write one JSON object per line")
    return jobs


# ---------------------------------------------------------------------------- what is done already


def finished(job: Job) -> int:
    from ..search.runs import finished_chunks

    if job.workflow or not (job.folder / "state.json").is_file():
        return 0
    try:
        return finished_chunks(job.folder)
    except ChunkwiseError:
        return 0


def already_done(job: Job) -> bool:
    """Whether the job's folder holds all its chunks with the same settings and image (no model is loaded)."""
    if job.workflow:
        fleet = _fleet()
        check = getattr(fleet, "workflow_job_done", None) if fleet is not None else None
        return bool(check(job.spec, job.folder)) if callable(check) else False
    from ..cli import generate_settings, load_image
    from ..search.durable import normal_json
    from ..search.sinks import tensor_digest

    if finished(job) < job.chunks:
        return False
    try:
        fingerprint = json.loads((job.folder / "state.json").read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    loop = asdict(generate_settings(parse_generate(job.argv, f"job line {job.line}")))
    loop.pop("chunks")
    return (fingerprint.get("settings") == normal_json(loop)
            and fingerprint.get("image") == tensor_digest(load_image(job.spec["image"])))


# ---------------------------------------------------------------------------- on a worker


def parts_argv(argv: list) -> tuple:
    """The flags that make a job's parts (the image, output and chunk count left out, so jobs share them)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in ("--image", "--out"):
            out += [argv[i], "-"]
        elif argv[i] != "--chunks":
            out.append(argv[i])
            i -= 1
        i += 2
    return tuple(out)


def run_job(worker, argv: list, output: str, name: str) -> dict:
    """One generate job on ``worker`` (``Worker.call``): into its run folder, resuming what it holds."""
    from ..cli import GenerateParts, generate_settings, load_image
    from ..search.engine import run_chunks
    from ..search.sinks import DiskSink

    args = parse_generate(argv, f"run {name}")
    settings, image = generate_settings(args), load_image(args.image)
    denoiser, scorer = worker.load(GenerateParts(parts_argv(argv)))
    sink = DiskSink(output, name)
    try:
        result = run_chunks(denoiser, scorer, image, settings, sink=sink)
    finally:
        sink.close()
    return {"restored": result.restored, "frames": result.report["totals"]["frames"]}


def _fleet():
    try:
        from . import fleet
    except ImportError:
        return None
    return fleet


def run_workflow(worker, job: dict, folder: str) -> dict:
    """A workflow job on ``worker``, by ``chunkwise.scale.fleet.run_workflow_job`` (see the module docstring)."""
    fleet = _fleet()
    if fleet is None:
        raise ChunkwiseError(workflow_unavailable(job))
    Path(folder).mkdir(parents=True, exist_ok=True)
    return fleet.run_workflow_job(job, Path(folder), worker)


def workflow_unavailable(job: dict) -> str:
    return (f"workflow job {job.get('run')!r} ({job.get('workflow')}) is not available: ComfyUI fleets "
            "(chunkwise.scale.fleet) are not part of this install; run the workflow in ComfyUI, or give the job "
            "as model, image and settings")


# ---------------------------------------------------------------------------- the driver


def table(jobs: list) -> str:
    rows = [("job", "chunk", "state")]
    for job in jobs:
        chunk = "-" if job.workflow else f"{finished(job)} of {job.chunks}"
        rows.append((job.name, chunk, job.state + (f": {job.error}" if job.error else "")))
    width = [max(len(r[c]) for r in rows) for c in range(2)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows)


class Batch:
    """The jobs of one ``chunkwise batch`` over a pool's workers (see the module docstring)."""

    def __init__(self, jobs: list, output: Path, pool, *, retries: int = 2, stream=None, quiet: bool = False,
                 poll: float = 1.0) -> None:
        self.jobs, self.output, self.pool, self.retries = jobs, output, pool, retries
        self.stream = stream if stream is not None else sys.stdout
        self.quiet, self.poll = quiet, poll
        self.shown = ""

    def show(self, force: bool = False) -> None:
        text = table(self.jobs)
        if text != self.shown and (force or not self.quiet):
            print(text + "\n", file=self.stream, flush=True)
            self.shown = text

    def submit(self, job: Job, w: int):
        job.attempts += 1
        job.state = f"running on worker {w}" + (f" (attempt {job.attempts})" if job.attempts > 1 else "")
        actor = self.pool.actors[w]
        if job.workflow:
            return actor.call.remote(run_workflow, job.spec, str(job.folder))
        return actor.call.remote(run_job, job.argv, str(self.output), job.name)

    def settle(self, job: Job, ref) -> bool:
        """The job's outcome, into its state; False when its worker was lost (it is made again by Ray)."""
        try:
            self.pool.get(ref)
            job.state, job.error = "done", ""
            return True
        except ChunkwiseError as exc:
            job.state, job.error = "failed", str(exc)
            return True
        except Exception as exc:  # noqa: BLE001 - a lost worker or any error on the way: run it again
            text = str(exc).strip()
            reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            if job.attempts > self.retries:
                job.state, job.error = "failed", f"{reason} (after {job.attempts} attempts)"
            else:
                job.state, job.error = f"retry {job.attempts}", ""
                log.warning("chunkwise: job %s failed (%s); it runs again from its finished chunks", job.name, reason)
            return not isinstance(exc, self.pool.lost_errors)

    def run(self) -> int:
        ray = self.pool.ray
        queue = [j for j in self.jobs if not j.finished]
        running: dict = {}  # ref -> (job, worker)
        waking: dict = {}  # ping ref -> worker: a lost worker gets jobs again once Ray has made it again
        idle = list(range(len(self.pool)))
        while queue or running:
            while queue and idle:
                job, w = queue.pop(0), idle.pop(0)
                running[self.submit(job, w)] = (job, w)
            self.show()
            ready, _ = ray.wait([*running, *waking], num_returns=1, timeout=self.poll)
            for ref in ready:
                if ref in waking:
                    w = waking.pop(ref)
                    try:
                        self.pool.get(ref)
                        idle.append(w)
                    except ray.exceptions.ActorUnavailableError:  # still restarting: ask again shortly
                        time.sleep(self.poll / 4)
                        waking[self.pool.actors[w].pid.remote()] = w
                    except self.pool.lost_errors:  # gone for good (out of restarts)
                        log.warning("chunkwise: worker %d is gone for good; the batch goes on without it", w)
                    continue
                job, w = running.pop(ref)
                if self.settle(job, ref):
                    idle.append(w)
                else:
                    waking[self.pool.actors[w].pid.remote()] = w
                if not job.finished:
                    queue.append(job)
            if queue and not (idle or running or waking):
                for job in queue:
                    job.state, job.error = "failed", "every worker is gone; run chunkwise batch again to resume it"
                queue = []
        self.show(force=True)
        return 0 if all(j.state.startswith("done") for j in self.jobs) else 1


def run_batch(jobs_path, output, *, workers: Optional[int] = None, address: Optional[str] = None,
              retries: int = 2, quiet: bool = False, stream=None, pool=None) -> int:
    """``chunkwise batch``: 0 when every job is done, 1 when any failed."""
    from .workers import WorkerPool

    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ChunkwiseError(f"--retries must be an integer >= 0, got {retries!r}; use e.g. 2")
    output = Path(output).expanduser()
    output.mkdir(parents=True, exist_ok=True)
    jobs = read_jobs(jobs_path, output)
    # 1. What is finished already is not run again (no model is loaded for it).
    for job in jobs:
        if job.workflow and _fleet() is None:
            job.state, job.error = "failed", workflow_unavailable(job.spec)
        elif already_done(job):
            job.state = "done (earlier)"
    left = [j for j in jobs if not j.finished]
    stream = stream if stream is not None else sys.stdout
    if not left:
        print(table(jobs) + "\n", file=stream, flush=True)
        return 0 if all(j.state.startswith("done") for j in jobs) else 1
    # 2. The rest over the workers.
    own = pool is None
    pool = pool or WorkerPool(None, workers=workers or (None if address else 1), address=address)
    t0 = time.perf_counter()
    try:
        code = Batch(jobs, output, pool, retries=retries, stream=stream, quiet=quiet).run()
    finally:
        if own:
            pool.close()
    log.info("chunkwise: batch of %d jobs in %.1f s", len(jobs), time.perf_counter() - t0)
    return code


__all__ = ["Batch", "Job", "read_jobs", "run_batch", "run_job", "run_workflow", "table"]
