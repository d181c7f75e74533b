"""Run-folder bookkeeping against the number of chunks: the cost of appending a chunk, and of resuming.

A toy run (tests/pure/toys.py: the flow-matching toy denoiser and the mean-colour
scorer, 4 candidates) streams N chunks of tiny frames (16x16, 2 frames per chunk by
default) into a run folder (search/sinks.py ``DiskSink``), so the sink's own cost
shows rather than the model's. Each phase runs in a fresh Python process.

Per chunk, medians over the 10 chunks ending at chunk 10, 100, 1000 (``--at``):

- ``write_ms``: ``DiskSink.write_chunk`` as a whole;
- ``encode_ms``: inside it, PNG and safetensors encoding (``save_png``, ``save_guide``);
- ``bookkeeping_ms``: write minus encode: the record and state files, hashes,
  renames and flushes; ``fsync_ms`` is the part spent in ``os.fsync`` (disk-bound,
  noisy on a shared disk), ``rest_ms`` the part that is not.

Resume: a fresh process queues the finished N-chunk run again (nothing left to
generate): ``open_ms`` is ``DiskSink.open_run`` (read the state, check the chunks,
load the last guide), ``resume_ms`` the whole ``run_chunks`` call (open plus the
report). Memory: the peak resident memory of each process (``ru_maxrss``) and its
growth during the phase; with ``--tracemalloc`` also the Python-level peak
(tracemalloc slows every allocation, so the times of such a run are not comparable).

    .venv/bin/python benchmarks/bench_runs.py                         # 1000 chunks, figures at 10, 100, 1000
    .venv/bin/python benchmarks/bench_runs.py --chunks 200 --at 10 100 200 --json bench_runs.json
    .venv/bin/python benchmarks/bench_runs.py --dir /mnt/nas/tmp      # on another disk (fsync costs differ)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _pack import import_pack  # benchmarks/ is sys.path[0] when a script here runs

NAME = "bench"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class _Memory:
    """The process's peak and growth in resident memory over a block; the Python peak with tracemalloc."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace

    def __enter__(self):
        self.before = _rss_mb()
        if self.trace:
            tracemalloc.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.python_peak = tracemalloc.get_traced_memory()[1] / 2**20 if self.trace else None
        if self.trace:
            tracemalloc.stop()
        self.peak = _peak_rss_mb()

    def figures(self) -> dict:
        out = {"rss_peak_mb": self.peak, "rss_growth_mb": self.peak - self.before}
        if self.python_peak is not None:
            out["python_peak_mb"] = self.python_peak
        return out


class _Discard(list):
    """The toy denoiser records every guide and noise for tests; a benchmark must not."""

    def append(self, _item) -> None:
        pass


def _setup(chunks: int, frames: int, size: int):
    import_pack()
    import torch
    from chunkwise.search import LoopSettings, SearchSettings
    from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image

    torch.set_num_threads(1)
    den = ToyDenoiser(frames=frames)
    den.guides, den.noises = _Discard(), _Discard()
    den.calls = _Discard()
    settings = LoopSettings(chunks=chunks, seed=3, search=SearchSettings(candidates=4, k=1, steps=2))
    return den, MeanColourScorer(), image(h=size, w=size, seed=0), settings


