"""Tier 1: interrupted and resumed runs through a run folder (engine + DiskSink); no ComfyUI."""

from __future__ import annotations

import errno
import json
from dataclasses import replace

import pytest
import torch
from chunkwise.search import ChunkwiseError, Hooks, InterruptedRun, LoopSettings, SearchSettings, run_chunks
from chunkwise.search import sinks as sinks_mod
from chunkwise.search.runs import finished_chunks
from chunkwise.search.sinks import DiskSink
from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image


def settings(**kw):
    base = dict(chunks=5, seed=11, search=SearchSettings(3, 2, 6), drop_first_frame=True, colour_anchor=0.5)
    return LoopSettings(**{**base, **kw})


def interrupt_after(chunks_done):
    """Hooks whose interrupt check raises once ``chunks_done`` chunks are finished (mid next chunk)."""
    state = {"done": 0, "checks": 0}

    def on_chunk(record, frames):
        state["done"] += 1

    def check():
        if state["done"] >= chunks_done:
            state["checks"] += 1
            if state["checks"] > 2:  # a few checks into the next chunk: mid-chunk, after model work
                raise InterruptedRun("cancelled")

    return Hooks(check_interrupt=check, on_chunk=on_chunk)


def run_files(folder):
    """The folder's entries but the writer lock (.writer.lock, .writer.json)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".writer."))


def run(tmp_path, name, s, **kw):
    return run_chunks(ToyDenoiser(drift=0.2), MeanColourScorer(), image(seed=4), s, sink=DiskSink(tmp_path, name, **kw))


def test_interrupted_then_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    s = settings()
    full = run(tmp_path, "full", s)
    # Interrupt mid chunk 2 (after chunks 0 and 1 finished).
    den = ToyDenoiser(drift=0.2)
    with pytest.raises(InterruptedRun):
        run_chunks(den, MeanColourScorer(), image(seed=4), s, sink=DiskSink(tmp_path, "cut"), hooks=interrupt_after(2))
    assert len(den.guides) == 3  # chunk 2 had started
    assert finished_chunks(tmp_path / "cut") == 2
    assert run_files(tmp_path / "cut") == ["chunk_0000", "chunk_0001", "state.json"]
    # Queue the same run again: chunks 0-1 are skipped, 2-4 generated from the stored exact guide.
    den2 = ToyDenoiser(drift=0.2)
    resumed = run_chunks(den2, MeanColourScorer(), image(seed=4), s, sink=DiskSink(tmp_path, "cut"))
    assert resumed.restored == 2 and resumed.report["restored_chunks"] == 2
    assert len(den2.guides) == 3
    assert torch.equal(den2.guides[0], full_guides(s)[2])
    assert torch.equal(resumed.video(), full.video())
    assert torch.equal(resumed.last_frame, full.last_frame)
    # The report covers all five chunks with the same choices and scores.
    strip = lambda r: [{k: c[k] for k in ("index", "candidates", "chosen", "chosen_seed", "nfe")} for c in r["chunks"]]  # noqa: E731
    assert strip(resumed.report) == strip(full.report)
    assert resumed.report["totals"]["frames"] == full.report["totals"]["frames"] == 5 + 4 * 4
    assert json.loads((tmp_path / "cut" / "report.json").read_text())["chunks"] == resumed.report["chunks"]
    # And matches the in-memory run to 8-bit precision.
    memory = run_chunks(ToyDenoiser(drift=0.2), MeanColourScorer(), image(seed=4), s)
    assert torch.equal(full.video(), (memory.video() * 255).round() / 255)


def full_guides(s):
    den = ToyDenoiser(drift=0.2)
    run_chunks(den, MeanColourScorer(), image(seed=4), s)
    return den.guides


def test_a_finished_run_queued_again_does_no_model_work_and_can_be_extended(tmp_path):
    s = settings(chunks=3)
    first = run(tmp_path, "ext", s)
    den = ToyDenoiser(drift=0.2)
    again = run_chunks(den, MeanColourScorer(), image(seed=4), s, sink=DiskSink(tmp_path, "ext"))
    assert den.nfe == 0 and again.restored == 3
    assert torch.equal(again.video(), first.video())
    longer = run_chunks(ToyDenoiser(drift=0.2), MeanColourScorer(), image(seed=4), replace(s, chunks=5),
                        sink=DiskSink(tmp_path, "ext"))
    direct = run(tmp_path, "direct", replace(s, chunks=5))
    assert longer.restored == 3 and torch.equal(longer.video(), direct.video())


def test_a_finished_run_queued_again_for_fewer_chunks_keeps_the_whole_run_in_its_report(tmp_path):
    s = settings(chunks=3)
    first = run(tmp_path, "short", s)
    fewer = run(tmp_path, "short", replace(s, chunks=2))
    assert fewer.restored == 2 and len(fewer.report["chunks"]) == 2  # the call returns what it was asked for
    # The run folder still holds three chunks, and its report.json still describes all three.
    folder = tmp_path / "short"
    assert finished_chunks(folder) == 3
    assert json.loads((folder / "report.json").read_text())["chunks"] == first.report["chunks"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"seed": 12}, "settings.seed"),
        ({"colour_anchor": 0.0}, "settings.colour_anchor"),
        ({"search": SearchSettings(4, 2, 6)}, "settings.search.candidates"),
    ],
)
def test_changed_settings_on_an_existing_run_folder_are_refused_never_mixed(tmp_path, change, field):
    s = settings(chunks=2)
    run(tmp_path, "x", s)
    before = sorted(p.name for p in (tmp_path / "x").rglob("*"))
    with pytest.raises(ChunkwiseError, match=field):
        run(tmp_path, "x", replace(s, **change))
    assert sorted(p.name for p in (tmp_path / "x").rglob("*")) == before
    # A different input image is a different run too.
    with pytest.raises(ChunkwiseError, match="image"):
        run_chunks(ToyDenoiser(drift=0.2), MeanColourScorer(), image(seed=5), s, sink=DiskSink(tmp_path, "x"))
    # 'new' keeps the old folder and starts another.
    other = run(tmp_path, "x", replace(s, **change), on_existing="new")
    assert other.sink.folder.name == "x-2" and other.restored == 0


def test_disk_full_mid_run_errors_clearly_and_the_run_resumes_after_space_is_freed(tmp_path, monkeypatch):
    s = settings(chunks=4)
    real = sinks_mod.save_png
    calls = {"n": 0}

    def fills_up(path, array, level=1):
        if path.name == "frame_000009.png":  # first frame of chunk 2
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        real(path, array, level)

    monkeypatch.setattr(sinks_mod, "save_png", fills_up)
    with pytest.raises(ChunkwiseError, match=r"disk is full.*chunks 0\.\.1 are intact"):
        run(tmp_path, "disk", s)
    monkeypatch.undo()
    assert finished_chunks(tmp_path / "disk") == 2
    resumed = run(tmp_path, "disk", s)
    assert resumed.restored == 2
    assert torch.equal(resumed.video(), run(tmp_path, "clean", s).video())


def test_streamed_run_keeps_no_frames_in_memory(tmp_path):
    result = run(tmp_path, "lean", settings(chunks=4))
    sink = result.sink
    assert not any(isinstance(v, torch.Tensor) or (isinstance(v, list) and v and isinstance(v[0], torch.Tensor))
                   for v in vars(sink).values())
    assert sink.overview().shape[0] == 4
    assert torch.equal(sink.last_chunk(), result.video()[-4:])
