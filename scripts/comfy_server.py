"""Run a real ComfyUI server headless (on the CPU unless told otherwise), with this pack in custom_nodes/.

Library (tests, the demo)::

    with ComfyServer(tmpdir, extra_custom_nodes={"chunkwise_testpack": path}) as server:
        prompt_id = server.queue(api_prompt)
        entry = server.wait(prompt_id, timeout=300)

CLI: ``python scripts/comfy_server.py [--base-dir DIR] [--port N] [--extra NAME=PATH ...]``
starts one and serves until Ctrl+C (handy to open the web UI on http://127.0.0.1:N).

The server listens on 127.0.0.1 only; HTTP goes through the standard library
(urllib). ComfyUI comes from ``scripts/comfy_host.py``: ``CHUNKWISE_COMFY``
picks the test host (0.3.75 or 0.28.2) and with it the interpreter (that host's
venv), ``COMFYUI_DIR`` wins for the root.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Optional

try:
    from .comfy_host import host_python  # imported as chunkwise.scripts.comfy_server
except ImportError:
    from comfy_host import host_python  # run as a script: scripts/ is on sys.path

log = logging.getLogger("chunkwise.comfy_server")

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PACK_NAME = "chunkwise"
SUBDIRS = ("custom_nodes", "models", "input", "output", "temp", "user")
# The smallest prompt a worker must execute (it needs an output node): ComfyUI's own nodes, a 1x1 preview.
FREE_BARRIER = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 1, "height": 1, "batch_size": 1, "color": 0}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}


FREE_BARRIER = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 1, "height": 1, "batch_size": 1, "color": 0}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
}
"""A prompt the worker must take after POST /free: once it is in /history, the flags are applied."""


class ComfyServerError(RuntimeError):
    """The server did not start, refused a prompt, or a prompt failed."""


def comfy_root(python: Optional[str] = None) -> Path:
    """The ComfyUI root from scripts/comfy_host.py (sets it up once; honours CHUNKWISE_COMFY and COMFYUI_DIR).

    It runs under ``python`` (the host's own interpreter), so the host's requirements land there.
    """
    out = subprocess.run(
        [python or host_python(), str(ROOT / "scripts" / "comfy_host.py")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.strip()
    root = Path(out.splitlines()[-1])
    if not (root / "main.py").is_file():
        raise ComfyServerError(f"scripts/comfy_host.py printed {out!r}, which has no main.py")
    return root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    os.symlink(target, link, target_is_directory=True)


def format_messages(messages: list) -> str:
    """The error lines of a /history status (execution_error, execution_interrupted)."""
    lines = []
    for event, data in messages or []:
        if event == "execution_error":
            lines.append(
                f"node {data.get('node_id')} ({data.get('node_type')}) raised {data.get('exception_type')}: "
                f"{data.get('exception_message', '').strip()}"
            )
            trace = "".join(data.get("traceback") or [])
            if trace:
                lines.append(trace.rstrip())
        elif event == "execution_interrupted":
            lines.append(f"execution interrupted at node {data.get('node_id')} ({data.get('node_type')})")
    return "\n".join(lines)


class ComfyServer:
    """A ComfyUI server process with its own base directory; a context manager.

    ``base_dir`` gets custom_nodes/ models/ input/ output/ temp/ user/; the
    pack is linked as custom_nodes/chunkwise, each ``extra_custom_nodes``
    entry (name -> folder) beside it. ``extra_args`` go to main.py as is
    (e.g. ``["--extra-model-paths-config", path]``). ``cpu=False`` lets
    ComfyUI pick its device (a GPU when there is one) instead of ``--cpu``.
    """

    def __init__(
        self,
        base_dir,
        port: Optional[int] = None,
        extra_custom_nodes: Optional[dict] = None,
        *,
        extra_args: Optional[list] = None,
        python: Optional[str] = None,
        comfy_dir=None,
        startup_timeout: float = 300.0,
        link_pack: bool = True,
        cpu: bool = True,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = port
        self.extra_custom_nodes = {k: Path(v).resolve() for k, v in (extra_custom_nodes or {}).items()}
        self.extra_args = list(extra_args or [])
        self.python = python or host_python()
        self.comfy_dir = Path(comfy_dir).resolve() if comfy_dir else None
        self.startup_timeout = startup_timeout
        self.link_pack = link_pack
        self.cpu = cpu
        self.client_id = uuid.uuid4().hex
        self.process: Optional[subprocess.Popen] = None
        self.log_path = self.base_dir / "comfyui.log"
        self._log_file = None
        self._log_offset = 0  # where this process's lines start in an appended log

    # ------------------------------------------------------------------ life cycle

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def dir(self, name: str) -> Path:
        return self.base_dir / name

    def prepare(self) -> None:
        for name in SUBDIRS:
            self.dir(name).mkdir(parents=True, exist_ok=True)
        if self.link_pack:
            _link(ROOT, self.dir("custom_nodes") / PACK_NAME)
        for name, path in self.extra_custom_nodes.items():
            if not (path / "__init__.py").is_file():
                raise ComfyServerError(f"extra custom node pack {name!r} at {path} has no __init__.py")
            _link(path, self.dir("custom_nodes") / name)

    def start(self) -> "ComfyServer":
        # 1. Folders and links, then the ComfyUI root.
        self.prepare()
        root = self.comfy_dir or comfy_root(self.python)
        explicit_port = self.port is not None
        for attempt in range(3):
            if not explicit_port:
                self.port = free_port()
            # 2. The process, logging to a file.
            cmd = [
                self.python, "main.py", *(["--cpu"] if self.cpu else []), "--listen", HOST, "--port", str(self.port),
                "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:",
                "--disable-auto-launch", *self.extra_args,
            ]
            log.info("starting ComfyUI: %s (log %s)", " ".join(cmd), self.log_path)
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
            self._log_offset = self._log_file.tell()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self.process = subprocess.Popen(
                cmd, cwd=root, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            # 3. Wait until /object_info answers, failing fast if the process dies.
            try:
                self._wait_ready()
                return self
            except ComfyServerError as exc:
                self.stop()
                busy = "address already in use" in self.log_text().lower()
                if explicit_port or not busy or attempt == 2:
                    raise
                log.warning("port %d was taken meanwhile (%s); retrying on another", self.port, exc)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ComfyServerError(f"ComfyUI exited with code {code} during start-up; log tail:\n{self.log_tail()}")
            try:
                self._request("GET", "/object_info", timeout=30)
                log.info("ComfyUI ready on %s", self.url)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ComfyServerError(
                    f"ComfyUI did not answer /object_info within {self.startup_timeout:.0f}s; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ logs

    def log_text(self) -> str:
        """The log of the current (or last) process only; earlier runs in the same base dir are skipped."""
        if self._log_file is not None:
            self._log_file.flush()
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def import_failures(self, builtin: bool = False) -> list[str]:
        """Log lines saying a custom node pack failed to import (``IMPORT FAILED``).

        ComfyUI's own comfy_extras files that fail (``IMPORT FAILED: nodes_audio.py``
        without torchaudio) are left out unless ``builtin``.
        """
        found = []
        for line in self.log_text().splitlines():
            if "IMPORT FAILED" not in line:
                continue
            if builtin or "(IMPORT FAILED)" in line:
                found.append(line.strip())
        return found

    # ------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 60.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            raw = resp.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def get(self, path: str, timeout: float = 60.0):
        return self._request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any = None, timeout: float = 60.0):
        return self._request("POST", path, {} if body is None else body, timeout=timeout)

    def object_info(self) -> dict:
        return self.get("/object_info")

    def upload_image(self, path, name: Optional[str] = None, timeout: float = 60.0) -> str:
        """Upload a local image through ``POST /upload/image`` (into the server's input folder, overwriting a
        file of that name); returns the name a LoadImage node then takes."""
        path = Path(path)
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in (("overwrite", "true"), ("type", "input")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name or path.name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.url + "/upload/image", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode())
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue(self, prompt: dict, extra_data: Optional[dict] = None) -> str:
        """Submit an API-format prompt; returns its prompt_id. Validation errors are raised readably."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        try:
            answer = self.post("/prompt", body)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                detail = json.loads(text)
            except json.JSONDecodeError:
                raise ComfyServerError(f"POST /prompt failed with HTTP {exc.code}: {text}") from None
            raise ComfyServerError(f"ComfyUI refused the prompt: {describe_prompt_error(detail)}") from None
        if answer.get("node_errors"):
            raise ComfyServerError(f"ComfyUI refused the prompt: {describe_prompt_error(answer)}")
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> Optional[dict]:
        return (self.get(f"/history/{urllib.parse.quote(prompt_id)}") or {}).get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 600.0, poll: float = 0.25, check: bool = True) -> dict:
        """Wait for a prompt to finish; returns its /history entry.

        A failed or interrupted prompt raises :class:`ComfyServerError` with the
        node's error, unless ``check=False`` (then the entry comes back as is;
        ``entry["status"]["messages"]`` holds ``execution_error`` /
        ``execution_interrupted``).
        """
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if check and (status.get("status_str") != "success" or not status.get("completed")):
                    detail = format_messages(status.get("messages")) or json.dumps(status)[:2000]
                    raise ComfyServerError(f"prompt {prompt_id} failed:\n{detail}")
                return entry
            if self.process is not None and self.process.poll() is not None:
                raise ComfyServerError(
                    f"ComfyUI exited with code {self.process.returncode} while running prompt {prompt_id}; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ComfyServerError(f"prompt {prompt_id} did not finish within {timeout:.0f}s; log tail:\n"
                                       f"{self.log_tail(20)}")
            time.sleep(poll)

    def run(self, prompt: dict, timeout: float = 600.0, check: bool = True) -> dict:
        """queue() then wait()."""
        return self.wait(self.queue(prompt), timeout=timeout, check=check)

    def interrupt(self, prompt_id: Optional[str] = None) -> None:
        self.post("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def wait_idle(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            q = self.get("/queue")
            if not q.get("queue_running") and not q.get("queue_pending"):
                return
            if time.monotonic() > deadline:
                raise ComfyServerError(f"queue still busy after {timeout:.0f}s")
            time.sleep(0.2)

    def free(self, timeout: float = 600.0) -> None:
        """Unload models and drop the executor's caches, so an identical prompt really runs again.

        ComfyUI's POST /free only sets flags on the prompt queue. The worker reads
        them once its wait on the queue returns (woken by the flag, or after the
        prompt it ran), but a prompt already queued by then is taken and run first,
        from the old caches. So: wait for an idle queue, set the flags, then run a
        tiny barrier prompt. When the barrier is in /history the worker has applied
        the flags before it (woken by them) or applies them right after it, in both
        cases before it takes any prompt queued after this call.
        """
        self.wait_idle(timeout)
        self.post("/free", {"unload_models": True, "free_memory": True})
        self.run(FREE_BARRIER, timeout=timeout)

    def output_path(self, item: dict) -> Path:
        """Local path of an output entry ({filename, subfolder, type}) from /history."""
        folder = {"output": "output", "temp": "temp", "input": "input"}[item.get("type", "output")]
        return self.dir(folder) / item.get("subfolder", "") / item["filename"]


def describe_prompt_error(detail: dict) -> str:
    parts = []
    error = detail.get("error")
    if isinstance(error, dict):
        parts.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    elif error:
        parts.append(str(error))
    for node_id, info in (detail.get("node_errors") or {}).items():
        for err in info.get("errors", []):
            parts.append(
                f"node {node_id} ({info.get('class_type')}): {err.get('message', '')}: {err.get('details', '')}"
            )
    return "; ".join(p for p in parts if p) or json.dumps(detail)[:2000]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run ComfyUI headless on the CPU with the chunkwise pack.")
    parser.add_argument("--base-dir", default=str(ROOT / "output" / "comfy_server"),
                        help="ComfyUI base directory (custom_nodes, models, input, output ...)")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                        help="another custom node pack to link into custom_nodes/")
    parser.add_argument("--test-pack", action="store_true", help="also link the tiny test models (tests/e2e/testpack)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    extra = dict(item.split("=", 1) for item in args.extra)
    if args.test_pack:
        extra["chunkwise_testpack"] = str(ROOT / "tests" / "e2e" / "testpack")
    with ComfyServer(args.base_dir, port=args.port, extra_custom_nodes=extra) as server:
        failures = server.import_failures()
        if failures:
            log.warning("custom nodes failed to import: %s", failures)
        print(f"ComfyUI on {server.url} (log {server.log_path}); Ctrl+C stops it", flush=True)
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
