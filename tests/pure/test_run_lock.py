"""Tier 1: one writer per run folder (search/runlock.py), with real second processes on this machine; no ComfyUI.

The child processes are plain Python processes importing the pack; every wait on
them is bounded, and each child is killed when its test ends.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from chunkwise.search import ChunkwiseError
from chunkwise.search.runlock import WriterRefused
from chunkwise.search.runs import read_header, scan_chunks, verify_run
from chunkwise.search.sinks import DiskSink

FP = {"settings": {"seed": 1}, "image": "abc"}
WAIT = 120  # seconds: a generous bound for a child to import torch on a busy machine

# A writer: opens OUT/NAME, writes chunks (frames seeded by TAG) and reports each step on stdout.
# HANG: it stops for good in the middle of writing that chunk (its PNGs written, not its guide);
# HOLD: after its chunks it keeps the folder until a line arrives on stdin.
CHILD = r"""
import os, sys, time
import torch
from chunkwise.search import ChunkwiseError
from chunkwise.search import sinks
out, name, chunks, tag, hang, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
real_save_guide = sinks.save_guide
def save_guide(path, guide):
    if path.parent.name.startswith(f".chunk_{hang:04d}.tmp-"):
        print("HANGING", flush=True)
        time.sleep(3600)
    real_save_guide(path, guide)
sinks.save_guide = save_guide
sink = sinks.DiskSink(out, name)
try:
    point = sink.open_run({"settings": {"seed": 1}, "image": "abc"}, chunks=chunks)
except ChunkwiseError as e:
    print("REFUSED", str(e).replace("\n", " "), flush=True)
    sys.exit(3)
print("OPEN", 0 if point is None else len(point.records), flush=True)
for i in range(0 if point is None else len(point.records), chunks):
    f = torch.rand(2, 4, 4, 3, generator=torch.Generator().manual_seed(tag * 100 + i))
    sink.write_chunk(i, f, record={"index": i, "writer": tag})
    print("WROTE", i, flush=True)
if hold:
    print("HOLDING", flush=True)
    sys.stdin.readline()
