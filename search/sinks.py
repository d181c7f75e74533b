"""Run folders: every finished chunk on disk as soon as it is decoded, resumable, one writer at a time.

``DiskSink`` streams a run into ``<output>/<run_name>/``; the folder's layout,
how a chunk is committed (filled under a temporary name, flushed, renamed into
place with its record inside) and how it is read back are in ``search.runs``,
the one-writer lock in ``search.runlock``. In short: appending a chunk costs
the same whatever the chunk count, an interruption or a crash at any point
leaves the finished chunks, a second process opening a run that is being
written is refused with the holder named, and ``search.runs.verify_run``
checks every file against the hash recorded when it was written.

A resumed run continues from the last chunk's ``guide.safetensors`` -- the
exact float frame, not the 8-bit PNG -- so it is bit-identical to an
uninterrupted run. The frames a streamed run returns are read back from the
PNGs (8-bit values as floats), so a resumed and an uninterrupted run return the
same frames too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image

from .durable import atomic_write_json, file_sha256, fsync_path, json_bytes, normal_json, remove_path
from .errors import ChunkwiseError
from .images import to_uint8
from .protocols import ResumePoint, thumbnail
from .runlock import HOLDER, WriterLock, WriterRefused
from .runs import (
    CHUNK_FORMAT,
    GUIDE,
    NEW_RUN_FIX,
    RECORD,
    REPORT,
    RUN_FORMAT,
    RUN_FORMAT_V1,
    STATE,
    ChunkEntry,
    Scan,
    chunk_name,
    frame_name,
    migrate_v1,
    new_header,
    read_header,
    scan_chunks,
)

log = logging.getLogger("chunkwise")

ON_EXISTING = ("resume", "new", "error", "overwrite")
MAX_RUN_NAME = 120
MAX_NEW_RUNS = 1000  # on_existing 'new' tries <name>-2 .. <name>-1001


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
# Frames and guides
# ---------------------------------------------------------------------------




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


_normal = normal_json  # what a fingerprint looks like once read back from state.json


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
    """Streams chunks into a run folder; resumable (see ``search.runs`` for the layout).

    ``on_existing`` says what to do when the folder already holds a run:
    ``resume`` continues it when its fingerprint matches and raises a clear
    error when it does not; ``new`` starts a fresh folder ``<name>-2``,
    ``<name>-3`` ... (the name shortened to keep 120 characters);
    ``error`` refuses; ``overwrite`` deletes the run's own files and starts
    again. ``new`` and ``overwrite`` never read the old ``state.json``, so
    they also clear a damaged one. Nothing is written before ``open_run``.

    ``open_run`` makes this sink the folder's one writer until ``close`` (or
    until the process ends); another process that opens the folder meanwhile is
    refused (``search.runlock``). The sink can be used as a context manager,
    which closes it however the block ends.

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
        self.header: Optional[dict] = None
        self.chunks = 0
        self.resumed = 0
        self._done: list[ChunkEntry] = []  # every finished chunk in the folder (records, no file hashes)
        self._frames_total = 0
        self._last_guide_sha: Optional[str] = None
        self._lock: Optional[WriterLock] = None

    def __enter__(self) -> "DiskSink":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- opening -----------------------------------------------------------

    def _new_folder(self) -> Path:
        """Claim the first ``<run_name>-N`` (N = 2, 3, ...) that does not exist; the name, not the number, is shortened.

        The folder is created here, so two writers starting at once never pick the same one.
        """
        for n in range(2, MAX_NEW_RUNS + 2):
            suffix = f"-{n}"
            candidate = run_folder(self.output_dir, self.run_name[: MAX_RUN_NAME - len(suffix)] + suffix)
            try:
                candidate.mkdir(parents=True)
            except FileExistsError:
                continue
            except OSError as e:
                raise self._write_error(f"create the run folder {candidate}", e) from e
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
        temporary = (f".{STATE}.tmp-", f".{REPORT}.tmp-", f".{HOLDER}.tmp-")
        for entry in folder.iterdir():
            name = entry.name
            if (name.startswith(".chunk_") and ".tmp-" in name) or name.startswith(temporary):
                log.info("chunkwise: removing %s, left by an interrupted write", entry)
                remove_path(entry)

    def _wipe(self, folder: Path) -> None:
        """on_existing 'overwrite': the run's own files go (never the user's, nor the writer lock)."""
        for entry in list(folder.iterdir()):
            if entry.name in (STATE, REPORT) or entry.name.startswith(("chunk_", ".chunk_", f".{STATE}")):
                remove_path(entry)

    def _damaged_error(self, folder: Path, scan: Scan) -> ChunkwiseError:
        i, path, what = scan.damaged
        kept = f"chunks 0..{i - 1} are intact: " if i else ""
        again = f" from chunk {i - 1}'s guide" if i else ""
        return ChunkwiseError(
            f"the record of chunk {i} ({path}) is damaged: {what}; expected a {CHUNK_FORMAT} record. {kept}delete "
            f"{chunk_name(i)} and every later chunk folder, then queue the same run again to generate them again"
            f"{again}; or {NEW_RUN_FIX}. 'chunkwise verify {folder}' checks every chunk"
        )

    def _prepare(self, folder: Path, fingerprint: dict, has_state: bool) -> Scan:
        """Read, check and (when needed) write the folder's header, as its writer; the finished chunks."""
        state = None
        if self.on_existing == "overwrite" and has_state:
            self._wipe(folder)
        elif self.on_existing in ("resume", "error"):
            state = read_header(folder)
        scan = scan_chunks(folder, state) if state is not None else Scan([])
        if scan.damaged:
            raise self._damaged_error(folder, scan)
        if scan.entries and self.on_existing == "error":
            raise ChunkwiseError(
                f"run folder {folder} already holds a run with {len(scan.entries)} finished chunks and "
                "on_existing is 'error'; choose another run_name, or set on_existing to 'resume' or 'new run'"
            )
        if state is not None and state["fingerprint"] != fingerprint:
            diff = fingerprint_diff(state["fingerprint"], fingerprint)
            raise ChunkwiseError(
                f"run folder {folder} holds a run made with other settings ({'; '.join(diff[:8])}); "
                "resuming would mix two different videos. Restore those settings to resume it, or set "
                "on_existing to 'new run' (a fresh folder) or choose another run_name"
            )
        try:
            self._clean_leftovers(folder)
            if state is None:
                self.header = new_header(fingerprint)
                atomic_write_json(folder / STATE, self.header)
                if (folder / chunk_name(0)).exists():
                    log.warning("chunkwise: %s holds chunk folders without a state: they are not part of this run "
                                "and are replaced as it goes", folder)
            elif state["format"] == RUN_FORMAT_V1:
                self.header = migrate_v1(folder, state, scan.entries)
            else:
                self.header = state
        except OSError as e:
            raise self._write_error(f"create the run folder {folder}", e) from e
        if scan.stop:
            log.warning("chunkwise: %s; the run resumes from chunk %d", scan.stop, len(scan.entries))
        return scan

    def _resume_point(self, chunks: int) -> Optional[ResumePoint]:
        done = min(len(self._done), chunks)
        self.chunks, self.resumed = chunks, done
        if done == 0:
            return None
        path = self.folder / chunk_name(done - 1) / GUIDE
        try:
            guide = load_guide(path)
        except Exception as e:  # safetensors raises its own error type for a damaged file
            raise ChunkwiseError(
                f"cannot read {path}, the guide that continues the run: {type(e).__name__}: {e}. Delete "
                f"{chunk_name(done - 1)} and every later chunk folder, then queue the same run again to generate "
                f"them again; or {NEW_RUN_FIX}"
            ) from e
        return ResumePoint(records=[e.record for e in self._done[:done]], guide=guide,
                           frames=sum(e.frames for e in self._done[:done]))

    def open_run(self, fingerprint: dict, chunks: int) -> Optional[ResumePoint]:
        """Create or reopen the run folder as its one writer; return the finished chunks to skip, if any."""
        fingerprint = _normal(fingerprint)
        self.close()  # a sink opened again lets its previous folder go first
        self.header, self._done, self._frames_total = None, [], 0
        # 1. Which folder: 'new' never reads an existing state, so a damaged one is left alone.
        has_state = (self.folder / STATE).exists() or (self.folder / STATE).is_symlink()
        if self.on_existing == "new" and has_state:
            folder = self._new_folder()
            log.info("chunkwise: %s exists; starting a new run in %s", self.folder, folder)
        else:
            folder = self.folder
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise self._write_error(f"create the run folder {folder}", e) from e
        # 2. Become its one writer before anything in it is read or changed.
        lock = WriterLock(folder)
        lock.acquire(take_over=True)
        try:
            with lock.writing():
                self.folder = folder
                scan = self._prepare(folder, fingerprint, has_state)
                self._done = scan.entries
                self._frames_total = sum(e.frames for e in scan.entries)
                last = scan.entries[-1] if scan.entries else None
                self._last_guide_sha = None
                if last is not None:  # the next chunk records the guide it is made from
                    self._last_guide_sha = last.guide_sha or file_sha256(folder / chunk_name(last.index) / GUIDE)
                for entry in scan.entries:
                    entry.files = {}  # the hashes are verify_run's business; the sink keeps only the records
                point = self._resume_point(chunks)
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return point

    # -- writing -----------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Write as the folder's one writer: again after ``close`` if no other writer took it meanwhile."""
        lock = self._lock
        if lock is None or self.header is None:
            raise ChunkwiseError("DiskSink.write_chunk called before open_run; the engine opens the run first")
        again = not lock.held and not lock.superseded
        if again:
            lock.acquire(take_over=False)
        try:
            if again:
                self._check_unchanged()
            with lock.writing():
                yield
        finally:
            if again:
                lock.release()

    def _check_unchanged(self) -> None:
        try:
            same = read_header(self.folder).get("run_id") == self.header.get("run_id")
        except (ChunkwiseError, AttributeError):
            same = False
        if not same or (self.folder / chunk_name(len(self._done))).exists():
            raise WriterRefused(
                f"run folder {self.folder} changed after this run let it go (another writer opened it); this run "
                "stops here. Queue the run again to continue the folder as it is now"
            )

    def _write_error(self, what: str, e: BaseException) -> ChunkwiseError:
        """One clear error for any failure while writing: the cause, what is intact, and the fix."""
        done = len(self._done)
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

    def _fill(self, tmp: Path, index: int, frames: torch.Tensor, record: Optional[dict],
              guide: torch.Tensor) -> ChunkEntry:
        """The chunk's files in its temporary folder: PNG frames, the exact guide, then the record with their hashes."""
        remove_path(tmp)
        tmp.mkdir()
        array = to_uint8(frames)
        names = [frame_name(self._frames_total + t) for t in range(array.shape[0])]
        for t, name in enumerate(names):
            save_png(tmp / name, array[t], self.compress_level)
        del array
        save_guide(tmp / GUIDE, guide)
        files = {name: file_sha256(tmp / name) for name in (*names, GUIDE)}
        entry = ChunkEntry(index, self._frames_total, len(names), _normal(record or {}), files,
                           after=self._last_guide_sha, run=self.header["run_id"])
        with open(tmp / RECORD, "wb") as f:
            f.write(json_bytes(entry.to_json()))
        return entry

    def write_chunk(
        self, index: int, frames: torch.Tensor, *, record: Optional[dict] = None, guide: Optional[torch.Tensor] = None
    ) -> None:
        with self._writing():
            done = len(self._done)
            if index != done:
                raise ChunkwiseError(f"chunk {index} arrived out of order: the run folder expects chunk {done}")
            final = self.folder / chunk_name(index)
            tmp = self.folder / f".{final.name}.tmp-{os.getpid()}"
            try:
                # 1. Fill a temporary folder: frames, guide, the record naming their hashes.
                entry = self._fill(tmp, index, frames, record, frames[-1:] if guide is None else guide)
                # 2. Flush its files and the folder, move it into place (replacing a leftover of an interrupted
                #    write) and flush the run folder: the rename is what makes the chunk finished.
                for path in sorted(tmp.iterdir()):
                    fsync_path(path)
                fsync_path(tmp)
                remove_path(final)
                os.replace(tmp, final)
                fsync_path(self.folder)
            except Exception as e:
                remove_path(tmp)
                raise self._write_error(f"write chunk {index} to {final}", e) from e
            except BaseException:  # an interrupt: no half-filled folder stays behind either
                remove_path(tmp)
                raise
            self._last_guide_sha = entry.guide_sha
            entry.files = {}
            self._done.append(entry)
            self._frames_total += entry.frames

    def write_report(self, report: dict) -> None:
        """Write ``report.json``, unless it would shrink: queued again for fewer chunks than the
        folder holds, the run's report keeps describing every chunk the folder holds.

        After ``close`` the sink takes the folder again for this; if another writer holds it by
        then, the report is left to that one (logged)."""
        if self._lock is None:
            raise ChunkwiseError("DiskSink.write_report called before open_run; the engine opens the run first")
        try:
            with self._writing():
                self._write_report(report)
        except WriterRefused as e:
            log.warning("chunkwise: report.json not written: %s", e)

    def _write_report(self, report: dict) -> None:
        path = self.folder / REPORT
        new = report.get("chunks") if isinstance(report, dict) else None
        if isinstance(new, list) and path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8")).get("chunks")
            except (OSError, ValueError, AttributeError):
                old = None  # unreadable or damaged: replaced
            if isinstance(old, list) and len(new) < len(old) <= len(self._done):
                log.info("chunkwise: kept %s (%d chunks); this run returned its first %d", path, len(old), len(new))
                return
        try:
            atomic_write_json(path, report)
        except OSError as e:
            raise self._write_error(f"write the report {path}", e) from e

    def close(self) -> None:
        """Let the run folder go (another process may then open it); reading back still works."""
        if self._lock is not None:
            self._lock.release()

    # -- reading back ------------------------------------------------------

    def _entries(self) -> list[ChunkEntry]:
        if self.header is None:
            raise ChunkwiseError("the run folder was not opened: no chunk was written")
        entries = self._done[: self.chunks]
        if not entries:
            raise ChunkwiseError(f"no chunk was written to {self.folder}: nothing to read back")
        return entries

    def chunk_frames(self, index: int) -> torch.Tensor:
        entry = self._entries()[index]
        folder = self.folder / chunk_name(index)
        return torch.stack([load_png(folder / frame_name(entry.start + t)) for t in range(entry.frames)])

    def video(self) -> torch.Tensor:
        """Every frame of the run's chunks, read back from the PNGs, ``[frames, H, W, 3]`` float."""
        entries = self._entries()
        total = sum(e.frames for e in entries)
        out: Optional[torch.Tensor] = None
        pos = 0
        for i, entry in enumerate(entries):
            folder = self.folder / chunk_name(i)
            for t in range(entry.frames):
                frame = load_png(folder / frame_name(entry.start + t))
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
            if entry.frames == 0:
                continue
            last = self.folder / chunk_name(i) / frame_name(entry.start + entry.frames - 1)
            thumbs.append(thumbnail(load_png(last), self.overview_size))
        return torch.stack(thumbs)

    def records(self) -> list[dict]:
        return [e.record for e in self._entries()]


__all__ = [
    "DiskSink",
    "ON_EXISTING",
    "RUN_FORMAT",
    "WriterRefused",
    "atomic_write_json",
    "check_run_name",
    "fingerprint_diff",
    "fsync_path",
    "run_folder",
    "tensor_digest",
]
