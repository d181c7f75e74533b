"""Durable file writes for run folders: a temporary name, a flush to disk (fsync), a rename; file hashes.

A file written with ``atomic_write_bytes`` is either absent, or its old
version, or the whole new one, whatever happens meanwhile (an exception, a
killed process, a power cut): the data is flushed before the rename, and the
folder after it, so the rename never reaches the disk before the data does.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("chunkwise")


def tmp_name(path: Path) -> Path:
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
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    fsync_path(path.parent)


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, allow_nan=False).encode("utf-8")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def remove_path(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as e:
        log.warning("chunkwise: could not remove %s: %s", path, e)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def normal_json(obj: Any) -> Any:
    """JSON round trip: what a value looks like once read back from a run folder."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "file_sha256",
    "fsync_path",
    "json_bytes",
    "normal_json",
    "remove_path",
    "tmp_name",
]