sink.close()
print("DONE", flush=True)
"""


def frames(tag, i):
    return torch.rand(2, 4, 4, 3, generator=torch.Generator().manual_seed(tag * 100 + i))


class Child:
    """One writer process; ``expect`` waits (bounded) for a line starting with a word."""

    def __init__(self, out: Path, name: str, chunks: int, tag: int, hang: int = -1, hold: bool = False) -> None:
        package_parent = Path(__file__).resolve().parents[2] / ".cache" / "pkgroot"
        env = {**os.environ, "PYTHONPATH": str(package_parent), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(out), name, str(chunks), str(tag), str(hang), "1" if hold else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, word: str) -> str:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {word!r} from pid {self.proc.pid} within {WAIT}s; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"pid {self.proc.pid} ended before {word!r}; saw {self.seen}")
            self.seen.append(line)
            if line.startswith(word):
                return line

    def first(self, *words: str) -> str:
        while True:
            line = self.expect("")
            if line.startswith(words):
                return line

    def finish(self) -> int:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        return self.proc.wait(timeout=WAIT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=WAIT)


@pytest.fixture
def children():
    made: list[Child] = []
    yield made
    for child in made:
        child.kill()


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_second_process_is_refused_while_the_first_writes_and_gets_in_once_the_first_is_killed(tmp_path, children):
    # 1. A writer finishes chunks 0 and 1 and is stopped for good in the middle of chunk 2.
    first = Child(tmp_path, "shared", chunks=4, tag=1, hang=2)
    children.append(first)
    first.expect("HANGING")
    folder = tmp_path / "shared"
    half = folder / f".chunk_0002.tmp-{first.proc.pid}"
    assert half.is_dir()
    before = snapshot(folder)

    # 2. This process, a second writer, is refused: the holder named, nothing of the first's work touched.
    with pytest.raises(WriterRefused) as err:
        DiskSink(tmp_path, "shared").open_run(FP, chunks=4)
    message = str(err.value)
    assert isinstance(err.value, ChunkwiseError)
    assert f"pid {first.proc.pid} on host {socket.gethostname()} since 20" in message
    assert "being written by another process" in message and "'new run'" in message and "queue this one again" in message
    assert snapshot(folder) == before and half.is_dir()
    # Reading is not writing: a check of the folder works meanwhile.
    check = verify_run(folder)
    assert check.ok and check.intact == 2

    # 3. The first writer is killed (SIGKILL): its lock ends with it, and the second gets in.
    first.kill()
    sink = DiskSink(tmp_path, "shared")
    point = sink.open_run(FP, chunks=4)
    assert len(point.records) == 2 and torch.equal(point.guide, frames(1, 1)[-1:])
    assert not half.exists()  # the killed writer's half-written chunk is cleaned
    for i in (2, 3):
        sink.write_chunk(i, frames(2, i), record={"index": i, "writer": 2})
    sink.close()
    entries = scan_chunks(folder, read_header(folder)).entries
    assert [e.record["writer"] for e in entries] == [1, 1, 2, 2]
    assert verify_run(folder).ok
    assert not (folder / ".writer.json").exists()  # closed: nobody holds the folder


def test_two_writers_started_at_once_never_interleave(tmp_path, children):
    one, two = Child(tmp_path, "race", chunks=3, tag=1, hold=True), Child(tmp_path, "race", chunks=3, tag=2, hold=True)
    children += [one, two]
    # Whoever opens first holds the folder until told; so the other, whenever it tries, is refused.
    outcome = {}
    for child in (one, two):
        outcome[child] = child.first("HOLDING", "REFUSED")
    winners = [c for c in (one, two) if outcome[c].startswith("HOLDING")]
    losers = [c for c in (one, two) if outcome[c].startswith("REFUSED")]
    assert len(winners) == 1 and len(losers) == 1, outcome
    winner, loser = winners[0], losers[0]
    assert f"pid {winner.proc.pid} on host" in outcome[loser]
    assert loser.finish() == 3
    assert winner.finish() == 0
    folder = tmp_path / "race"
    tag = 1 if winner is one else 2
    entries = scan_chunks(folder, read_header(folder)).entries
    assert [e.record for e in entries] == [{"index": i, "writer": tag} for i in range(3)]
    reader = DiskSink(tmp_path, "race")
    reader.open_run(FP, chunks=3)
    assert torch.equal(reader.video(), torch.cat([(frames(tag, i) * 255).round() / 255 for i in range(3)]))
    reader.close()
    assert verify_run(folder).ok


def test_a_later_writer_in_the_same_process_takes_over_and_the_earlier_one_stops(tmp_path, caplog):
    # A cancelled run's sink may still be alive (its traceback holds it); queuing the run again must work.
    earlier = DiskSink(tmp_path, "same")
    earlier.open_run(FP, chunks=3)
    earlier.write_chunk(0, frames(1, 0))
    later = DiskSink(tmp_path, "same")
    assert len(later.open_run(FP, chunks=3).records) == 1
    with pytest.raises(WriterRefused, match="opened again by a later run in this process"):
        earlier.write_chunk(1, frames(1, 1))
    later.write_chunk(1, frames(2, 1))
    # The earlier one's report is left to the later writer (logged), and closing it does not free the folder.
    earlier.write_report({"chunks": [{}]})
    assert not (tmp_path / "same" / "report.json").exists() and "report.json not written" in caplog.text
    earlier.close()
    later.write_chunk(2, frames(2, 2))
    later.close()
    # After close the same sink takes the folder again for its report (the engine closes, then reports).
    later.write_report({"chunks": [{}, {}, {}]})
    assert (tmp_path / "same" / "report.json").is_file() and not (tmp_path / "same" / ".writer.json").exists()
    with DiskSink(tmp_path, "same") as again:
        assert len(again.open_run(FP, chunks=3).records) == 3
        assert (tmp_path / "same" / ".writer.json").is_file()
    assert not (tmp_path / "same" / ".writer.json").exists()  # the context manager closed it


def test_a_closed_writer_whose_folder_changed_meanwhile_does_not_write_into_it(tmp_path, caplog):
    first = DiskSink(tmp_path, "moved")
    first.open_run(FP, chunks=2)
    first.write_chunk(0, frames(1, 0))
    first.close()
    other = DiskSink(tmp_path, "moved")
    other.open_run(FP, chunks=2)
    other.write_chunk(1, frames(2, 1))
    other.close()
    with pytest.raises(WriterRefused, match="changed after this run let it go"):
        first.write_chunk(1, frames(1, 1))
    first.write_report({"chunks": [{}]})
    assert "report.json not written" in caplog.text and not (tmp_path / "moved" / "report.json").exists()
