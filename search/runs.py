"""The run-folder format: what a run folder holds, how it is read back, migrated and verified.

Layout of ``<output>/<run_name>/`` (format ``chunkwise.run/2``)::

    state.json                     the header: format, settings fingerprint, run id, creation time; written once
    report.json                    the search report (chunkwise.report/1), written when the run finishes
    chunk_0000/frame_000000.png    lossless 8-bit RGB PNG frames, numbered over the whole video
    chunk_0000/guide.safetensors   the chunk's exact float last frame: the next chunk's guide
    chunk_0000/chunk.json          the chunk's record: run id, index, first frame, frame count, report record,
                                   the sha256 of each file above and of the guide the chunk was made from
    chunk_0001/ ...
    .writer.lock, .writer.json     the one-writer lock and who holds it (see ``search.runlock``)

A chunk counts as finished once its folder ``chunk_NNNN`` exists: the writer
fills it under a temporary name (``.chunk_NNNN.tmp-PID``), flushes every file
and the folder to disk (fsync), and one rename puts it in place with its record
inside. Appending chunk n therefore writes the same few small files at n = 1000
as at n = 10, and nothing that lists the chunks is ever rewritten. Resuming
reads each chunk's record and lists its folder (no frame is read) and loads the
last guide.

The finished run is the longest prefix ``chunk_0000``, ``chunk_0001`` ... whose
folders hold every file their record names, written under this ``state.json``
(its run id) and made from the guide of the chunk before as that chunk is now
on disk: a chunk left from an earlier run in the folder, or from before its
predecessor was generated again, is not part of the run.
``verify_run`` also checks every file against the hash recorded when it was written.

Format ``chunkwise.run/1`` (one ``state.json`` listing every chunk, rewritten
after each) is still read; a writer migrates it when it opens the folder.
Only plain JSON and safetensors are read back: nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from .durable import atomic_write_json, file_sha256
from .errors import ChunkwiseError

log = logging.getLogger("chunkwise")

RUN_FORMAT = "chunkwise.run/2"
RUN_FORMAT_V1 = "chunkwise.run/1"
CHUNK_FORMAT = "chunkwise.chunk/1"
STATE = "state.json"
REPORT = "report.json"
GUIDE = "guide.safetensors"
RECORD = "chunk.json"
_CHUNK_DIR = re.compile(r"chunk_(\d{4,})")
_SHA = re.compile(r"[0-9a-f]{64}")
# The fix for a damaged header names the ChunkLoop node's on_existing choices ('new run' is on_existing='new').
NEW_RUN_FIX = (
    "set on_existing to 'new run' (this folder is kept as it is, the run starts in a fresh one) or choose another "
    "run_name"
)


def chunk_name(index: int) -> str:
    return f"chunk_{index:04d}"


def frame_name(number: int) -> str:
    return f"frame_{number:06d}.png"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------
# The header (state.json) and the chunk records (chunk_NNNN/chunk.json)
# ---------------------------------------------------------------------------


def new_header(fingerprint: dict, **extra: Any) -> dict:
    return {"format": RUN_FORMAT, "fingerprint": fingerprint, "run_id": uuid.uuid4().hex, "created": utc_now(),
            **extra}


def read_header(folder: Path) -> Optional[dict]:
    """The run's ``state.json`` (format 2, or format 1 with its chunk list checked); None if there is none.

    Raises ChunkwiseError naming the damage and the fix when it cannot be used.
    """
    path = folder / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ChunkwiseError(
            f"cannot read the run state {path}: {e}; expected a {RUN_FORMAT} JSON file; {NEW_RUN_FIX}"
        ) from e
    got = state.get("format") if isinstance(state, dict) else type(state).__name__
    if got not in (RUN_FORMAT, RUN_FORMAT_V1):
        raise ChunkwiseError(f"{path} is not a chunkwise run state: format {got!r}, expected {RUN_FORMAT!r}; "
                             f"{NEW_RUN_FIX}")
    if not isinstance(state.get("fingerprint"), dict):
        raise ChunkwiseError(f"{path} holds no settings fingerprint (got {state.get('fingerprint')!r:.80}); "
                             f"expected a JSON object; {NEW_RUN_FIX}")
    if got == RUN_FORMAT_V1:
        _check_v1_chunks(path, state.get("chunks"))
    elif not isinstance(state.get("run_id"), str):
        raise ChunkwiseError(f"{path} holds no run id (got {state.get('run_id')!r:.80}); expected the string its "
                             f"chunk records name; {NEW_RUN_FIX}")
    return state


def _check_v1_chunks(path: Path, chunks: Any) -> None:
    if not isinstance(chunks, list):
        raise ChunkwiseError(f"{path} lists no chunks (got {type(chunks).__name__}); expected a list; {NEW_RUN_FIX}")
    start = 0
    for i, entry in enumerate(chunks):
        ok = (isinstance(entry, dict) and entry.get("index") == i and entry.get("start") == start
              and isinstance(entry.get("frames"), int) and entry["frames"] >= 0
              and isinstance(entry.get("record", {}), dict))
        if not ok:
            raise ChunkwiseError(
                f"{path}: chunk entry {i} is damaged (got {entry!r:.200}); expected index {i}, start {start}, "
                f"a frame count and a record; {NEW_RUN_FIX}"
            )
        start += entry["frames"]


@dataclass
class ChunkEntry:
    """One finished chunk: its frames are ``frame_{start}`` .. ``frame_{start + frames - 1}``.

    ``files`` maps each file of the chunk to its sha256 when it was written
    (None: not recorded, a chunk written by format 1); ``after`` is the sha256
    of the guide the chunk was made from (the previous chunk's guide file);
    ``run`` the run id of the header it was written under.
    """

    index: int
    start: int
    frames: int
    record: dict
    files: dict = field(default_factory=dict)
    after: Optional[str] = None
    run: Optional[str] = None

    def names(self) -> list[str]:
        return [frame_name(self.start + t) for t in range(self.frames)] + [GUIDE]

    @property
    def guide_sha(self) -> Optional[str]:
        return self.files.get(GUIDE)

    def to_json(self) -> dict:
        return {"format": CHUNK_FORMAT, "run": self.run, "index": self.index, "start": self.start,
                "frames": self.frames, "files": self.files, "after": self.after, "record": self.record}


class DamagedRecord(Exception):
    """A chunk record that cannot be used; the message says what is wrong."""


def read_record(path: Path, index: int, start: int) -> ChunkEntry:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DamagedRecord(f"unreadable: {e}") from e
    if not isinstance(data, dict) or data.get("format") != CHUNK_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DamagedRecord(f"format {got!r}, expected {CHUNK_FORMAT!r}")
    frames, files = data.get("frames"), data.get("files")
    wrong = [f"{key} {data.get(key)!r:.60}, expected {want}" for key, want in (("index", index), ("start", start))
             if data.get(key) != want]
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
        wrong.append(f"frames {frames!r:.60}, expected a frame count")
    if not isinstance(data.get("record"), dict):
        wrong.append(f"record {data.get('record')!r:.60}, expected a JSON object")
    if not isinstance(data.get("run"), str):
        wrong.append(f"run {data.get('run')!r:.60}, expected the run id of its state.json")
    if wrong:
        raise DamagedRecord("; ".join(wrong))
    entry = ChunkEntry(index, start, frames, data["record"], after=data.get("after"), run=data["run"])
    if not isinstance(files, dict) or set(files) != set(entry.names()):
        raise DamagedRecord(f"files {sorted(files)[:3] if isinstance(files, dict) else files!r:.80}..., expected "
                            f"{entry.names()[0]} .. {entry.names()[-1]}")
    if not all(v is None or (isinstance(v, str) and _SHA.fullmatch(v)) for v in files.values()):
        raise DamagedRecord("a file hash is not a sha256 hex digest")
    if not (entry.after is None or (isinstance(entry.after, str) and _SHA.fullmatch(entry.after))):
        raise DamagedRecord(f"after {entry.after!r:.80}, expected a sha256 hex digest or null")
    entry.files = files
    return entry


# ---------------------------------------------------------------------------
# Scanning the chunks on disk
# ---------------------------------------------------------------------------


@dataclass
class Scan:
    """The finished run found on disk: ``entries`` are chunks 0 .. len - 1.

    ``stop`` says why the run ends there although a chunk folder follows (its
    files are incomplete, it lacks a record, or it was made from another
    version of the chunk before); ``damaged`` names a record that cannot be read
    ``(index, path, what is wrong)``.
    """

    entries: list
    stop: Optional[str] = None
    damaged: Optional[tuple] = None


def scan_chunks(folder: Path, header: dict) -> Scan:
    """The run's finished chunks, reading each record and listing each folder (no frame is read)."""
    if header.get("format") == RUN_FORMAT_V1:
        return _scan_v1(folder, header)
    entries: list[ChunkEntry] = []
    start, before = 0, None
    while True:
        i = len(entries)
        chunk = folder / chunk_name(i)
        try:
            names = set(os.listdir(chunk))
        except (FileNotFoundError, NotADirectoryError):
            return Scan(entries)
        if RECORD not in names:
            return Scan(entries, stop=f"{chunk.name} has no {RECORD} (not written by a finished chunk write)")
        try:
            entry = read_record(chunk / RECORD, i, start)
        except DamagedRecord as e:
            return Scan(entries, damaged=(i, chunk / RECORD, str(e)))
        missing = [n for n in entry.names() if n not in names]
        if missing:
            more = f" and {len(missing) - 1} more of its files" if len(missing) > 1 else ""
            return Scan(entries, stop=f"{chunk.name} lacks {missing[0]}{more}")
        stale = _stale(entry, header, before)
        if stale:
            return Scan(entries, stop=f"{chunk.name} {stale}")
        entries.append(entry)
        start, before = start + entry.frames, entry.guide_sha


def finished_chunks(folder: os.PathLike | str) -> int:
    """How many finished chunks a run folder holds, as a resume would find them (0 without a readable run).

    Safe while a writer is at work: a chunk appears only once it is complete.
    """
    folder = Path(folder)
    try:
        header = read_header(folder)
    except ChunkwiseError:
        return 0
    return len(scan_chunks(folder, header).entries) if header else 0


def _stale(entry: ChunkEntry, header: Optional[dict], before: Optional[str]) -> Optional[str]:
    """Why a well-formed chunk is not part of the run (None if it is; no header: the run id is not checked)."""
    if header is not None and entry.run != header.get("run_id"):
        return (f"belongs to another run (run id {entry.run}, this run {header.get('run_id')}): it is left from "
                f"before {STATE} was written anew")
    if entry.after and before and entry.after != before:
        return (f"was made from another {chunk_name(entry.index - 1)} than the one on disk (it is left from before "
                "that chunk was generated again)")
    return None


def _scan_v1(folder: Path, state: dict) -> Scan:
    entries = []
    for i, e in enumerate(state["chunks"]):
        entry = ChunkEntry(i, e["start"], e["frames"], e.get("record", {}))
        entry.files = dict.fromkeys(entry.names())
        chunk = folder / chunk_name(i)
        try:
            names = set(os.listdir(chunk))
        except OSError:
            names = set()
        missing = [n for n in entry.names() if n not in names]
        if missing:
            return Scan(entries, stop=f"{chunk.name} lacks {missing[0]}")
        entries.append(entry)
    return Scan(entries)


def migrate_v1(folder: Path, state: dict, entries: list) -> dict:
    """Rewrite a format-1 run folder as format 2; returns the new header.

    Each finished chunk gets its record (without hashes: they were not recorded
    when it was written); the new ``state.json`` replaces the old one last, so a
    migration cut short leaves the format-1 folder as it was (records written so
    far are written again next time).
    """
    log.info("chunkwise: migrating %s (%d chunks) from %s to %s", folder, len(entries), RUN_FORMAT_V1, RUN_FORMAT)
    header = new_header(state["fingerprint"], migrated_from=RUN_FORMAT_V1, migrated=utc_now())
    for entry in entries:
        entry.run = header["run_id"]
        atomic_write_json(folder / chunk_name(entry.index) / RECORD, entry.to_json())
    atomic_write_json(folder / STATE, header)
    return header


def chunk_folders(folder: Path) -> dict:
    """Index -> path of every ``chunk_NNNN`` folder in a run folder."""
    out = {}
    for entry in os.scandir(folder):
        m = _CHUNK_DIR.fullmatch(entry.name)
        if m and entry.is_dir():
            out[int(m.group(1))] = Path(entry.path)
    return out


# ---------------------------------------------------------------------------
# Verifying a run folder against the hashes recorded at write time
# ---------------------------------------------------------------------------

OK, UNVERIFIED, MISSING, DAMAGED, STALE = "ok", "unverified", "missing", "damaged", "stale"


@dataclass
class ChunkCheck:
    """One chunk's verdict: ``ok``; ``unverified`` (present, but written by format 1, which recorded no
    hashes); ``missing`` (no folder, although a later chunk has one); ``damaged`` (a file missing or
    differing from its hash, or an unreadable record); ``stale`` (made from another version of the chunk
    before it)."""

    index: int
    status: str
    problems: list = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.status in (OK, UNVERIFIED)


@dataclass
class RunCheck:
    """What ``verify_run`` found; ``text()`` is the readable form, ``to_json()`` the structured one."""

    folder: Path
    format: Optional[str]
    header_problem: Optional[str]
    chunks: list
    notes: list = field(default_factory=list)

    @property
    def intact(self) -> int:
        """Chunks 0 .. intact - 1 are intact: what a resume keeps."""
        return next((c.index for c in self.chunks if not c.good), len(self.chunks))

    @property
    def bad(self) -> list:
        return [c for c in self.chunks if not c.good]

    @property
    def ok(self) -> bool:
        return self.header_problem is None and not self.bad

    def fix(self) -> str:
        if self.header_problem is not None:
            return (f"{STATE} cannot be used, so this folder cannot be resumed: its settings fingerprint is lost. "
                    "Queue the run with on_existing 'new run' (a fresh folder beside this one) or another run_name; "
                    "the chunk files here stay as they are")
        if not self.bad:
            return ""
        k, last = self.intact, self.chunks[-1].index
        span = chunk_name(k) if k == last else f"{chunk_name(k)} .. {chunk_name(last)}"
        keep = (f"It keeps chunks 0..{k - 1} (what it needs: {STATE}, their folders with {RECORD} and frames, and "
                f"{chunk_name(k - 1)}/{GUIDE}, the exact frame the video continues from) and generates chunks "
                f"{k}..{last} again, identical to the chunks they replace" if k
                else "It generates every chunk again from the input image")
        return (f"To regenerate: delete {span} (every chunk folder from chunk {k} on), then queue the run again with "
                f"the same settings, run_name {self.folder.name!r} and on_existing 'resume'. {keep}")

    def text(self) -> str:
        good = sum(c.good for c in self.chunks)
        lines = [f"run folder {self.folder} ({self.format or 'no readable state'}): {len(self.chunks)} chunk "
                 f"folders, {good} intact"]
        if self.header_problem:
            lines.append(f"  {STATE}: {self.header_problem}")
        for c in self.bad[:20]:
            lines.append(f"  {chunk_name(c.index)}: {c.status}: {'; '.join(c.problems[:3])}"
                         + (f" (+{len(c.problems) - 3} more)" if len(c.problems) > 3 else ""))
        if len(self.bad) > 20:
            lines.append(f"  ... and {len(self.bad) - 20} more damaged or missing chunks")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append("OK: every chunk matches what was written" if self.ok else self.fix())
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"folder": str(self.folder), "format": self.format, "ok": self.ok, "intact": self.intact,
                "header_problem": self.header_problem, "notes": self.notes, "fix": self.fix(),
                "chunks": [{"index": c.index, "status": c.status, "problems": c.problems} for c in self.chunks]}


