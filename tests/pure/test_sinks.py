"""Tier 1: run folders (search/sinks.py): layout, atomic chunk commits, run names, disk errors; no ComfyUI."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil

import pytest
import torch
from chunkwise.search import ChunkwiseError
from chunkwise.search import sinks as sinks_mod
from chunkwise.search.protocols import MemorySink
from chunkwise.search.runs import read_header, scan_chunks
from chunkwise.search.sinks import DiskSink, check_run_name, run_folder


def frames(seed, t=3, h=6, w=10):
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


FP = {"settings": {"seed": 1}, "image": "abc"}


def finished(folder):
    """How many chunks the run folder holds, as a resume would find them."""
    return len(scan_chunks(folder, read_header(folder)).entries)


def temporary(folder):
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def run_files(folder):
    """The folder's entries but the writer lock (.writer.lock, .writer.json: see test_run_lock.py)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".writer."))


def test_chunks_are_written_as_png_and_exact_guide_with_state(tmp_path):
    sink = DiskSink(tmp_path, "run")
    assert sink.open_run(FP, chunks=2) is None
    a, b = frames(0), frames(1)
    sink.write_chunk(0, a, record={"index": 0, "chosen": 1}, guide=a[-1:] + 1e-7)
    sink.write_chunk(1, b, record={"index": 1, "chosen": 0}, guide=b[-1:])
    folder = tmp_path / "run"
    assert sorted(p.name for p in (folder / "chunk_0001").iterdir()) == [
        "chunk.json", "frame_000003.png", "frame_000004.png", "frame_000005.png", "guide.safetensors"]
    state = json.loads((folder / "state.json").read_text())
    assert state["format"] == "chunkwise.run/2" and state["fingerprint"] == FP and "chunks" not in state
    records = [json.loads((folder / f"chunk_000{i}" / "chunk.json").read_text()) for i in (0, 1)]
    assert [r["record"]["chosen"] for r in records] == [1, 0]
    assert [(r["index"], r["start"], r["frames"]) for r in records] == [(0, 0, 3), (1, 3, 3)]
    # Each record holds the hash of each of its files and of the guide its chunk was made from.
    assert records[1]["files"]["frame_000004.png"] == hashlib.sha256(
        (folder / "chunk_0001" / "frame_000004.png").read_bytes()).hexdigest()
    assert records[1]["after"] == records[0]["files"]["guide.safetensors"] and records[0]["after"] is None
    # PNG frames are the 8-bit rounding of the floats, read back exactly.
    video = sink.video()
    assert video.shape == (6, 6, 10, 3)
    assert torch.equal(video[:3], (a * 255).round() / 255)
    assert torch.equal(sink.last_chunk(), (b * 255).round() / 255)
    assert sink.overview().shape == (2, 6, 10, 3)
    # No temporary file is left behind.
    assert temporary(folder) == []
    # Reopening hands back the exact float guide, not the PNG.
    again = DiskSink(tmp_path, "run")
    point = again.open_run(FP, chunks=5)
    assert torch.equal(point.guide, b[-1:]) and point.frames == 6
    assert [r["chosen"] for r in point.records] == [1, 0]
    # Asking for fewer chunks than are finished resumes from that chunk's guide.
    fewer = DiskSink(tmp_path, "run").open_run(FP, chunks=1)
    assert torch.equal(fewer.guide, a[-1:] + 1e-7) and len(fewer.records) == 1


@pytest.mark.parametrize(
    "name, match",
    [
        ("", "empty"),
        # The reason, not the echoed name: every message also repeats the name it got.
        (".", "must not be or contain '..'"),
        ("..", "must not be or contain '..'"),
        ("a..b", "must not be or contain '..'"),
        ("../escape", "one folder name without '/'"),
        ("a/b", "one folder name without '/'"),
        ("a\\b", "one folder name without '\\\\'"),
        ("/abs", "one folder name without '/'"),
        ("C:evil", "must not be an absolute path or name a drive"),
        ("bad\x00name", "control"),
        ("tab\tname", "control"),
        (" lead", "space or a dot"),
        ("x" * 200, "at most"),
        (3, "string"),
    ],
)
def test_bad_run_names_are_refused_before_anything_is_written(tmp_path, name, match):
    with pytest.raises(ChunkwiseError, match=re.escape(match)) as err:
        DiskSink(tmp_path, name)
    if isinstance(name, str) and 0 < len(name) < 100:
        assert repr(name) in str(err.value)  # the message names the value received
    assert list(tmp_path.iterdir()) == []


def test_good_run_names_stay_directly_inside_the_output_folder(tmp_path):
    for name in ("beach walk", "run-01", "café_2", "v1.2"):
        assert check_run_name(name) == name
        assert run_folder(tmp_path, name).parent == tmp_path.resolve()


