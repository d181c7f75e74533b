"""Tier 1: a chunk's candidates over 2 Ray workers give the single-process run, bit for bit, faults included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

pytest.importorskip("ray", reason="ray is not installed (pip install \"chunkwise[ray]\")")

from chunkwise.search import LoopSettings, SearchSettings, run_chunks  # noqa: E402
from chunkwise.search.noise import chunk_seed  # noqa: E402
from chunkwise.search.sinks import DiskSink  # noqa: E402
from chunkwise.tests.pure.scale_parts import DyingParts, ToyParts  # noqa: E402
from chunkwise.tests.pure.toys import image  # noqa: E402


@pytest.fixture(scope="module")
def pool(ray_cluster):
    from chunkwise.scale.workers import WorkerPool

    pool = WorkerPool(ToyParts(), workers=2)
    yield pool
    pool.close()


def on_workers(pool, settings, **kw):
    from chunkwise.scale.workers import RayExecutor

    return run_chunks(None, None, image(seed=4), settings, executor=RayExecutor(pool), **kw)


def on_one_process(settings, **kw):
    denoiser, scorer = ToyParts()()
    return run_chunks(denoiser, scorer, image(seed=4), settings, **kw)


def same_run(a, b) -> None:
    assert torch.equal(a.video(), b.video())
    assert torch.equal(a.last_frame, b.last_frame)
    for x, y in zip(a.report["chunks"], b.report["chunks"], strict=True):
        assert (x["chosen"], x["chosen_seed"], x["candidates"], x["nfe"]) == (
            y["chosen"], y["chosen_seed"], y["candidates"], y["nfe"])


SEARCHES = {
    "short": SearchSettings(4, 2, 6),
    "truncated, the winner resumes": SearchSettings(4, 2, 6, preview_mode="truncated"),
    "successive halving": SearchSettings(5, 4, 8, preview_mode="truncated", halving_k=1),
    "early accept": SearchSettings(5, 2, 6, preview_mode="truncated", accept_score=-0.06),
    "no search": SearchSettings(1, 2, 6),
}


@pytest.mark.parametrize("name", list(SEARCHES))
def test_two_workers_make_the_single_process_video_bit_for_bit(pool, name):
    settings = LoopSettings(chunks=3, seed=11, search=SEARCHES[name], colour_anchor=0.5)
    one, two = on_one_process(settings), on_workers(pool, settings)
    if name == "early accept":  # the two workers preview ahead of the stop; the chosen ones are the same
        assert torch.equal(one.video(), two.video())
        assert [c["chosen"] for c in one.report["chunks"]] == [c["chosen"] for c in two.report["chunks"]]
        return
    same_run(one, two)
    winners = [c["chosen"] for c in two.report["chunks"]]
    assert name == "no search" or len(set(winners)) > 1 or winners[0] != 0  # the search did choose


def test_both_workers_preview_and_only_the_winners_worker_finishes(pool, monkeypatch):
    from chunkwise.scale import workers

    calls = []
    real = workers.RayChunk.submit

    def spy(self, w, group, seed_of, window):
        calls.append((self.index, w, tuple(group)))
        return real(self, w, group, seed_of, window)

    monkeypatch.setattr(workers.RayChunk, "submit", spy)
    on_workers(pool, LoopSettings(chunks=2, seed=3, search=SearchSettings(4, 2, 6, preview_mode="truncated")))
    assert calls == [(i, j % 2, (j,)) for i in range(2) for j in range(4)]  # round-robin, one candidate each


def pids_when_ready(pool, seconds=120):
    """The workers' process ids once every one answers (a restarted worker reloads its parts first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return pool.pids()
        except pool.lost_errors:
            assert time.monotonic() < deadline, "a killed worker was not made again"
            time.sleep(0.5)


@pytest.mark.parametrize("when", ["preview", "finish"])
def test_a_worker_killed_mid_chunk_leaves_the_video_unchanged(ray_cluster, tmp_path, when):
    from chunkwise.scale.workers import RayExecutor, WorkerPool

    settings = LoopSettings(chunks=3, seed=11, search=SearchSettings(4, 2, 6, preview_mode="truncated"),
                            colour_anchor=0.5)
    marker = tmp_path / "killed"
    parts = DyingParts(str(marker), when, seed=chunk_seed(11, 1) + 2, steps=6)
    dying = WorkerPool(parts, workers=2)
    try:
        pids = set(dying.pids())
        cut = run_chunks(None, None, image(seed=4), settings, executor=RayExecutor(dying))
        assert int(marker.read_text()) in pids  # a worker's process was killed during chunk 1
        assert set(pids_when_ready(dying)) != pids  # and Ray made it again
    finally:
        dying.close()
    whole = on_one_process(settings)
    assert torch.equal(cut.video(), whole.video())
    assert [c["chosen"] for c in cut.report["chunks"]] == [c["chosen"] for c in whole.report["chunks"]]
    assert [c["candidates"] for c in cut.report["chunks"]] == [c["candidates"] for c in whole.report["chunks"]]


