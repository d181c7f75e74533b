"""Tier 1: the run-folder format (search/runs.py): per-chunk records, migration of format 1, verify_run, the
``chunkwise verify`` command; no ComfyUI."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from chunkwise.cli import main as cli_main
from chunkwise.search import ChunkwiseError, durable
from chunkwise.search import sinks as sinks_mod
from chunkwise.search.runs import finished_chunks, verify_run
from chunkwise.search.sinks import DiskSink

FP = {"settings": {"seed": 1}, "image": "abc"}
FORMAT_1 = Path(__file__).parent / "data" / "run_v1"  # written by the format-1 DiskSink (state.json lists chunks)


def frames(seed, t=3, h=6, w=10):
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


def png(x):
    return (x * 255).round() / 255


def written(tmp_path, name, chunks, close=True):
    sink = DiskSink(tmp_path, name)
    sink.open_run(FP, chunks=chunks)
    for i in range(chunks):
        sink.write_chunk(i, frames(i), record={"index": i})
    if close:
        sink.close()
    return sink.folder


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".writer.")}


def test_appending_a_chunk_writes_only_that_chunk_and_resuming_reads_no_frame(tmp_path, monkeypatch):
    sink = DiskSink(tmp_path, "grow")
    sink.open_run(FP, chunks=6)
    for i in range(5):
        sink.write_chunk(i, frames(i), record={"index": i})
    before = snapshot(sink.folder)
    sink.write_chunk(5, frames(5), record={"index": 5})
    after = snapshot(sink.folder)
    # Nothing already on disk changes (state.json included): the new chunk's folder is all that is written.
    assert {p: b for p, b in after.items() if p in before} == before
    assert {p.parts[0] for p in set(after) - set(before)} == {"chunk_0005"}
    sink.close()
    # Resuming reads the records and the last guide: no PNG is decoded and no file is hashed.
    monkeypatch.setattr(sinks_mod, "load_png", lambda *_a: pytest.fail("resume read a frame"))
    monkeypatch.setattr(sinks_mod, "file_sha256", lambda *_a: pytest.fail("resume hashed a file"))
    point = DiskSink(tmp_path, "grow").open_run(FP, chunks=6)
    assert [r["index"] for r in point.records] == list(range(6)) and torch.equal(point.guide, frames(5)[-1:])
    assert point.frames == 18 and finished_chunks(sink.folder) == 6


def test_a_folder_in_format_1_resumes_and_is_migrated_on_open(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(FORMAT_1, out / "run_v1")
    folder = out / "run_v1"
    old_report = (folder / "report.json").read_bytes()
    check = verify_run(folder)
    assert check.ok and check.format == "chunkwise.run/1" and [c.status for c in check.chunks] == ["unverified"] * 2
    assert "checked for presence only" in check.text()

    sink = DiskSink(out, "run_v1")
    point = sink.open_run(FP, chunks=3)
    assert [r["chosen"] for r in point.records] == [1, 0] and point.frames == 6
    assert torch.equal(point.guide, frames(1)[-1:])  # the exact float guide, not the PNG
    state = json.loads((folder / "state.json").read_text())
    assert state["format"] == "chunkwise.run/2" and state["migrated_from"] == "chunkwise.run/1"
    assert state["fingerprint"] == FP and "chunks" not in state
    assert json.loads((folder / "chunk_0001" / "chunk.json").read_text())["record"] == {"chosen": 0, "index": 1}
    assert torch.equal(sink.video(), png(torch.cat([frames(0), frames(1)])))
    # The run goes on in format 2; the new chunk records the migrated guide it was made from.
    sink.write_chunk(2, frames(2), record={"index": 2})
    sink.close()
    record = json.loads((folder / "chunk_0002" / "chunk.json").read_text())
    assert record["after"] == hashlib.sha256((folder / "chunk_0001" / "guide.safetensors").read_bytes()).hexdigest()
    assert len(DiskSink(out, "run_v1").open_run(FP, chunks=3).records) == 3
    check = verify_run(folder)
    assert check.ok and [c.status for c in check.chunks] == ["unverified", "unverified", "ok"]
    assert (folder / "report.json").read_bytes() == old_report


def test_a_migration_cut_short_leaves_the_format_1_folder_as_it_was(tmp_path, monkeypatch):
    shutil.copytree(FORMAT_1, tmp_path / "run_v1")
    state = (tmp_path / "run_v1" / "state.json").read_bytes()
    real = durable.atomic_write_bytes

    def header_fails(path, data):
        if path.name == "state.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(durable, "atomic_write_bytes", header_fails)
    with pytest.raises(ChunkwiseError, match="disk is full"):
        DiskSink(tmp_path, "run_v1").open_run(FP, chunks=2)
    monkeypatch.undo()
    assert (tmp_path / "run_v1" / "state.json").read_bytes() == state
    assert len(DiskSink(tmp_path, "run_v1").open_run(FP, chunks=2).records) == 2
    # A damaged format-1 chunk list is refused with the entry named, as before.
    shutil.copytree(FORMAT_1, tmp_path / "bad_v1")
    bad = json.loads(state)
    del bad["chunks"][1]["start"]
    (tmp_path / "bad_v1" / "state.json").write_text(json.dumps(bad))
    with pytest.raises(ChunkwiseError, match="chunk entry 1 is damaged.*'new run'"):
        DiskSink(tmp_path, "bad_v1").open_run(FP, chunks=2)


def test_a_chunk_left_from_before_its_predecessor_was_generated_again_is_not_part_of_the_run(tmp_path, caplog):
    folder = written(tmp_path, "chain", 3)
    # Chunk 1 lost and generated again with the same result: chunk 2, made from that same guide, still counts.
    shutil.rmtree(folder / "chunk_0001")
    with DiskSink(tmp_path, "chain") as sink:
        assert len(sink.open_run(FP, chunks=3).records) == 1
        sink.write_chunk(1, frames(1), record={"index": 1})
    assert finished_chunks(folder) == 3
    # Generated again differently (say, on other hardware): chunk 2 was made from another guide and does not.
    shutil.rmtree(folder / "chunk_0001")
    with DiskSink(tmp_path, "chain") as sink:
        sink.open_run(FP, chunks=3)
        sink.write_chunk(1, frames(7), record={"index": 1})
    with DiskSink(tmp_path, "chain") as sink:
        assert len(sink.open_run(FP, chunks=3).records) == 2
    assert "chunk_0002 was made from another chunk_0001 than the one on disk" in caplog.text
    check = verify_run(folder)
    assert [c.status for c in check.chunks] == ["ok", "ok", "stale"] and check.intact == 2
    assert "delete chunk_0002 (every chunk folder from chunk 2 on)" in check.fix()


def test_chunks_of_a_run_whose_state_was_deleted_never_join_the_run_started_in_their_place(tmp_path, caplog):
    folder = written(tmp_path, "orphan", 3)
    (folder / "state.json").unlink()
    other = {"settings": {"seed": 2}, "image": "abc"}
    with DiskSink(tmp_path, "orphan") as sink:
        assert sink.open_run(other, chunks=3) is None
        sink.write_chunk(0, frames(9), record={"index": 0})
    assert "chunk folders without a state: they are not part of this run" in caplog.text
    # Chunks 1 and 2 of the old run are still on disk, well-formed, but not part of this one.
    with DiskSink(tmp_path, "orphan") as sink:
        assert len(sink.open_run(other, chunks=3).records) == 1
    assert "chunk_0001 belongs to another run" in caplog.text
    assert [c.status for c in verify_run(folder).chunks] == ["ok", "stale", "stale"]


def test_verify_run_names_damaged_and_missing_chunks_and_how_to_regenerate_them(tmp_path):
    folder = written(tmp_path, "v", 6)
    assert verify_run(folder).ok and "OK" in verify_run(folder).text()
    (folder / "chunk_0002" / "frame_000007.png").write_bytes(b"not a png")
    (folder / "chunk_0003" / "guide.safetensors").unlink()
    shutil.rmtree(folder / "chunk_0004")
    (folder / "chunk_0005" / "chunk.json").write_text("{half")
    check = verify_run(folder)
    assert not check.ok and check.intact == 2
    assert [(c.index, c.status) for c in check.chunks] == [
        (0, "ok"), (1, "ok"), (2, "damaged"), (3, "damaged"), (4, "missing"), (5, "damaged")]
    assert "frame_000007.png differs from when it was written" in check.chunks[2].problems[0]
    assert check.chunks[3].problems == ["guide.safetensors is missing"]
    text = check.text()
    assert "chunk_0002: damaged" in text and "chunk_0004: missing" in text and "chunk_0005: damaged: chunk.json" in text
    assert ("delete chunk_0002 .. chunk_0005 (every chunk folder from chunk 2 on), then queue the run again with the "
            "same settings, run_name 'v' and on_existing 'resume'") in text
    assert "chunk_0001/guide.safetensors" in text  # what the resume continues from
    data = check.to_json()
    assert data["ok"] is False and data["intact"] == 2 and data["chunks"][4]["status"] == "missing"
    json.dumps(data)
    # Done as it says, the run resumes from chunk 2 and the folder checks out again.
    for i in range(2, 6):
        shutil.rmtree(folder / f"chunk_000{i}", ignore_errors=True)
    with DiskSink(tmp_path, "v") as sink:
        assert len(sink.open_run(FP, chunks=6).records) == 2
        for i in range(2, 6):
            sink.write_chunk(i, frames(i), record={"index": i})
    assert verify_run(folder).ok


def test_verify_run_on_a_damaged_header_or_something_else(tmp_path):
    folder = written(tmp_path, "h", 2)
    (folder / "state.json").write_text("{half")
    check = verify_run(folder)
    assert not check.ok and check.header_problem.startswith("cannot read the run state")
    assert [c.status for c in check.chunks] == ["ok", "ok"]  # the chunks themselves are still checked
    assert "on_existing 'new run'" in check.fix()
    with pytest.raises(ChunkwiseError, match="not a run folder"):
        verify_run(tmp_path)
    with pytest.raises(ChunkwiseError, match="does not exist"):
        verify_run(tmp_path / "nowhere")


def test_the_verify_command_prints_the_check_and_exits_non_zero_when_damaged(tmp_path, capsys):
    folder = written(tmp_path, "cli", 2)
    assert cli_main(["verify", str(folder)]) == 0
    assert "2 intact" in capsys.readouterr().out
    (folder / "chunk_0001" / "frame_000004.png").write_bytes(b"x")
    assert cli_main(["verify", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "chunk_0001: damaged" in out and "delete chunk_0001" in out
    assert cli_main(["verify", "--json", str(folder)]) == 1
    assert json.loads(capsys.readouterr().out)["intact"] == 1
    assert cli_main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