def test_a_symlinked_run_folder_that_points_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "link")
    with pytest.raises(ChunkwiseError, match="not directly inside"):
        DiskSink(out, "link")


def test_disk_full_gives_a_clear_error_and_earlier_chunks_stay_intact(tmp_path, monkeypatch):
    sink = DiskSink(tmp_path, "full")
    sink.open_run(FP, chunks=3)
    sink.write_chunk(0, frames(0), record={"index": 0})
    sink.write_chunk(1, frames(1), record={"index": 1})
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sinks_mod, "save_png", no_space)
    with pytest.raises(ChunkwiseError, match=r"disk is full.*chunks 0\.\.1 are intact") as err:
        sink.write_chunk(2, frames(2), record={"index": 2})
    assert "queue the same run again" in str(err.value)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written, nothing lost
    # The chunk's record failing to write (the last file before the rename) is just as safe.
    monkeypatch.undo()
    monkeypatch.setattr(sinks_mod, "json_bytes", no_space)
    with pytest.raises(ChunkwiseError, match=r"disk is full.*chunks 0\.\.1 are intact"):
        sink.write_chunk(2, frames(2), record={"index": 2})
    monkeypatch.undo()
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    point = DiskSink(tmp_path, "full").open_run(FP, chunks=3)
    assert len(point.records) == 2 and finished(tmp_path / "full") == 2
    # Once the rename went through the chunk is finished, even if flushing the run folder after it fails.
    sink = DiskSink(tmp_path, "full")
    sink.open_run(FP, chunks=3)
    real = sinks_mod.fsync_path
    monkeypatch.setattr(sinks_mod, "fsync_path", lambda p: no_space() if p == sink.folder else real(p))
    with pytest.raises(ChunkwiseError, match=r"disk is full.*chunks 0\.\.1 are intact"):
        sink.write_chunk(2, frames(2), record={"index": 2})
    monkeypatch.undo()
    assert len(DiskSink(tmp_path, "full").open_run(FP, chunks=3).records) == 3


def test_a_non_os_write_error_removes_the_temporary_folder_and_errors_clearly(tmp_path, monkeypatch):
    import safetensors
    import safetensors.torch

    sink = DiskSink(tmp_path, "guide")
    sink.open_run(FP, chunks=3)
    sink.write_chunk(0, frames(0), record={"index": 0})
    sink.write_chunk(1, frames(1), record={"index": 1})
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    cause = safetensors.SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    )

    def fails(*_a, **_k):
        raise cause

    monkeypatch.setattr(safetensors.torch, "save_file", fails)
    with pytest.raises(ChunkwiseError, match=r"could not write chunk 2 .*disk is full.*chunks 0\.\.1 are intact") as err:
        sink.write_chunk(2, frames(2), record={"index": 2})
    message = str(err.value)
    assert str(sink.folder) in message and "queue the same run again" in message and "SafetensorError" in message
    assert err.value.__cause__ is cause  # the original error stays chained
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert temporary(sink.folder) == []  # no .chunk_0002.tmp-PID left
    # Any other failure while writing is just as clean, with its own reason named.
    monkeypatch.setattr(sinks_mod, "save_guide", lambda *_a: (_ for _ in ()).throw(RuntimeError("device lost")))
    with pytest.raises(ChunkwiseError, match=r"RuntimeError: device lost.*chunks 0\.\.1 are intact"):
        sink.write_chunk(2, frames(2), record={"index": 2})
    assert temporary(sink.folder) == []
    monkeypatch.undo()
    sink.write_chunk(2, frames(2), record={"index": 2})  # the same sink goes on once the cause is gone
    assert finished(sink.folder) == 3


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name the flushed files")
def test_chunk_files_their_folder_and_the_run_folder_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    sink = DiskSink(tmp_path, "sync")
    sink.open_run(FP, chunks=1)
    folder = sink.folder
    real = os.fsync
    flushed = []

    def spy(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(sinks_mod.os, "fsync", spy)
    sink.write_chunk(0, frames(0, t=2))
    tmp = str(folder / f".chunk_0000.tmp-{os.getpid()}")
    names = [f"{tmp}/{n}" for n in ("chunk.json", "frame_000000.png", "frame_000001.png", "guide.safetensors")]
    # Every file of the chunk, its record included, then its folder, while still under the temporary name ...
    assert sorted(flushed[:4]) == names and flushed[4] == tmp
    # ... then the run folder (the rename, which finishes the chunk); nothing that lists the chunks is rewritten.
    assert flushed[5:] == [str(folder)]
    flushed.clear()
    sink.write_report({"chunks": []})
    assert flushed == [str(folder / f".report.json.tmp-{os.getpid()}"), str(folder)]


def test_leftovers_of_a_killed_process_are_removed_when_the_run_is_opened(tmp_path):
    sink = DiskSink(tmp_path, "killed")
    sink.open_run(FP, chunks=3)
    sink.write_chunk(0, frames(0))
    folder = sink.folder
    # What a process killed mid-write (another pid) leaves: a half-filled chunk folder and temporary files.
    (folder / ".chunk_0001.tmp-99999").mkdir()
    (folder / ".chunk_0001.tmp-99999" / "frame_000003.png").write_bytes(b"half")
    (folder / ".state.json.tmp-99999").write_text("{half")
    (folder / ".report.json.tmp-99998").write_text("{half")
    (folder / ".writer.json.tmp-99997").write_text("{half")
    (folder / "notes.txt").write_text("mine")  # the user's own files stay
    point = DiskSink(tmp_path, "killed").open_run(FP, chunks=3)
    assert len(point.records) == 1
    assert run_files(folder) == ["chunk_0000", "notes.txt", "state.json"]
    # A run folder without a state yet (killed before its first chunk) is cleaned when it starts too.
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / ".chunk_0000.tmp-4242").mkdir()
    assert DiskSink(tmp_path, "early").open_run(FP, chunks=1) is None
    assert run_files(tmp_path / "early") == ["state.json"]