def _check_files(chunk: Path, entry: ChunkEntry) -> ChunkCheck:
    problems, unhashed = [], 0
    for name in entry.names():
        path, want = chunk / name, entry.files.get(name)
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif want is None:
            unhashed += 1
        else:
            try:
                got = file_sha256(path)
            except OSError as e:
                problems.append(f"{name} cannot be read: {e}")
                continue
            if got != want:
                problems.append(f"{name} differs from when it was written (sha256 {got[:12]}.., recorded "
                                f"{want[:12]}..)")
    status = DAMAGED if problems else (UNVERIFIED if unhashed else OK)
    return ChunkCheck(entry.index, status, problems)


def _check_v2(folder: Path, header: Optional[dict], on_disk: dict) -> list:
    checks, start, before = [], 0, None
    for i in range(max(on_disk, default=-1) + 1):
        chunk = on_disk.get(i)
        if chunk is None:
            checks.append(ChunkCheck(i, MISSING, [f"{chunk_name(i)} does not exist but later chunks do"]))
            before = None
            continue
        try:
            entry = read_record(chunk / RECORD, i, start)
        except DamagedRecord as e:
            checks.append(ChunkCheck(i, DAMAGED, [f"{RECORD}: {e}"]))
            before = None
            continue
        check = _check_files(chunk, entry)
        stale = _stale(entry, header, before)
        if check.good and stale:
            check = ChunkCheck(i, STALE, [stale])
        checks.append(check)
        start, before = start + entry.frames, entry.guide_sha
    return checks


