"""Run folders: every finished chunk on disk as soon as it is decoded, resumable.

Layout of ``<output>/<run_name>/`` (format ``chunkwise.run/1``)::

    state.json                 fingerprint of the settings, finished chunks and their report records
    report.json                the search report (chunkwise.report/1), written when the run finishes
    chunk_0000/frame_000000.png  lossless 8-bit RGB PNG frames, numbered over the whole video
    chunk_0000/guide.safetensors the chunk's exact float last frame: the next chunk's guide
    chunk_0001/frame_000025.png ...

``state.json`` is the source of truth: a chunk counts as finished only once it
is listed there. Every file is written atomically (a temporary name, then
``os.replace``), a chunk folder is filled under a temporary name and renamed
into place, and ``state.json`` is replaced only after that, so an interruption
or a crash at any point leaves the finished chunks and a consistent state.
Every written file and the temporary chunk folder are flushed to disk (fsync)
before their rename, and the run folder after it, so a power cut cannot leave
a ``state.json`` that lists a chunk whose files never reached the disk.
Temporary leftovers of a killed process (``.chunk_NNNN.tmp-PID/``,
``.state.json.tmp-PID``) are removed when the run is opened again: one process
writes a run folder at a time.

A resumed run continues from ``guide.safetensors`` -- the exact float frame,
not the 8-bit PNG -- so it is bit-identical to an uninterrupted run. The
frames a streamed run returns are read back from the PNGs (8-bit values as
floats), so a resumed and an uninterrupted run return the same frames too.

Only plain JSON and safetensors are read back: nothing is unpickled or evaluated.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from .errors import ChunkwiseError
from .images import to_uint8
from .protocols import ResumePoint, thumbnail

log = logging.getLogger("chunkwise")

RUN_FORMAT = "chunkwise.run/1"
ON_EXISTING = ("resume", "new", "error", "overwrite")
MAX_RUN_NAME = 120
MAX_NEW_RUNS = 1000  # on_existing 'new' tries <name>-2 .. <name>-1001
STATE = "state.json"
REPORT = "report.json"
GUIDE = "guide.safetensors"


# ---------------------------------------------------------------------------
# Run names and folders
# ---------------------------------------------------------------------------


def check_run_name(name: Any) -> str:
    """Return ``name`` if it is a safe single folder name, else raise ChunkwiseError.

    Refused: empty, longer than 120 characters, ``.`` or ``..``, any ``/`` or
    ``\\``, a drive or absolute path, control characters, a leading or trailing
    space or dot. The run folder therefore never leaves the output folder.
    """
    fix = "use a plain folder name such as 'beach_walk' or 'run-01' (letters, digits, '-', '_', spaces)"
    if not isinstance(name, str):
        raise ChunkwiseError(f"run name must be a string, got {name!r} ({type(name).__name__}); {fix}")
    if name == "":
        raise ChunkwiseError(f"run name is empty; {fix}")
    if len(name) > MAX_RUN_NAME:
        raise ChunkwiseError(f"run name must be at most {MAX_RUN_NAME} characters, got {len(name)}; {fix}")
    bad = [c for c in name if unicodedata.category(c).startswith("C")]
    if bad:
        raise ChunkwiseError(f"run name must not contain control characters, got {name!r} (has {bad[0]!r}); {fix}")
    for sep in ("/", "\\"):
        if sep in name:
            raise ChunkwiseError(
                f"run name must be one folder name without {sep!r}, got {name!r}; the run folder always lies "
                f"directly in the output folder; {fix}"
            )
    if name == "." or ".." in name:
        raise ChunkwiseError(f"run name must not be or contain '..', got {name!r}; {fix}")
    if ":" in name or os.path.isabs(name):
        raise ChunkwiseError(f"run name must not be an absolute path or name a drive, got {name!r}; {fix}")
    if name != name.strip(" ."):
        raise ChunkwiseError(f"run name must not start or end with a space or a dot, got {name!r}; {fix}")
    return name


def run_folder(output_dir: os.PathLike | str, run_name: str) -> Path:
    """``output_dir / run_name``, checked to lie inside ``output_dir`` (symbolic links resolved)."""
    check_run_name(run_name)
    base = Path(output_dir).resolve()
    folder = (base / run_name).resolve()
    if folder.parent != base:
        raise ChunkwiseError(
            f"run folder {folder} is not directly inside the output folder {base} (got run name {run_name!r}); "
            "use a plain folder name, not a link that points elsewhere"
        )
    return folder


# ---------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


# Errors a folder fsync may give where the file system or the system cannot flush folders.
_NO_FOLDER_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES, errno.EPERM, errno.EISDIR}


def fsync_path(path: Path) -> None:
    """Flush a written file, or a folder's entries (after a rename into it), to the disk.

    Folders cannot be opened for flushing on Windows (NTFS journals their
    entries itself) and some file systems refuse it: that is skipped. A file
    that cannot be flushed raises (an I/O error, a full disk on a network drive).
    """
    if path.is_dir():
        if os.name == "nt":
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno not in _NO_FOLDER_SYNC:
                raise
        finally:
            os.close(fd)
        return
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))  # Windows flushes only handles open for writing
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary file and ``os.replace``; flush the folder."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    fsync_path(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, allow_nan=False).encode("utf-8"))


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as e:
        log.warning("chunkwise: could not remove %s: %s", path, e)


def save_png(path: Path, array: np.ndarray, compress_level: int = 1) -> None:
    """One lossless 8-bit RGB PNG (``array`` ``[H, W, 3]`` uint8)."""
    Image.fromarray(array, mode="RGB").save(path, format="PNG", compress_level=compress_level)


def load_png(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        array = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).float() / 255.0


def save_guide(path: Path, guide: torch.Tensor) -> None:
    from safetensors.torch import save_file

    save_file({"guide": guide.detach().contiguous().cpu().clone()}, str(path))


def load_guide(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["guide"]


# ---------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's shape, dtype and exact values."""
    t = tensor.detach().contiguous().cpu()
    h = hashlib.sha256(f"{list(t.shape)}|{t.dtype}|".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _normal(obj: Any) -> Any:
    """JSON round trip: what a fingerprint looks like once read back from state.json."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def fingerprint_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Readable differences between two fingerprints: ``['seed: 7 -> 8', ...]``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += fingerprint_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# ---------------------------------------------------------------------------
# The sink
# ---------------------------------------------------------------------------


class DiskSink:
    """Streams chunks into a run folder; resumable (see the module docstring).

    ``on_existing`` says what to do when the folder already holds a run:
    ``resume`` continues it when its fingerprint matches and raises a clear
    error when it does not; ``new`` starts a fresh folder ``<name>-2``,
    ``<name>-3`` ... (the name shortened to keep 120 characters);
    ``error`` refuses; ``overwrite`` deletes the run's own files and starts
    again. ``new`` and ``overwrite`` never read the old ``state.json``, so
    they also clear a damaged one. Nothing is written before ``open_run``.

    The sink keeps no frames in memory: ``video()``, ``last_chunk()`` and
    ``overview()`` read them back from disk when asked, so memory during the
    run does not grow with the number of chunks.
    """

    def __init__(
        self,
        output_dir: os.PathLike | str,
        run_name: str,
        *,
        on_existing: str = "resume",
        overview_size: int = 256,
        compress_level: int = 1,
    ) -> None:
        if on_existing not in ON_EXISTING:
            raise ChunkwiseError(
                f"on_existing must be one of {ON_EXISTING}, got {on_existing!r}; use 'resume' to continue a run "
                "with the same settings, 'new' for a fresh folder, 'error' to refuse, 'overwrite' to start again"
            )
        self.output_dir = Path(output_dir)
        self.run_name = check_run_name(run_name)
        self.folder = run_folder(self.output_dir, self.run_name)
        self.on_existing = on_existing
        self.overview_size = overview_size
        self.compress_level = compress_level
        self.state: Optional[dict] = None
        self.chunks = 0
        self.resumed = 0

    # -- opening -----------------------------------------------------------

    def _read_state(self, folder: Path) -> Optional[dict]:
        path = folder / STATE
        if not path.exists():
            return None
        # The fix names the ChunkLoop node's on_existing choices ('new run' is on_existing='new' here).
        fix = (
            "set on_existing to 'new run' (this folder is kept as it is, the run starts in a fresh one) "
            "or choose another run_name"
        )
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ChunkwiseError(
                f"cannot read the run state {path}: {e}; expected a {RUN_FORMAT} JSON file; {fix}"
            ) from e
        if not isinstance(state, dict) or state.get("format") != RUN_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ChunkwiseError(f"{path} is not a chunkwise run state: format {got!r}, expected {RUN_FORMAT!r}; {fix}")
        chunks = state.get("chunks")
        if not isinstance(chunks, list):
            raise ChunkwiseError(f"{path} lists no chunks (got {type(chunks).__name__}); expected a list; {fix}")
        start = 0
        for i, entry in enumerate(chunks):
            ok = (isinstance(entry, dict) and entry.get("index") == i and entry.get("start") == start
                  and isinstance(entry.get("frames"), int) and entry["frames"] >= 0
                  and isinstance(entry.get("record", {}), dict))
            if not ok:
                raise ChunkwiseError(
                    f"{path}: chunk entry {i} is damaged (got {entry!r:.200}); expected index {i}, start {start}, "
                    f"a frame count and a record; {fix}"
                )
            start += entry["frames"]
        return state

    def _new_folder(self) -> Path:
        """The first ``<run_name>-N`` (N = 2, 3, ...) that does not exist; the name, not the number, is shortened."""
        for n in range(2, MAX_NEW_RUNS + 2):
            suffix = f"-{n}"
            candidate = run_folder(self.output_dir, self.run_name[: MAX_RUN_NAME - len(suffix)] + suffix)
            if not candidate.exists():
                return candidate
        first = self.run_name[: MAX_RUN_NAME - 2] + "-2"
        last = self.run_name[: MAX_RUN_NAME - len(str(MAX_NEW_RUNS + 1)) - 1] + f"-{MAX_NEW_RUNS + 1}"
        raise ChunkwiseError(
            f"on_existing 'new run' found no free folder for run name {self.run_name!r}: {first} .. {last} "
            f"already exist in {self.output_dir}; expected one of them to be free. Choose another run_name, "
            "or delete run folders you no longer need"
        )

    def _clean_leftovers(self, folder: Path) -> None:
        """Remove temporary files and chunk folders a killed process left (never part of a finished chunk)."""
        temporary = (f".{STATE}.tmp-", f".{REPORT}.tmp-")
        for entry in folder.iterdir():
            name = entry.name
            if (name.startswith(".chunk_") and ".tmp-" in name) or name.startswith(temporary):
                log.info("chunkwise: removing %s, left by an interrupted write", entry)
                _remove(entry)

    def _finished(self, folder: Path, state: dict) -> list[dict]:
        """The state's chunk entries whose files are all present, in order, up to the first gap."""
        good = []
        for i, entry in enumerate(state.get("chunks", [])):
            chunk_dir = folder / f"chunk_{i:04d}"
            names = [f"frame_{entry['start'] + t:06d}.png" for t in range(entry["frames"])] + [GUIDE]
            if entry.get("index") != i or not all((chunk_dir / n).is_file() for n in names):
                log.warning("chunkwise: %s is incomplete; resuming from chunk %d", chunk_dir, i)
                break
            good.append(entry)
        return good

    def open_run(self, fingerprint: dict, chunks: int) -> Optional[ResumePoint]:
        """Create or reopen the run folder; return the finished chunks to skip, if any."""
        fingerprint = _normal(fingerprint)
        folder = self.folder
        # 'new' and 'overwrite' never read the old state: a damaged one is left alone or removed.
        has_state = (folder / STATE).exists() or (folder / STATE).is_symlink()
        state = None
        if self.on_existing == "new" and has_state:
            folder = self._new_folder()
            log.info("chunkwise: %s exists; starting a new run in %s", self.folder, folder)
        elif self.on_existing == "overwrite" and has_state:
            for entry in list(folder.iterdir()):
                if entry.name in (STATE, REPORT) or entry.name.startswith(("chunk_", ".chunk_", f".{STATE}")):
                    _remove(entry)
        elif self.on_existing in ("resume", "error"):
            state = self._read_state(folder)
        if state is not None and self.on_existing == "error" and state.get("chunks"):
            raise ChunkwiseError(
                f"run folder {folder} already holds a run with {len(state['chunks'])} finished chunks and "
                "on_existing is 'error'; choose another run_name, or set on_existing to 'resume' or 'new run'"
            )
        if state is not None and state.get("fingerprint") != fingerprint:
            diff = fingerprint_diff(state.get("fingerprint") or {}, fingerprint)
            raise ChunkwiseError(
                f"run folder {folder} holds a run made with other settings ({'; '.join(diff[:8])}); "
                "resuming would mix two different videos. Restore those settings to resume it, or set "
                "on_existing to 'new run' (a fresh folder) or choose another run_name"
            )
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._clean_leftovers(folder)
            finished = self._finished(folder, state) if state is not None else []
            self.state = {"format": RUN_FORMAT, "fingerprint": fingerprint, "chunks": finished}
            if state is None or len(finished) != len(state.get("chunks", [])):
                atomic_write_json(folder / STATE, self.state)
        except OSError as e:
            raise self._write_error(f"create the run folder {folder}", e) from e
        self.chunks = chunks
        done = min(len(finished), chunks)
        self.resumed = done
        if done == 0:
            return None
        entries = finished[:done]
        guide = load_guide(folder / f"chunk_{done - 1:04d}" / GUIDE)
        return ResumePoint(
            records=[e["record"] for e in entries], guide=guide, frames=sum(e["frames"] for e in entries)
        )

    # -- writing -----------------------------------------------------------

    def _write_error(self, what: str, e: BaseException) -> ChunkwiseError:
        """One clear error for any failure while writing: the cause, what is intact, and the fix."""
        done = len(self.state["chunks"]) if self.state else 0
        if isinstance(e, OSError):
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = "the disk is full" if full else (e.strerror or str(e))
            cause = f"{type(e).__name__} errno {e.errno}"
        else:  # e.g. safetensors' SafetensorError, which wraps the system's error in its message
            full = any(s in str(e) for s in ("No space left", "StorageFull", "Disk quota", "QuotaExceeded"))
            reason = "the disk is full" if full else "the write failed"
            cause = f"{type(e).__name__}: {e}"
        fix = "Free disk space" if full else "Check the disk (free space, a failing or removed drive)"
        return ChunkwiseError(
            f"could not {what}: {reason} ({cause}); chunks 0..{done - 1} are intact in {self.folder}. "
            f"{fix} (or fix the folder's permissions) and queue the same run again to resume from there"
            if done
            else f"could not {what}: {reason} ({cause}); no chunk was finished yet. "
            f"{fix} (or fix the folder's permissions) and queue the run again"
        )

    def write_chunk(
        self, index: int, frames: torch.Tensor, *, record: Optional[dict] = None, guide: Optional[torch.Tensor] = None
    ) -> None:
        if self.state is None:
            raise ChunkwiseError("DiskSink.write_chunk called before open_run; the engine opens the run first")
        done = len(self.state["chunks"])
        if index != done:
            raise ChunkwiseError(f"chunk {index} arrived out of order: the run folder expects chunk {done}")
        if guide is None:
            guide = frames[-1:]
        start = sum(e["frames"] for e in self.state["chunks"])
        final = self.folder / f"chunk_{index:04d}"
        tmp = self.folder / f".chunk_{index:04d}.tmp-{os.getpid()}"
        try:
            # 1. Fill a temporary folder: PNG frames, then the exact guide.
            _remove(tmp)
            tmp.mkdir()
            array = to_uint8(frames)
            for t in range(array.shape[0]):
                save_png(tmp / f"frame_{start + t:06d}.png", array[t], self.compress_level)
            del array
            save_guide(tmp / GUIDE, guide)
            # 2. Flush its files and the folder, move it into place (replacing a leftover of an
            #    interrupted write) and flush the run folder, before state.json lists it.
            for path in sorted(tmp.iterdir()):
                fsync_path(path)
            fsync_path(tmp)
            _remove(final)
            os.replace(tmp, final)
            fsync_path(self.folder)
            # 3. Only now does the chunk count as finished.
            entry = {"index": index, "start": start, "frames": int(frames.shape[0]), "record": record or {}}
            state = {**self.state, "chunks": [*self.state["chunks"], entry]}
            atomic_write_json(self.folder / STATE, _normal(state))
            self.state = state
        except Exception as e:
            _remove(tmp)
            raise self._write_error(f"write chunk {index} to {final}", e) from e
        except BaseException:  # an interrupt: no half-filled folder stays behind either
            _remove(tmp)
            raise

    def write_report(self, report: dict) -> None:
        """Write ``report.json``, unless it would shrink: queued again for fewer chunks than the
        folder holds, the run's report keeps describing every chunk ``state.json`` lists."""
        path = self.folder / REPORT
        new = report.get("chunks") if isinstance(report, dict) else None
        if isinstance(new, list) and path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8")).get("chunks")
            except (OSError, ValueError, AttributeError):
                old = None  # unreadable or damaged: replaced
            held = len(self.state["chunks"]) if self.state else 0
            if isinstance(old, list) and len(new) < len(old) <= held:
                log.info("chunkwise: kept %s (%d chunks); this run returned its first %d", path, len(old), len(new))
                return
        try:
            atomic_write_json(path, report)
        except OSError as e:
            raise self._write_error(f"write the report {path}", e) from e

    def close(self) -> None:
        pass

    # -- reading back ------------------------------------------------------

    def _entries(self) -> list[dict]:
        if self.state is None:
            raise ChunkwiseError("the run folder was not opened: no chunk was written")
        entries = self.state["chunks"][: self.chunks]
        if not entries:
            raise ChunkwiseError(f"no chunk was written to {self.folder}: nothing to read back")
        return entries

    def chunk_frames(self, index: int) -> torch.Tensor:
        entry = self._entries()[index]
        folder = self.folder / f"chunk_{index:04d}"
        return torch.stack([load_png(folder / f"frame_{entry['start'] + t:06d}.png") for t in range(entry["frames"])])

    def video(self) -> torch.Tensor:
        """Every frame of the run's chunks, read back from the PNGs, ``[frames, H, W, 3]`` float."""
        entries = self._entries()
        total = sum(e["frames"] for e in entries)
        out: Optional[torch.Tensor] = None
        pos = 0
        for i, entry in enumerate(entries):
            folder = self.folder / f"chunk_{i:04d}"
            for t in range(entry["frames"]):
                frame = load_png(folder / f"frame_{entry['start'] + t:06d}.png")
                if out is None:
                    out = torch.empty((total, *frame.shape), dtype=torch.float32)
                out[pos] = frame
                pos += 1
        if out is None:
            raise ChunkwiseError(f"the chunks in {self.folder} hold no frames: nothing to read back")
        return out

    def last_chunk(self) -> torch.Tensor:
        return self.chunk_frames(len(self._entries()) - 1)

    def overview(self) -> torch.Tensor:
        """Each chunk's last frame, downscaled to ``overview_size``: ``[chunks, h, w, 3]``."""
        thumbs = []
        for i, entry in enumerate(self._entries()):
            if entry["frames"] == 0:
                continue
            last = self.folder / f"chunk_{i:04d}" / f"frame_{entry['start'] + entry['frames'] - 1:06d}.png"
            thumbs.append(thumbnail(load_png(last), self.overview_size))
        return torch.stack(thumbs)

    def records(self) -> list[dict]:
        return [e["record"] for e in self._entries()]


__all__ = [
    "DiskSink",
    "ON_EXISTING",
    "RUN_FORMAT",
    "atomic_write_json",
    "check_run_name",
    "fingerprint_diff",
    "fsync_path",
    "run_folder",
    "tensor_digest",
]
