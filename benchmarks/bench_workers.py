"""Wall seconds per chunk with 1 and 2 Ray workers against the critical path ceil(m/W)*k + s, NFE per worker.

A tiny random SVD pipeline (tests/pure/tiny_diffusers.py) saved to a temporary folder is run for a few
chunks with m = 4 candidates in ``short`` preview mode (the paper's search), first in this process (one
thread, as a worker has) to measure the seconds per model evaluation, then on a local Ray cluster with W = 1
and W = 2 workers (each one CPU slot, one thread). Loading the pipeline on the workers is left out; the
times are of ``run_chunks`` only. The prediction is ``t_nfe * (ceil(m/W)*k + s)``: with W workers the
previews of a chunk run side by side, the full run of the winner after them.

On a machine with fewer free cores than workers the workers share cores and the speed-up is bounded by
the cores, not by W: the figures then bound the overhead of the scheduling (a lower bound on what W
GPUs gain), not the gain itself.

    .venv/bin/python benchmarks/bench_workers.py
    .venv/bin/python benchmarks/bench_workers.py --chunks 3 --size 64 --k 4 --steps 12 --json bench_workers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pack import import_pack  # noqa: E402

import_pack()


def build_model(folder: Path, size: int):
    from chunkwise.tests.pure import tiny_diffusers as tiny

    tiny.tiny_svd().save_pretrained(folder / "svd")
    tiny.guide_image(size, size, seed=2)[1].save(folder / "first.png")


def argv_for(folder: Path, args) -> list:
    return ["--model", str(folder / "svd"), "--image", str(folder / "first.png"), "--out", str(folder / "v"),
            "--width", str(args.size), "--height", str(args.size), "--device", "cpu", "--seed", "0",
            "--candidates", str(args.m), "--k", str(args.k), "--steps", str(args.steps), "--chunks",
            str(args.chunks), "--scorer", "flicker", "-q"]


def one_process(argv: list) -> dict:
    import torch
    from chunkwise.cli import build_parser, generate_settings, load_image, load_parts
    from chunkwise.search.engine import run_chunks

    torch.set_num_threads(1)
    args = build_parser().parse_args(["generate", *argv])
    denoiser, scorer = load_parts(args)
    settings, image = generate_settings(args), load_image(args.image)
    t0 = time.perf_counter()
    result = run_chunks(denoiser, scorer, image, settings)
    seconds = time.perf_counter() - t0
    nfe = result.report["totals"]["nfe"]
    return {"seconds": seconds, "nfe": nfe, "t_nfe": seconds / nfe, "chunks": [c["chosen"] for c in
                                                                               result.report["chunks"]]}


def on_workers(argv: list, workers: int) -> dict:
    from chunkwise.cli import GenerateParts, build_parser, generate_settings, load_image
    from chunkwise.scale.workers import RayExecutor, WorkerPool
    from chunkwise.search.engine import run_chunks

    args = build_parser().parse_args(["generate", *argv])
    pool = WorkerPool(GenerateParts(tuple(argv)), workers=workers)
    try:
        executor = RayExecutor(pool)  # every worker loads the pipeline here
        settings, image = generate_settings(args), load_image(args.image)
        t0 = time.perf_counter()
        result = run_chunks(None, None, image, settings, executor=executor)
        seconds = time.perf_counter() - t0
        threads = [i["threads"] for i in executor.infos]
        return {"seconds": seconds, "nfe": result.report["totals"]["nfe"], "nfe_per_worker": executor.nfe_by_worker,
                "threads": threads, "chunks": [c["chosen"] for c in result.report["chunks"]]}
    finally:
        pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--m", type=int, default=4, help="candidates per chunk")
    parser.add_argument("--k", type=int, default=4, help="preview steps")
    parser.add_argument("--steps", type=int, default=12, help="full steps s")
    parser.add_argument("--size", type=int, default=64, help="frame width and height")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import ray
    from chunkwise.scale.cluster import runtime_env

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_model(folder, args.size)
        argv = argv_for(folder, args)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
        try:
            base = one_process(argv)
            runs = {w: on_workers(argv, w) for w in (1, 2)}
        finally:
            ray.shutdown()

    m, k, s, n = args.m, args.k, args.steps, args.chunks
    print(f"tiny SVD {args.size}x{args.size}, m={m} k={k} s={s}, {n} chunks, short previews; "
          f"{os.cpu_count()} cores on this machine (shared)")
    print(f"one process (1 thread): {base['seconds'] / n:.2f} s/chunk, {base['t_nfe'] * 1000:.1f} ms per model "
          f"evaluation, {base['nfe'] // n} evaluations per chunk (m*k + s = {m * k + s})")
    figures = {"settings": vars(args), "one_process": base, "workers": {}}
    for w, run in runs.items():
        path = math.ceil(m / w) * k + s
        predicted = base["t_nfe"] * path
        per_chunk = run["seconds"] / n
        same = "same winners" if run["chunks"] == base["chunks"] else "OTHER WINNERS"
        print(f"W={w}: {per_chunk:.2f} s/chunk; critical path ceil(m/W)*k + s = {path} evaluations -> "
              f"{predicted:.2f} s predicted; measured/predicted {per_chunk / predicted:.2f}; NFE per worker "
              f"{[v // n for v in run['nfe_per_worker']]} per chunk (total {run['nfe'] // n}); threads "
              f"{run['threads']}; {same}")
        figures["workers"][w] = {**run, "seconds_per_chunk": per_chunk, "critical_path_nfe": path,
                                 "predicted_seconds_per_chunk": predicted}
    if len(runs) == 2:
        print(f"speed-up W=2 over W=1: {runs[1]['seconds'] / runs[2]['seconds']:.2f}x (ideal "
              f"{(m * k + s) / (math.ceil(m / 2) * k + s):.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