def test_a_shorter_report_never_replaces_the_report_of_a_longer_run(tmp_path):
    sink = DiskSink(tmp_path, "rep")
    sink.open_run(FP, chunks=3)
    for i in range(3):
        sink.write_chunk(i, frames(i), record={"index": i})
    long = {"format": "chunkwise.report/1", "chunks": [{"index": i} for i in range(3)]}
    sink.write_report(long)
    # Queued again for fewer chunks: the run folder still holds three, and so does its report.
    again = DiskSink(tmp_path, "rep")
    again.open_run(FP, chunks=2)
    again.write_report({"format": "chunkwise.report/1", "chunks": [{"index": i} for i in range(2)]})
    assert json.loads((sink.folder / "report.json").read_text()) == long
    # Extended to more chunks, the longer report replaces it.
    longer = {"format": "chunkwise.report/1", "chunks": [{"index": i} for i in range(4)]}
    more = DiskSink(tmp_path, "rep")
    more.open_run(FP, chunks=4)
    more.write_chunk(3, frames(3), record={"index": 3})
    more.write_report(longer)
    assert json.loads((sink.folder / "report.json").read_text()) == longer


def test_changed_settings_error_lists_the_differences_and_new_starts_a_fresh_folder(tmp_path):
    sink = DiskSink(tmp_path, "r")
    sink.open_run(FP, chunks=2)
    sink.write_chunk(0, frames(0))
    other = {"settings": {"seed": 2}, "image": "abc"}
    with pytest.raises(ChunkwiseError, match=r"settings.seed: 1 -> 2.*on_existing") as err:
        DiskSink(tmp_path, "r").open_run(other, chunks=2)
    assert "would mix" in str(err.value)
    fresh = DiskSink(tmp_path, "r", on_existing="new")
    assert fresh.open_run(other, chunks=2) is None
    assert fresh.folder == (tmp_path / "r-2").resolve()
    assert finished(tmp_path / "r") == 1  # untouched
    with pytest.raises(ChunkwiseError, match="already holds a run with 1 finished"):
        DiskSink(tmp_path, "r", on_existing="error").open_run(FP, chunks=2)
    wiped = DiskSink(tmp_path, "r", on_existing="overwrite")
    assert wiped.open_run(other, chunks=2) is None
    assert not (tmp_path / "r" / "chunk_0000").exists()
    with pytest.raises(ChunkwiseError, match="on_existing must be one of"):
        DiskSink(tmp_path, "r", on_existing="merge")


