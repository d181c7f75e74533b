"""Peak memory of a long run against its number of chunks: streamed to a run folder vs in memory.

Each configuration runs in a fresh Python process (so peaks do not leak from one
to the next) on the toy flow-matching denoiser (tests/pure/toys.py) with frames
large enough for frame memory to show. Reported per run:

- ``rss_peak_mb``: the process's resident memory sampled every 2 ms during
  ``run_chunks``, peak minus the value just before the run (torch's CPU
  tensors included);
- ``tracemalloc_peak_mb``: the peak of Python-level allocations during the run
  (numpy buffers, PNG encoding, state JSON; torch tensors are not traced).

With streaming, memory holds one chunk at a time whatever the chunk count; in
memory (the default without a run name) it grows with every chunk.

The child processes run with ``MALLOC_MMAP_THRESHOLD_=65536`` and
``MALLOC_TRIM_THRESHOLD_=0`` so glibc hands freed tensor buffers back to the
system and RSS tracks live memory; without them (``--default-malloc``) glibc's
adaptive threshold keeps freed buffers in the heap and RSS also measures
fragmentation, which grows with run time whatever the program holds.

    .venv/bin/python benchmarks/bench_memory.py                       # 3 vs 12 chunks
    .venv/bin/python benchmarks/bench_memory.py --chunks 3 12 24 --json bench_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from _pack import import_pack  # benchmarks/ is sys.path[0] when a script here runs


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler(threading.Thread):
    def __init__(self, period: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.peak = _rss_bytes()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.period)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return max(self.peak, _rss_bytes())


class _Discard(list):
    """The toy denoiser records every guide and noise for tests; a benchmark must not."""

    def append(self, _item) -> None:
        pass


def _lean_toy(frames: int):
    from chunkwise.tests.pure.toys import ToyDenoiser

    den = ToyDenoiser(frames=frames)
    den.guides, den.noises = _Discard(), _Discard()
    return den


def one(kind: str, chunks: int, frames: int, size: int, candidates: int, steps: int) -> dict:
    """One run in this process; returns its figures."""
    import_pack()
    import torch
    from chunkwise.search import LoopSettings, SearchSettings, run_chunks
    from chunkwise.search.protocols import MemorySink
    from chunkwise.search.sinks import DiskSink
    from chunkwise.tests.pure.toys import MeanColourScorer, image

    torch.set_num_threads(1)
    settings = LoopSettings(
        chunks=chunks, seed=1, drop_first_frame=True, colour_anchor=0.5,
        search=SearchSettings(candidates=candidates, k=2, steps=steps),
    )
    img = image(h=size, w=size, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        sink = DiskSink(tmp, "bench") if kind == "streamed" else MemorySink(keep="all")
        # Warm up allocators and kernels on one chunk elsewhere, so the measured run starts steady.
        run_chunks(_lean_toy(frames), MeanColourScorer(), img, LoopSettings(
            chunks=1, seed=9, search=settings.search), sink=DiskSink(tmp, "warm") if kind == "streamed" else None)
        before = _rss_bytes()
        tracemalloc.start()
        sampler = _RssSampler()
        sampler.start()
        t0 = time.perf_counter()
        result = run_chunks(_lean_toy(frames), MeanColourScorer(), img, settings, sink=sink)
        seconds = time.perf_counter() - t0
        peak = sampler.stop()
        _, py_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        disk = sum(p.stat().st_size for p in Path(tmp, "bench").rglob("*") if p.is_file()) if kind == "streamed" else 0
        chunk_mb = frames * size * size * 3 * 4 / 2**20
        return {
            "kind": kind,
            "chunks": chunks,
            "frames_per_chunk": frames,
            "size": size,
            "video_frames": result.report["totals"]["frames"],
            "one_chunk_float_mb": round(chunk_mb, 2),
            "rss_peak_mb": round((peak - before) / 2**20, 2),
            "tracemalloc_peak_mb": round(py_peak / 2**20, 2),
            "seconds": round(seconds, 2),
            "disk_mb": round(disk / 2**20, 2),
        }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chunks", type=int, nargs="+", default=[3, 12])
    p.add_argument("--frames", type=int, default=16, help="frames per chunk")
    p.add_argument("--size", type=int, default=256, help="frame height and width")
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--kinds", nargs="+", default=["streamed", "memory"], choices=["streamed", "memory"])
    p.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc tuning alone")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--one", nargs=2, metavar=("KIND", "CHUNKS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.frames, args.size, args.candidates, args.steps)))
        return 0
    env = dict(os.environ)
    if not args.default_malloc:
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    rows = []
    for kind in args.kinds:
        for n in args.chunks:
            cmd = [sys.executable, __file__, "--one", kind, str(n), "--frames", str(args.frames),
                   "--size", str(args.size), "--candidates", str(args.candidates), "--steps", str(args.steps)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{r['kind']:>8} {r['chunks']:>3} chunks ({r['video_frames']} frames of {r['size']}x{r['size']}): "
                  f"RSS peak +{r['rss_peak_mb']:.1f} MB, Python peak {r['tracemalloc_peak_mb']:.1f} MB, "
                  f"{r['seconds']:.1f}s, disk {r['disk_mb']:.1f} MB (one chunk as float: {r['one_chunk_float_mb']} MB)",
                  flush=True)
    for kind in args.kinds:
        mine = [r for r in rows if r["kind"] == kind]
        if len(mine) >= 2:
            lo, hi = mine[0], mine[-1]
            print(f"{kind}: {lo['chunks']} -> {hi['chunks']} chunks, RSS peak {lo['rss_peak_mb']:.1f} -> "
                  f"{hi['rss_peak_mb']:.1f} MB ({hi['rss_peak_mb'] - lo['rss_peak_mb']:+.1f} MB)")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bench_memory", "default_malloc": args.default_malloc,
                                               "settings": vars(args) | {"json": str(args.json)}, "rows": rows},
                                              indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
