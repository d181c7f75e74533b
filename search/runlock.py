"""One writer per run folder: an operating-system file lock, held from ``open_run`` to ``close``.

The lock is ``<run folder>/.writer.lock``, taken with the ``filelock`` package
(``flock`` on Unix, ``LockFileEx`` on Windows) without waiting: a second writer
(another ComfyUI server or worker on the same output folder, a second command
line) is refused at once with a ChunkwiseError naming the holder, which
``.writer.json`` records (pid, host, since when, program). The operating system
drops the lock when its process ends, however it ends (a crash, SIGKILL, a power
cut), so a dead writer never locks a folder for good; its ``.writer.json`` may
stay behind and is replaced by the next writer. The lock file itself stays in
place (an empty file): removing it on release would let two writers lock two
different files of the same name.

Within one process a later writer on the same folder takes the lock over from
an earlier one (a cancelled run whose sink is still referenced by its traceback
cannot be told apart from a finished one, and queuing it again must work); the
earlier one's next write is then refused. Writes inside one process are
serialised, so nothing interleaves there either.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import sys
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .durable import atomic_write_json, remove_path
from .errors import ChunkwiseError
from .runs import NEW_RUN_FIX, utc_now

log = logging.getLogger("chunkwise")

LOCK = ".writer.lock"
HOLDER = ".writer.json"

_tokens = itertools.count(1)
_registry_lock = threading.Lock()
_holds: "weakref.WeakValueDictionary[str, _Hold]" = weakref.WeakValueDictionary()
_warned_missing = False


class WriterRefused(ChunkwiseError):
    """This writer may not write the run folder: another one holds it (the message names it)."""


class _Hold:
    """This process's hold on one run folder: the OS lock, which writer owns it, a mutex for its writes."""

    def __init__(self, file_lock) -> None:
        self.file_lock = file_lock
        self.owner: Optional[int] = None
        self.mutex = threading.RLock()


def _file_lock(path: Path):
    """A non-reentrant ``filelock.FileLock``, or None (logged) when the package is missing."""
    global _warned_missing
    try:
        from filelock import FileLock
    except ImportError:
        if not _warned_missing:
            log.warning("chunkwise: the 'filelock' package is not installed (pip install filelock): run folders "
                        "are not protected against a second process writing them at the same time")
            _warned_missing = True
        return None
    return FileLock(str(path), timeout=0, thread_local=False)


def describe_holder(folder: Path) -> str:
    """Who ``.writer.json`` says holds the folder: 'pid 123 on host h since 2026-... (program)'."""
    try:
        info = json.loads((folder / HOLDER).read_text(encoding="utf-8"))
        text = f"pid {info['pid']} on host {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"a process that has not recorded itself in {folder / HOLDER} yet"
    program = info.get("program")
    return f"{text} ({program})" if program else text


class WriterLock:
    """The one-writer lock of one run folder, for one writer (one DiskSink)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.key = os.path.normcase(str(self.folder))
        self.token = next(_tokens)
        self._hold: Optional[_Hold] = None

    @property
    def held(self) -> bool:
        return self._hold is not None and self._hold.owner == self.token

    @property
    def superseded(self) -> bool:
        """A later writer in this process took the folder over."""
        return self._hold is not None and self._hold.owner not in (None, self.token)

    def acquire(self, *, take_over: bool) -> None:
        """Become the folder's writer, or raise ChunkwiseError naming the one that is.

        ``take_over``: an earlier writer in this process hands the folder over
        (once its write in progress, if any, has finished).
        """
        with _registry_lock:
            if self.held:
                return
            hold = _holds.get(self.key)
            if hold is not None and hold.owner is not None:
                if not take_over:
                    raise WriterRefused(
                        f"run folder {self.folder} is being written by another run in this process "
                        f"({describe_holder(self.folder)}); this writer let it go, so it cannot write there any "
                        "more. Queue the run again to continue it"
                    )
                with hold.mutex:
                    hold.owner = self.token
                log.info("chunkwise: %s was held by an earlier run in this process; this run takes it over",
                         self.folder)
            else:
                hold = _Hold(_file_lock(self.folder / LOCK))
                self._lock_os(hold)
                hold.owner = self.token
                _holds[self.key] = hold
            self._hold = hold
        self._record_holder()

    def _lock_os(self, hold: _Hold) -> None:
        if hold.file_lock is None:
            return
        from filelock import Timeout

        try:
            hold.file_lock.acquire(timeout=0)
        except Timeout:
            raise WriterRefused(
                f"run folder {self.folder} is being written by another process ({describe_holder(self.folder)}); "
                "only one process writes a run folder at a time, so this run did not start. Wait for that run to "
                "finish or cancel it there, then queue this one again to continue the folder (a writer that died "
                f"has already let go: its lock ends with its process); or, to run now beside it, {NEW_RUN_FIX}"
            ) from None
        except (OSError, NotImplementedError, RuntimeError) as e:
            # A file system without locks (some network drives): write without one rather than not at all.
            log.warning("chunkwise: cannot lock %s (%s: %s); it is not protected against a second writer",
                        self.folder / LOCK, type(e).__name__, e)
            hold.file_lock = None

    def _record_holder(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(),
                "program": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""}
        try:
            atomic_write_json(self.folder / HOLDER, info)
        except OSError as e:  # the folder's own writes will fail with a clear error if the disk is the cause
            log.warning("chunkwise: could not record the writer in %s: %s", self.folder / HOLDER, e)

    def release(self) -> None:
        """Let the folder go (a no-op unless this writer holds it)."""
        with _registry_lock:
            hold, self._hold = self._hold, None
            if hold is None or hold.owner != self.token:
                return
            with hold.mutex:
                hold.owner = None
                remove_path(self.folder / HOLDER)  # before the OS lock: the next holder's record must stay
                if hold.file_lock is not None:
                    hold.file_lock.release()
            if _holds.get(self.key) is hold:
                del _holds[self.key]

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this process's mutex for the folder during one write; refuse if this writer lost the folder."""
        hold = self._hold
        if hold is None:
            raise ChunkwiseError(f"this writer does not hold the run folder {self.folder}; open the run first")
        with hold.mutex:
            if hold.owner != self.token:
                raise WriterRefused(
                    f"run folder {self.folder} was opened again by a later run in this process, which writes it "
                    "now; this earlier run stops here. Its finished chunks are in the folder"
                )
            yield


__all__ = ["HOLDER", "LOCK", "WriterLock", "WriterRefused", "describe_holder"]