def test_a_damaged_state_file_is_refused_not_overwritten(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "state.json").write_text("{not json")
    with pytest.raises(ChunkwiseError, match="cannot read the run state") as err:
        DiskSink(tmp_path, "d").open_run(FP, chunks=1)
    # The message names what the ChunkLoop node offers (its on_existing combo), not internal values.
    assert "set on_existing to 'new run'" in str(err.value) and "run_name" in str(err.value)
    (tmp_path / "d" / "state.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ChunkwiseError, match="not a chunkwise run state.*'new run'"):
        DiskSink(tmp_path, "d").open_run(FP, chunks=1)
    (tmp_path / "d" / "state.json").write_text("{not json")
    with pytest.raises(ChunkwiseError, match="cannot read the run state"):
        DiskSink(tmp_path, "d", on_existing="error").open_run(FP, chunks=1)
    assert (tmp_path / "d" / "state.json").read_text() == "{not json"
    # The right format with a broken chunk record: refused with the chunk named, not a KeyError.
    good = DiskSink(tmp_path, "g")
    good.open_run(FP, chunks=3)
    for i in range(3):
        good.write_chunk(i, frames(i))
    path = tmp_path / "g" / "chunk_0001" / "chunk.json"
    record = json.loads(path.read_text())
    del record["start"]
    path.write_text(json.dumps(record))
    with pytest.raises(ChunkwiseError, match=r"record of chunk 1 .*chunk_0001.* is damaged: start None, expected 3"
                                             r".*chunks 0\.\.0 are intact: delete chunk_0001 and every later.*'new run'"):
        DiskSink(tmp_path, "g").open_run(FP, chunks=3)
    path.write_text("{half")
    with pytest.raises(ChunkwiseError, match="record of chunk 1 .* is damaged: unreadable"):
        DiskSink(tmp_path, "g").open_run(FP, chunks=3)
    # Cleared the way the message says: the damaged chunk and the later ones deleted, the run resumes before them.
    shutil.rmtree(tmp_path / "g" / "chunk_0001")
    shutil.rmtree(tmp_path / "g" / "chunk_0002")
    point = DiskSink(tmp_path, "g").open_run(FP, chunks=3)
    assert len(point.records) == 1 and torch.equal(point.guide, frames(0)[-1:])


def test_a_damaged_state_file_is_cleared_the_way_its_message_says(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "state.json").write_text("{not json")
    # 'new run' (on_existing='new') never reads the old state: it leaves it alone and starts d-2.
    fresh = DiskSink(tmp_path, "d", on_existing="new")
    assert fresh.open_run(FP, chunks=1) is None
    assert fresh.folder == (tmp_path / "d-2").resolve()
    fresh.write_chunk(0, frames(0))
    assert (tmp_path / "d" / "state.json").read_text() == "{not json"
    # 'overwrite' starts again in the same folder without reading the damaged file either.
    wiped = DiskSink(tmp_path, "d", on_existing="overwrite")
    assert wiped.open_run(FP, chunks=1) is None
    wiped.write_chunk(0, frames(0))
    assert json.loads((tmp_path / "d" / "state.json").read_text())["fingerprint"] == FP


@pytest.mark.parametrize("length", [118, 119, 120])
def test_new_run_with_a_long_name_shortens_the_name_not_the_suffix(tmp_path, length):
    name = "r" * length
    DiskSink(tmp_path, name).open_run(FP, chunks=1)
    folders = []
    for _ in range(11):  # up to '-12': the suffix grows to three characters
        sink = DiskSink(tmp_path, name, on_existing="new")
        assert sink.open_run(FP, chunks=1) is None
        folders.append(sink.folder.name)
    assert len(set(folders)) == 11
    for n, folder in enumerate(folders, start=2):
        assert folder.endswith(f"-{n}") and len(folder) <= 120 and folder.startswith("r" * 100)


def test_new_run_gives_up_with_a_clear_error_when_every_numbered_folder_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks_mod, "MAX_NEW_RUNS", 3)
    DiskSink(tmp_path, "busy").open_run(FP, chunks=1)
    for n in (2, 3, 4):
        (tmp_path / f"busy-{n}").mkdir()
    with pytest.raises(ChunkwiseError, match=r"busy-2 \.\. busy-4 .*already exist.*run_name") as err:
        DiskSink(tmp_path, "busy", on_existing="new").open_run(FP, chunks=1)
    assert "'busy'" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "busy-2", "busy-3", "busy-4"]


def test_a_missing_chunk_file_resumes_from_the_chunk_before_it(tmp_path):
    sink = DiskSink(tmp_path, "m")
    sink.open_run(FP, chunks=3)
    for i in range(3):
        sink.write_chunk(i, frames(i))
    (tmp_path / "m" / "chunk_0001" / "frame_000004.png").unlink()
    point = DiskSink(tmp_path, "m").open_run(FP, chunks=3)
    assert len(point.records) == 1 and torch.equal(point.guide, frames(0)[-1:])


def test_memory_sink_keep_last_holds_one_chunk_and_an_overview():
    sink = MemorySink(keep="last", overview_size=4)
    for i in range(5):
        sink.write_chunk(i, frames(i), record={"index": i})
    assert len(sink.chunks) == 1 and torch.equal(sink.video(), frames(4))
    assert sink.overview().shape == (5, 2, 4, 3)
    with pytest.raises(ValueError, match="out of order"):
        sink.write_chunk(7, frames(0))