def test_a_run_folder_started_on_workers_resumes_on_one_process(pool, tmp_path):
    settings = LoopSettings(chunks=4, seed=5, search=SearchSettings(3, 2, 6, preview_mode="truncated"))
    on_workers(pool, LoopSettings(chunks=2, seed=5, search=settings.search), sink=DiskSink(tmp_path, "run"))
    resumed = on_one_process(settings, sink=DiskSink(tmp_path, "run"))
    assert resumed.restored == 2
    assert torch.equal(resumed.video(), on_one_process(settings, sink=DiskSink(tmp_path, "whole")).video())


# ---------------------------------------------------------------------------- the command line, tiny SVD

SIZE = 16


@pytest.fixture(scope="module")
def svd(tmp_path_factory):
    pytest.importorskip("diffusers")
    from chunkwise.tests.pure import tiny_diffusers as tiny

    root = tmp_path_factory.mktemp("scale-svd")
    tiny.tiny_svd().save_pretrained(root / "svd")
    tiny.guide_image(SIZE, SIZE, seed=2)[1].save(root / "first.png")
    return root


def generate_argv(svd, out, *extra):
    return ["generate", "--model", str(svd / "svd"), "--image", str(svd / "first.png"), "--out", str(out),
            "--width", str(SIZE), "--height", str(SIZE), "--device", "cpu", "--seed", "3", "--candidates", "3",
            "--k", "1", "--steps", "3", "--preview-mode", "truncated", "-q", *extra]


def frames_of(folder):
    from chunkwise.search.sinks import DiskSink

    sink = DiskSink(folder.parent, folder.name)
    sink.open_run(json.loads((folder / "state.json").read_text())["fingerprint"], 10**6)
    sink.close()
    return sink.video(), [r["chosen"] for r in sink.records()]


@pytest.fixture
def threads_of_a_worker(ray_cluster):
    """This process computes with the threads of a worker (one per CPU slot): on the CPU a multi-threaded sum
    depends on the thread count, so bit-for-bit needs the same count."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(saved)


def test_generate_with_two_workers_equals_one_process_on_tiny_svd(threads_of_a_worker, svd, tmp_path):
    from chunkwise.cli import main

    assert main(generate_argv(svd, tmp_path / "one", "--chunks", "3", "--run", str(tmp_path / "run-one"))) == 0
    assert main(generate_argv(svd, tmp_path / "two", "--chunks", "3", "--run", str(tmp_path / "run-two"),
                              "--workers", "2")) == 0
    one, two = frames_of(tmp_path / "run-one"), frames_of(tmp_path / "run-two")
    assert torch.equal(one[0], two[0]) and one[1] == two[1]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(p.name for p in (tmp_path / "two").iterdir())
    report = json.loads((tmp_path / "two.report.json").read_text())
    assert report["run"]["workers"] == 2 and report["totals"]["nfe"] == 3 * (3 * 1 + 3 - 1)
    single = json.loads((tmp_path / "one.report.json").read_text())
    assert [c["candidates"] for c in single["chunks"]] == [c["candidates"] for c in report["chunks"]]


def test_a_killed_driver_resumes_from_the_run_folder(ray_cluster, threads_of_a_worker, svd, tmp_path):
    from chunkwise.cli import main
    from chunkwise.search.runs import finished_chunks
    from chunkwise.tests.conftest import PKG_PARENT

    address = ray_cluster.get_runtime_context().gcs_address
    argv = generate_argv(svd, tmp_path / "cut", "--chunks", "6", "--run", str(tmp_path / "cut-run"),
                         "--ray-address", address, "--workers", "2")
    env = {**os.environ, "PYTHONPATH": str(PKG_PARENT)}
    driver = subprocess.Popen([sys.executable, "-m", "chunkwise", *argv], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while finished_chunks(tmp_path / "cut-run") < 2 if (tmp_path / "cut-run" / "state.json").exists() else True:
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the driver finished no chunk in time"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    done = finished_chunks(tmp_path / "cut-run")
    assert 2 <= done < 6, "the driver was killed before the end of the run"
    assert main(argv[:-4] + ["--workers", "2"]) == 0  # the same command (on a local cluster of 2) continues it
    report = json.loads((tmp_path / "cut.report.json").read_text())
    assert report["restored_chunks"] == done
    assert main(generate_argv(svd, tmp_path / "whole", "--chunks", "6", "--run", str(tmp_path / "whole-run"))) == 0
    cut, whole = frames_of(tmp_path / "cut-run"), frames_of(tmp_path / "whole-run")
    assert torch.equal(cut[0], whole[0]) and cut[1] == whole[1]


def test_without_ray_the_error_names_the_extra(monkeypatch, svd, tmp_path, capsys):
    from chunkwise.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(generate_argv(svd, tmp_path / "v", "--chunks", "1", "--workers", "2")) == 2
    err = capsys.readouterr().err
    assert 'pip install "chunkwise[ray]"' in err and "--workers" in err
    assert not (tmp_path / "v").exists()
