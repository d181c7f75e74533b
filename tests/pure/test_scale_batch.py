"""Tier 1: ``chunkwise batch`` over 2 Ray workers with tiny SVD jobs: a failed job resumes, a second run redoes nothing."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest
import torch

pytest.importorskip("ray", reason="ray is not installed (pip install \"chunkwise[ray]\")")
pytest.importorskip("diffusers")

from chunkwise.cli import main  # noqa: E402
from chunkwise.search.runs import finished_chunks  # noqa: E402
from chunkwise.search.sinks import DiskSink  # noqa: E402
from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402

SIZE = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    tiny.tiny_svd().save_pretrained(root / "svd")
    tiny.guide_image(SIZE, SIZE, seed=2)[1].save(root / "first.png")
    return root


def job(run, chunks, seed=3):
    settings = {"chunks": chunks, "candidates": 2, "k": 1, "steps": 3, "seed": seed, "width": SIZE, "height": SIZE,
                "device": "cpu", "preview_mode": "truncated"}
    return {"run": run, "model": "svd", "image": "first.png", "settings": settings}


def write_jobs(files, name, jobs):
    path = files / name
    path.write_text("\n".join(json.dumps(j) for j in jobs) + "\n# a comment line\n", encoding="utf-8")
    return path


def video(folder):
    sink = DiskSink(folder.parent, folder.name)
    sink.open_run(json.loads((folder / "state.json").read_text())["fingerprint"], 10**6)
    sink.close()
    return sink.video()


def kill_writer_after(folder, chunks, seconds=300):
    """SIGKILL the process writing ``folder`` (the worker running its job) once it holds ``chunks`` chunks."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (folder / "state.json").exists() and finished_chunks(folder) >= chunks:
            pid = json.loads((folder / ".writer.json").read_text())["pid"]
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    raise AssertionError(f"{folder} never held {chunks} chunks")


def test_a_batch_of_three_with_one_failing_once_then_a_second_run_redoes_nothing(ray_cluster, files, tmp_path,
                                                                                 capsys, monkeypatch):
    jobs = write_jobs(files, "jobs.jsonl", [job("a", 5), job("b", 5), job("c", 2, seed=9)])
    out = tmp_path / "out"
    argv = ["batch", str(jobs), "--output", str(out), "--workers", "2"]
    result = {}
    runner = threading.Thread(target=lambda: result.update(rc=main(argv)))
    runner.start()
    try:
        killed = kill_writer_after(out / "b", 1)
    finally:
        runner.join(timeout=600)
    assert result["rc"] == 0
    shown = capsys.readouterr().out
    # b failed once and ran again (its "retry 1" state lasts only until a worker is free, so the table may
    # skip it; the second attempt is always shown).
    assert "attempt 2" in shown
    assert "job" in shown and "chunk" in shown and "state" in shown and "5 of 5" in shown
    final = shown.strip().split("\n\n")[-1].splitlines()
    assert [line.split()[0] for line in final[1:]] == ["a", "b", "c"]
    assert all(line.split()[-1] == "done" for line in final[1:])

    # b resumed from its finished chunks and equals a (the same settings), bit for bit.
    report_b = json.loads((out / "b" / "report.json").read_text())
    assert 1 <= report_b["restored_chunks"] < 5 and killed
    assert json.loads((out / "a" / "report.json").read_text())["restored_chunks"] == 0
    assert torch.equal(video(out / "a"), video(out / "b"))
    assert finished_chunks(out / "c") == 2

    # A second run over the same file redoes nothing: no worker is even started.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if ".writer." not in p.name}
    from chunkwise.scale import workers

    def no_pool(*_a, **_k):
        raise AssertionError("a worker pool was started for finished jobs")

    monkeypatch.setattr(workers, "WorkerPool", no_pool)
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("done (earlier)") == 3 and "5 of 5" in again and "2 of 2" in again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if ".writer." not in p.name} == stamps


def test_a_second_run_finishes_what_is_left(ray_cluster, files, tmp_path, capsys):
    out = tmp_path / "out"
    short = write_jobs(files, "short.jsonl", [job("x", 2)])
    assert main(["batch", str(short), "--output", str(out), "--workers", "1", "-q"]) == 0
    # The same job asked for more chunks, next to a new one: x continues from chunk 2, y starts.
    longer = write_jobs(files, "longer.jsonl", [job("x", 3), job("y", 1)])
    capsys.readouterr()
    assert main(["batch", str(longer), "--output", str(out), "--workers", "2", "-q"]) == 0
    shown = capsys.readouterr().out
    assert "3 of 3" in shown and "1 of 1" in shown
    assert json.loads((out / "x" / "report.json").read_text())["restored_chunks"] == 2


def test_bad_job_lines_and_workflow_jobs_are_clear_errors(files, tmp_path, capsys, monkeypatch):
    out = ["--output", str(tmp_path / "out")]
    cases = [
        ([{"run": "a", "model": "svd"}], "job line 1: no 'image'"),
        ([job("a", 1), job("a", 2)], "job lines 1 and 2 both write run 'a'"),
        ([dict(job("a", 1), settings={"chunks": 0})], "job line 1: chunks must be at least 1, got 0"),
        ([dict(job("a", 1), settings={"candidates": "many"})], "job line 1: argument --candidates/-m"),
        ([dict(job("a", 1), settings={"workers": 2})], "settings cannot set 'workers'"),
        ([{"run": "../up", "model": "svd", "image": "first.png"}], "job line 1: run name must"),
    ]
    for jobs, message in cases:
        assert main(["batch", str(write_jobs(files, "bad.jsonl", jobs)), *out]) == 2
        assert message in capsys.readouterr().err
    (files / "notjson.jsonl").write_text("{nope\n")
    assert main(["batch", str(files / "notjson.jsonl"), *out]) == 2
    assert "job line 1" in capsys.readouterr().err

    # A workflow job needs chunkwise.scale.fleet; without it (a partial install) the job fails saying so.
    import chunkwise.scale

    monkeypatch.setitem(sys.modules, "chunkwise.scale.fleet", None)
    monkeypatch.delattr(chunkwise.scale, "fleet", raising=False)
    flow = write_jobs(files, "flow.jsonl", [{"run": "w", "workflow": "wan.json", "images": {"start": "first.png"}}])
    assert main(["batch", str(flow), *out]) == 1
    shown = capsys.readouterr().out
    assert "w" in shown and "failed: workflow job 'w'" in shown and "is not available" in shown
