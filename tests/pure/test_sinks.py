"""Tier 1: run folders (search/sinks.py): layout, atomic state, run names, disk errors; no ComfyUI."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch
from chunkwise.search import ChunkwiseError
from chunkwise.search import sinks as sinks_mod
from chunkwise.search.protocols import MemorySink
from chunkwise.search.sinks import DiskSink, check_run_name, run_folder


def frames(seed, t=3, h=6, w=10):
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


FP = {"settings": {"seed": 1}, "image": "abc"}


def test_chunks_are_written_as_png_and_exact_guide_with_state(tmp_path):
    sink = DiskSink(tmp_path, "run")
    assert sink.open_run(FP, chunks=2) is None
    a, b = frames(0), frames(1)
    sink.write_chunk(0, a, record={"index": 0, "chosen": 1}, guide=a[-1:] + 1e-7)
    sink.write_chunk(1, b, record={"index": 1, "chosen": 0}, guide=b[-1:])
    folder = tmp_path / "run"
    assert sorted(p.name for p in (folder / "chunk_0001").iterdir()) == [
        "frame_000003.png", "frame_000004.png", "frame_000005.png", "guide.safetensors"]
    state = json.loads((folder / "state.json").read_text())
    assert state["format"] == "chunkwise.run/1" and state["fingerprint"] == FP
    assert [c["record"]["chosen"] for c in state["chunks"]] == [1, 0]
    # PNG frames are the 8-bit rounding of the floats, read back exactly.
    video = sink.video()
    assert video.shape == (6, 6, 10, 3)
    assert torch.equal(video[:3], (a * 255).round() / 255)
    assert torch.equal(sink.last_chunk(), (b * 255).round() / 255)
    assert sink.overview().shape == (2, 6, 10, 3)
    # No temporary file is left behind.
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
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
        ("..", r"\.\."),
        ("a..b", r"\.\."),
        ("../escape", "/"),
        ("a/b", "/"),
        ("a\\b", r"\\"),
        ("/abs", "/"),
        ("C:evil", "drive"),
        ("bad\x00name", "control"),
        ("tab\tname", "control"),
        (" lead", "space or a dot"),
        ("x" * 200, "at most"),
        (3, "string"),
    ],
)
def test_bad_run_names_are_refused_before_anything_is_written(tmp_path, name, match):
    with pytest.raises(ChunkwiseError, match=match) as err:
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
    # The state write failing (after the chunk folder moved in) is just as safe.
    monkeypatch.undo()
    real = sinks_mod.atomic_write_bytes

    def state_fails(path, data):
        if path.name == "state.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(sinks_mod, "atomic_write_bytes", state_fails)
    with pytest.raises(ChunkwiseError, match="disk is full"):
        sink.write_chunk(2, frames(2), record={"index": 2})
    monkeypatch.undo()
    state = json.loads((tmp_path / "full" / "state.json").read_text())
    assert len(state["chunks"]) == 2
    point = DiskSink(tmp_path, "full").open_run(FP, chunks=3)
    assert len(point.records) == 2  # the unlisted chunk_0002 folder does not count


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
    assert len(json.loads((tmp_path / "r" / "state.json").read_text())["chunks"]) == 1  # untouched
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
    with pytest.raises(ChunkwiseError, match="cannot read the run state"):
        DiskSink(tmp_path, "d").open_run(FP, chunks=1)
    (tmp_path / "d" / "state.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ChunkwiseError, match="not a chunkwise run state"):
        DiskSink(tmp_path, "d").open_run(FP, chunks=1)


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