class _Timer:
    """Wraps a function; adds the seconds spent in it to ``self.total``."""

    def __init__(self, fn) -> None:
        self.fn, self.total, self.calls = fn, 0.0, 0

    def __call__(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.total += time.perf_counter() - t0
            self.calls += 1


def phase_write(chunks: int, folder: Path, frames: int, size: int, trace: bool) -> dict:
    den, scorer, img, settings = _setup(chunks, frames, size)
    from chunkwise.search import run_chunks, sinks

    encode = [_Timer(sinks.save_png), _Timer(sinks.save_guide)]
    sinks.save_png, sinks.save_guide = encode
    fsync = _Timer(os.fsync)
    os.fsync = fsync
    sink = sinks.DiskSink(folder, NAME)
    rows = []
    inner = sink.write_chunk

    def timed_write(index, frames_, **kw):
        e0, f0 = sum(t.total for t in encode), fsync.total
        t0 = time.perf_counter()
        inner(index, frames_, **kw)
        total = time.perf_counter() - t0
        enc = sum(t.total for t in encode) - e0
        rows.append({"write": total, "encode": enc, "fsync": fsync.total - f0})

    sink.write_chunk = timed_write
    with _Memory(trace) as memory:
        t0 = time.perf_counter()
        run_chunks(den, scorer, img, settings, sink=sink)
        seconds = time.perf_counter() - t0
    state = folder / NAME / "state.json"
    return {"rows": rows, "seconds": seconds, **memory.figures(),
            "state_json_kb": state.stat().st_size / 1024 if state.exists() else 0.0}


def phase_resume(chunks: int, folder: Path, frames: int, size: int, trace: bool) -> dict:
    den, scorer, img, settings = _setup(chunks, frames, size)
    from chunkwise.search import run_chunks
    from chunkwise.search.sinks import DiskSink

    sink = DiskSink(folder, NAME)
    opened = _Timer(sink.open_run)
    sink.open_run = opened
    with _Memory(trace) as memory:
        t0 = time.perf_counter()
        result = run_chunks(den, scorer, img, settings, sink=sink)
        seconds = time.perf_counter() - t0
    assert result.restored == chunks and den.nfe == 0, (result.restored, den.nfe)
    return {"open_ms": opened.total * 1e3, "resume_ms": seconds * 1e3, **memory.figures()}


def _child(phase: str, chunks: int, folder: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, str(chunks), str(folder),
           "--frames", str(args.frames), "--size", str(args.size)] + (["--tracemalloc"] if args.tracemalloc else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _window(rows: list, at: int, key: str) -> float:
    part = rows[max(0, at - 10):at]
    return statistics.median(r[key] for r in part) * 1e3


def _memory(fig: dict) -> str:
    text = f"peak RSS {fig['rss_peak_mb']:.0f} MB (+{fig['rss_growth_mb']:.1f} MB during the phase)"
    return text + (f", Python peak {fig['python_peak_mb']:.2f} MB" if "python_peak_mb" in fig else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chunks", type=int, default=1000, help="chunks in the run (default 1000)")
    p.add_argument("--at", type=int, nargs="+", default=[10, 100, 1000], help="report per-chunk cost at these chunks")
    p.add_argument("--frames", type=int, default=2, help="frames per chunk (default 2)")
    p.add_argument("--size", type=int, default=16, help="frame height and width (default 16)")
    p.add_argument("--dir", type=Path, default=None, help="where the run folder goes (default: a temporary folder)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also trace the Python-level peak (slows every allocation: times not comparable)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--phase", nargs=3, metavar=("PHASE", "CHUNKS", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        phase, n, folder = args.phase[0], int(args.phase[1]), Path(args.phase[2])
        fn = phase_write if phase == "write" else phase_resume
        print(json.dumps(fn(n, folder, args.frames, args.size, args.tracemalloc)))
        return 0
    at = [a for a in args.at if a <= args.chunks]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        write = _child("write", args.chunks, Path(tmp), args)
        resume = _child("resume", args.chunks, Path(tmp), args)
        disk = sum(f.stat().st_size for f in Path(tmp, NAME).rglob("*") if f.is_file())
    rows = write.pop("rows")
    for r in rows:
        r["bookkeeping"] = r["write"] - r["encode"]
        r["rest"] = r["bookkeeping"] - r["fsync"]
    keys = ("write", "encode", "bookkeeping", "fsync", "rest")
    per_chunk = [{"chunk": a, **{k + "_ms": round(_window(rows, a, k), 3) for k in keys}} for a in at]
    print(f"run folder: {args.chunks} chunks of {args.frames} frames at {args.size}x{args.size}, "
          f"{write['seconds']:.1f}s in all, {disk / 2**20:.1f} MB on disk, state.json {write['state_json_kb']:.1f} kB")
    print("  chunk   write ms  encode ms  bookkeeping ms  = fsync ms + rest ms   (medians of 10 chunks)")
    for r in per_chunk:
        print(f"  {r['chunk']:>5}  {r['write_ms']:>9.2f}  {r['encode_ms']:>9.2f}  {r['bookkeeping_ms']:>14.2f}"
              f"  {r['fsync_ms']:>10.2f}  {r['rest_ms']:>9.2f}")
    print(f"  write run: {_memory(write)}")
    print(f"resume of the {args.chunks}-chunk folder: open_run {resume['open_ms']:.0f} ms, whole run_chunks "
          f"{resume['resume_ms']:.0f} ms; {_memory(resume)}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bench_runs", "chunks": args.chunks, "frames": args.frames,
                                         "size": args.size, "per_chunk": per_chunk,
                                         "write": {k: round(v, 3) for k, v in write.items()},
                                         "resume": {k: round(v, 3) for k, v in resume.items()},
                                         "disk_mb": round(disk / 2**20, 2)}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
