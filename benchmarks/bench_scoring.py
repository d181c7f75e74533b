"""Scoring cost per candidate: CLIP min-cosine on a ViT-B-32-sized open_clip model.

One candidate = one k-step preview of 25 frames at 384x512 (SVD's chunk in the
paper), scored by :class:`chunkwise.scorers.ClipMinCosine` against a guide and an
anchor prepared once per chunk. The model is ``open_clip.create_model('ViT-B-32')``
with random weights (no download; the cost does not depend on the weights).

For each ``frame_stride`` it prints and writes as JSON: the median (and min/max)
seconds per candidate over ``--reps`` timed repetitions after ``--warmup``
untimed ones, the images encoded per candidate, the share of that time spent in
preprocessing (resize + crop + normalise), and the one-off per-chunk cost of
encoding the guide and anchor.

    .venv/bin/python benchmarks/bench_scoring.py                       # strides 1 and 4
    .venv/bin/python benchmarks/bench_scoring.py --strides 1 2 4 8 --reps 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from _pack import ROOT, import_pack  # benchmarks/ is sys.path[0] when a script here runs


def _import_pack():
    """Import the repository as the package ``chunkwise`` (as tests/conftest.py does)."""
    import_pack()
    import chunkwise.scorers

    return chunkwise.scorers


def preview_frames(frames: int, height: int, width: int, seed: int):
    """A smooth moving test clip ``[T, H, W, 3]`` in 0..1 (content does not change the cost)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, height // 32, width // 32, generator=g)
    base = torch.nn.functional.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    clip = torch.cat([torch.roll(base, shifts=4 * t, dims=3) for t in range(frames)])
    return clip.movedim(1, -1).contiguous()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip config name (random weights)")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch-size", type=int, default=16, help="frames per forward pass")
    parser.add_argument("--anchor-weight", type=float, default=0.3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", default=str(ROOT / ".cache" / "bench" / "bench_scoring.json"))
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scorers = _import_pack()

    # 1. The encoder: a ViT-B-32-sized open_clip image tower with random weights, on the CPU.
    start = time.perf_counter()
    encoder = scorers.OpenClipEncoder(args.model, None, batch_size=args.batch_size)
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in encoder.model.parameters())
    guide = preview_frames(1, args.height, args.width, seed=1)
    anchor = preview_frames(1, args.height, args.width, seed=2)
    preview = preview_frames(args.frames, args.height, args.width, seed=3)

    # 2. One scorer per stride, each with its chunk's guide + anchor prepared once.
    scorer_for = {
        n: scorers.ClipMinCosine(encoder, anchor_weight=args.anchor_weight, frame_stride=n) for n in args.strides
    }
    context_for = {n: scorer_for[n].prepare(guide, anchor) for n in args.strides}
    picked_for = {n: preview[scorers.frame_indices(args.frames, n)] for n in args.strides}

    def preprocess(frames):
        for i in range(0, frames.shape[0], args.batch_size):
            encoder._preprocess(frames[i : i + args.batch_size])

    jobs = {
        "prepare": {n: (lambda n=n: scorer_for[n].prepare(guide, anchor)) for n in args.strides},
        "score": {n: (lambda n=n: context_for[n].score([preview])) for n in args.strides},
        "preprocess": {n: (lambda n=n: preprocess(picked_for[n])) for n in args.strides},
    }
    # 3. Warm up, then time the strides in turn within each repetition, so a load spike on a shared
    #    machine hits every stride alike; count the images encoded per candidate.
    for what in jobs.values():
        for fn in what.values():
            for _ in range(args.warmup):
                fn()
    times = {what: {n: [] for n in args.strides} for what in jobs}
    images_per_candidate = {}
    load_before = os.getloadavg()
    for _ in range(args.reps):
        for what, fns in jobs.items():
            for n, fn in fns.items():
                before = encoder.images_encoded
                t0 = time.perf_counter()
                fn()
                times[what][n].append(time.perf_counter() - t0)
                if what == "score":
                    images_per_candidate[n] = encoder.images_encoded - before
    load_after = os.getloadavg()

    results = []
    for n in args.strides:
        score_s = times["score"][n]
        results.append(
            {
                "frame_stride": n,
                "images_encoded_per_candidate": images_per_candidate[n],
                "seconds_per_candidate_median": statistics.median(score_s),
                "seconds_per_candidate_min": min(score_s),
                "seconds_per_candidate_max": max(score_s),
                "seconds_per_image_median": statistics.median(score_s) / images_per_candidate[n],
                "preprocess_seconds_median": statistics.median(times["preprocess"][n]),
                "prepare_seconds_per_chunk_median": statistics.median(times["prepare"][n]),
                "reps": args.reps,
            }
        )

    base = results[0]["seconds_per_candidate_median"]
    report = {
        "benchmark": "bench_scoring",
        "model": f"open_clip {args.model} (random weights)",
        "image_tower_parameters": params,
        "model_input": list(encoder.preprocess_cfg["size"]),
        "preview": {"frames": args.frames, "height": args.height, "width": args.width},
        "batch_size": args.batch_size,
        "anchor_weight": args.anchor_weight,
        "warmup": args.warmup,
        "device": "cpu",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "build_seconds": build_s,
        "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "results": results,
    }

    # 5. Print and write.
    print(
        f"{report['model']}, {params / 1e6:.1f}M image-tower parameters, input {report['model_input']}; "
        f"preview {args.frames} x {args.height}x{args.width}; torch {torch.__version__} on {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} threads; median of {args.reps} after {args.warmup} warm-up; "
        f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(
        f"{'stride':>6} {'images':>6} {'s/candidate':>12} {'(min-max)':>16} {'s/image':>8} {'preproc s':>9} "
        f"{'speed-up':>8} {'guide+anchor s/chunk':>21}"
    )
    for r in results:
        print(
            f"{r['frame_stride']:>6} {r['images_encoded_per_candidate']:>6} {r['seconds_per_candidate_median']:>12.3f} "
            f"{r['seconds_per_candidate_min']:>7.3f}-{r['seconds_per_candidate_max']:<8.3f} "
            f"{r['seconds_per_image_median']:>8.4f} {r['preprocess_seconds_median']:>9.3f} "
            f"{base / r['seconds_per_candidate_median']:>7.2f}x {r['prepare_seconds_per_chunk_median']:>21.3f}"
        )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"written {path}")
    return report


if __name__ == "__main__":
    main()