def _check_v1(folder: Path, state: dict, on_disk: dict, notes: list) -> list:
    checks = []
    for i, e in enumerate(state["chunks"]):
        entry = ChunkEntry(i, e["start"], e["frames"], e.get("record", {}), {})
        entry.files = dict.fromkeys(entry.names())
        checks.append(_check_files(on_disk.get(i, folder / chunk_name(i)), entry))
    unlisted = sorted(set(on_disk) - set(range(len(checks))))
    if unlisted:
        notes.append(f"{len(unlisted)} chunk folders from {chunk_name(unlisted[0])} on are not listed in {STATE} "
                     "(left by an interrupted write): not part of the run, replaced when it continues")
    notes.append(f"written by {RUN_FORMAT_V1}, which recorded no hashes: its chunks were checked for presence only; "
                 "the next run that opens the folder migrates it")
    return checks


def verify_run(folder: os.PathLike | str) -> RunCheck:
    """Check every chunk of a run folder against the hashes recorded when it was written.

    Nothing is written. Raises ChunkwiseError when ``folder`` is not a run folder at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ChunkwiseError(f"run folder {folder} does not exist or is not a folder; pass a run folder such as "
                             "ComfyUI/output/chunkwise/<run_name>")
    on_disk = chunk_folders(folder)
    if not (folder / STATE).exists() and not on_disk:
        raise ChunkwiseError(f"{folder} is not a run folder: it has no {STATE} and no chunk_NNNN folders; pass a "
                             "run folder such as ComfyUI/output/chunkwise/<run_name>")
    state, problem, notes = None, None, []
    try:
        state = read_header(folder)
        if state is None:
            problem = "missing"
    except ChunkwiseError as e:
        problem = str(e).split("; ")[0]
    if state is not None and state.get("format") == RUN_FORMAT_V1:
        checks = _check_v1(folder, state, on_disk, notes)
    else:
        checks = _check_v2(folder, state, on_disk)
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    if leftovers:
        notes.append(f"{len(leftovers)} temporary files of an interrupted write ({leftovers[0]} ...): removed when "
                     "the run is opened again")
    if checks and not (folder / REPORT).is_file():
        notes.append(f"no {REPORT} yet: the run has not finished (or was interrupted)")
    return RunCheck(folder, state.get("format") if state else None, problem, checks, notes)


__all__ = [
    "CHUNK_FORMAT",
    "ChunkCheck",
    "ChunkEntry",
    "GUIDE",
    "RECORD",
    "REPORT",
    "RUN_FORMAT",
    "RUN_FORMAT_V1",
    "RunCheck",
    "STATE",
    "Scan",
    "chunk_name",
    "finished_chunks",
    "frame_name",
    "read_header",
    "scan_chunks",
    "verify_run",
]
