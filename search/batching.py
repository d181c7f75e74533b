"""Sampling candidates in batches that shrink on out-of-memory, shared by every host."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import torch

log = logging.getLogger("chunkwise")


def is_out_of_memory(error: BaseException) -> bool:
    """torch's out-of-memory error (or an error that says so, as some backends raise RuntimeError)."""
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def run_in_batches(
    count: int,
    limit: Optional[int],
    run: Callable[[int, int], list],
    *,
    snapshot: Callable[[], Any],
    restore: Callable[[Any], None],
    free: Callable[[], None],
    out_of_memory: Callable[[BaseException], bool] = is_out_of_memory,
) -> tuple[list, Optional[int]]:
    """``run(start, size)`` over items ``[0, count)`` in slices of at most ``limit`` (all when None).

    On out-of-memory the failed slice's counters are put back (``restore(snapshot())``),
    memory is freed, and the slice is retried at half the size, down to one item; any
    other error, or out-of-memory at size one, is raised. Returns the results in order
    and the size that fit, for the next call to start from.
    """
    results: list = []
    i = 0
    while i < count:
        size = min(count - i, limit or count)
        saved = snapshot()
        try:
            results += run(i, size)
        except Exception as error:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not out_of_memory(error) or size == 1:
                raise
            restore(saved)
            limit = max(1, size // 2)
            log.warning("chunkwise: out of memory sampling %d candidates in one batch; retrying with batches of %d",
                        size, limit)
            free()
            continue
        i += size
    return results, limit
