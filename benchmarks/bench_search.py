"""What the noise search costs, and what each cost option saves.

Runs on the CPU with the tiny random ComfyUI models of ``tests/comfy/tiny.py``
through :class:`chunkwise.nodes.host.ComfyI2V` and
:func:`chunkwise.search.engine.run_chunks`, scored by CLIP min-cosine on the
tiny ComfyUI CLIP vision model. Three parts, each printed and written to JSON:

1. **Counted** (hardware independent): for every mode and option, per chunk,
   model evaluations (NFE) against the formula, frames the VAE decoded,
   images the scorer encoded, sampler calls for previews and NFE saved; for the
   adaptive options, how often the winner is the full search's winner (toy
   denoiser with imperfect previews, many chunks, the paper's m=10 k=8 s=50).
2. **Timed**: naive against search at the same seed, whole runs after a
   warm-up, ``--reps`` repetitions, median and spread: wall seconds per chunk
   split into condition / preview sampling / preview decode / scoring / full
   denoise / final decode, wall(search)/wall(naive) beside the NFE ratio, the
   share of wall time spent outside the model, and peak memory (each variant in
   its own process, so peaks do not mix).
3. **Scaling**: how time outside the model grows with frames and resolution.

The tiny models are the test models, unchanged: their networks are so small
that the model is cheap next to decoding and scoring, so the timed shares
outside the model are far larger than with real models. Part 3 shows the trend.

    .venv/bin/python benchmarks/bench_search.py                        # both families, everything
    .venv/bin/python benchmarks/bench_search.py --family wan --reps 3 --json out.json
    .venv/bin/python benchmarks/bench_search.py --parts counted        # only the counted tables

Real weights: ``--diffusers DIR`` (a local diffusers SVD, CogVideoX-I2V or
Wan-I2V folder, on the first GPU when there is one) runs the timed part on that
model at its own size, naive against search with ``--m/--k/--steps``, scored by
the pipeline's CLIP image encoder (or ``--scorer clip-openclip --clip-weights
FILE`` for pipelines without one)::

    .venv/bin/python benchmarks/bench_search.py --diffusers ~/models/stable-video-diffusion-img2vid-xt \\
        --m 10 --k 8 --steps 50 --chunks 2 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

from _pack import ROOT, import_pack  # benchmarks/ is sys.path[0] when a script here runs

# Tiny sizes: the tier-2 test sizes (latent Wan [1, 16, 2, 4, 4], SVD [4, 4, 6, 8]).
SIZES = {"wan": {"width": 32, "height": 32, "length": 5}, "svd": {"width": 64, "height": 48, "video_frames": 4}}
SWEEP = {
    "wan": [{"width": 32, "height": 32, "length": 5}, {"width": 64, "height": 64, "length": 9},
            {"width": 96, "height": 96, "length": 17}],
    "svd": [{"width": 64, "height": 48, "video_frames": 4}, {"width": 128, "height": 96, "video_frames": 8},
            {"width": 192, "height": 144, "video_frames": 14}],
}
M, K, S = 4, 3, 12
"""Timed and counted search settings on the tiny models: s / k = 4, close to the paper's 50 / 8."""


def _import_pack():
    """Import the repository as the package ``chunkwise`` (as tests/conftest.py does) and ComfyUI in-process."""
    import_pack()
    from chunkwise.tests.comfy_host import enable_in_process

    enable_in_process()


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


class CountingClipVision:
    """A CLIP_VISION stand-in that counts the images it encodes and the seconds it spends."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.images = 0
        self.seconds = 0.0

    def encode_image(self, image, crop=True):
        self.images += int(image.shape[0])
        t0 = time.perf_counter()
        out = self.inner.encode_image(image, crop=crop)
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


class ModelTimer:
    """A unet function wrapper that adds up the seconds spent inside the model."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, apply_model, args):
        import torch

        t0 = time.perf_counter()
        out = apply_model(args["input"], args["timestep"], **args["c"])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        return out


class TimedI2V:
    """Delegates to a denoiser; times the final decode of each chunk.

    With ``preview_decode`` on the denoiser (ComfyI2V) the engine's ``decode``
    calls are all final decodes. Without it (diffusers) previews go through
    ``decode`` too, and the last decode before the next chunk's ``condition``
    (or the end of the run, :meth:`finish`) is the final one.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.final_decode = 0.0
        self._separate = hasattr(inner, "preview_decode")
        self._last = None

    def condition(self, guide):
        self.finish()
        return self.inner.condition(guide)

    def decode(self, latent):
        t0 = time.perf_counter()
        out = self.inner.decode(latent)
        seconds = time.perf_counter() - t0
        if self._separate:
            self.final_decode += seconds
        else:
            self._last = seconds
        return out

    def finish(self) -> float:
        if self._last is not None:
            self.final_decode, self._last = self.final_decode + self._last, None
        return self.final_decode

    def __getattr__(self, name):
        return getattr(self.inner, name)


def build(family: str, size: dict, seed: int = 0):
    """Tiny models for ``family`` at ``size``: (make_denoiser(), scorer, clip counter, model timer)."""
    from chunkwise.nodes.families import SVDFamily, WanFamily
    from chunkwise.nodes.host import ComfyI2V
    from chunkwise.scorers import ClipMinCosine
    from chunkwise.scorers.encoders import ComfyClipVisionEncoder
    from chunkwise.tests.comfy import tiny

    clip = CountingClipVision(tiny.tiny_clip_vision(3))
    timer = ModelTimer()
    if family == "wan":
        model, vae, positive, negative = tiny.tiny_wan(1)
        fam = WanFamily(positive, negative, **size)
        sampler = {"sampler_name": "euler", "scheduler": "simple", "cfg": 3.0}
    else:
        model, vae, clip_vision = tiny.tiny_svd(5)
        fam = SVDFamily(clip_vision, min_cfg=1.0, **size)
        sampler = {"sampler_name": "euler", "scheduler": "karras", "cfg": 2.5}
    timed_model = model.clone()

    def timing_wrapper(apply_model, args):  # a function: ModelPatcher.clone deep-copies options, not functions
        return timer(apply_model, args)

    timed_model.set_model_unet_function_wrapper(timing_wrapper)

    def make():
        return TimedI2V(ComfyI2V(timed_model, vae, fam, **sampler))

    scorer = ClipMinCosine(ComfyClipVisionEncoder(clip))
    return make, scorer, clip, timer


class ForwardTimer:
    """Adds up the seconds spent in a torch module's forward (the diffusers UNet or transformer)."""

    def __init__(self, module) -> None:
        self.seconds = 0.0
        self._t0 = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def _start(self, *_args) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def _stop(self, *_args) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._t0


class NoCounter:
    """Stands in for :class:`CountingClipVision` where the scorer's encoder is not a CLIP_VISION."""

    seconds = 0.0
    images = 0


def build_diffusers(spec: dict):
    """A local diffusers folder as (make_denoiser(), scorer, counter, model timer), loaded once."""
    from chunkwise.cli import build_scorer
    from chunkwise.search.hosts import load_denoiser

    options = {key: spec[key] for key in ("width", "height", "num_frames", "prompt") if spec.get(key) is not None}
    den = load_denoiser(spec["model"], device=spec.get("device"), dtype=spec.get("dtype", "auto"), seed=1, **options)
    network = getattr(den.pipe, "unet", None) or den.pipe.transformer
    timer = ForwardTimer(network)
    scorer_args = argparse.Namespace(scorer=spec.get("scorer", "clip-pipeline"), clip_model=spec.get("clip_model"),
                                     clip_weights=spec.get("clip_weights"), anchor_weight=0.0, frame_stride=1)
    scorer = build_scorer(scorer_args, den.pipe, den.device)

    def make():
        return TimedI2V(den)

    return make, scorer, NoCounter(), timer


def guide(size: dict, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    h, w = size["height"], size["width"]
    base = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear").movedim(1, -1).contiguous()


def search_settings(name: str, m: int = M, k: int = K, s: int = S):
    from chunkwise.search.engine import SearchSettings

    plain = SearchSettings(candidates=m, k=k, steps=s, preview_mode="short")
    truncated = replace(plain, preview_mode="truncated")
    return {
        "naive": replace(plain, candidates=1),
        "short": plain,
        "truncated+resume": truncated,
        "truncated, no resume": replace(truncated, resume=False),
        "batched (truncated+resume)": replace(truncated, candidate_batch=m),
        "frame stride 2 (short)": replace(plain, preview_stride=2),
        "approximate decode (short)": replace(plain, preview_decode="approx"),
        "early accept (short)": replace(plain, accept_score=0.0),  # threshold set per run, see counted()
        "successive halving (truncated+resume)": replace(truncated, halving_k=max(1, k // 2)),
        "successive halving (short)": replace(plain, halving_k=max(1, k // 2)),
    }[name]


COUNTED_MODES = [
    "naive", "short", "truncated+resume", "truncated, no resume", "batched (truncated+resume)",
    "frame stride 2 (short)", "approximate decode (short)", "early accept (short)",
    "successive halving (truncated+resume)", "successive halving (short)",
]


# ---------------------------------------------------------------------------------------------
# 1. Counted
# ---------------------------------------------------------------------------------------------


def counted(family: str, chunks: int) -> list[dict]:
    """Counts per chunk for every mode on the tiny models (deterministic; no clock involved)."""
    from chunkwise.search.engine import LoopSettings, run_chunks

    size = SIZES[family]
    make, scorer, clip, _ = build(family, size)
    rows = []
    threshold = None
    for mode in COUNTED_MODES:
        search = search_settings(mode)
        if mode == "early accept (short)":
            search = replace(search, accept_score=threshold)
        den = make()
        clip.images = 0
        result = run_chunks(den, scorer, guide(size), LoopSettings(chunks=chunks, seed=1, search=search))
        report = result.report
        used = [c["nfe"]["preview"] + c["nfe"]["full"] for c in report["chunks"]]
        frames = size.get("length", size.get("video_frames"))
        if mode == "short":
            # Early accept's threshold: the median of the plain search's scores, so it fires on some candidates.
            scores = sorted(c["score"] for ch in report["chunks"] for c in ch["candidates"])
            threshold = scores[len(scores) // 2]
        row = {
            "mode": mode,
            "nfe_per_chunk": statistics.mean(used),
            "nfe_formula": search.nfe_formula(),
            "nfe_expected": search.nfe_per_chunk(),
            # Against the paper's m*k + s (so resume's k counts as saved); naive against its own s.
            "nfe_saved_per_chunk": (search.candidates * search.k + search.steps if search.searching else search.steps)
            - statistics.mean(used),
            "vae_frames_per_chunk": den.frames_decoded / chunks,
            "vae_frames_previews_per_chunk": den.frames_decoded / chunks - frames,
            "images_encoded_per_chunk": clip.images / chunks,
            "preview_calls_per_chunk": statistics.mean(
                c.get("cost", {}).get("preview_calls", len(c["candidates"]) if search.searching else 0)
                for c in report["chunks"]
            ),
            "candidates_drawn_per_chunk": statistics.mean(len(c["candidates"]) for c in report["chunks"])
            if search.searching else 0,
            "chosen": [c["chosen"] for c in report["chunks"]],
        }
        if mode == "early accept (short)":
            row["accept_score"] = threshold
        rows.append(row)
    return rows


def approx_agreement(family: str, chunks: int) -> dict:
    """How often approximate and strided previews choose the full decode's winner on the tiny models."""
    from chunkwise.search.engine import search_chunk

    size = SIZES[family]
    make, scorer, _, _ = build(family, size)
    full_s = search_settings("truncated+resume")
    same = {"approximate decode": 0, "frame stride 2": 0}
    for c in range(chunks):
        g = guide(size, seed=100 + c)
        ref = search_chunk(make(), scorer, g, full_s, seed=1000 * c).record.chosen
        for name, opt in (("approximate decode", {"preview_decode": "approx"}), ("frame stride 2", {"preview_stride": 2})):
            chosen = search_chunk(make(), scorer, g, replace(full_s, **opt), seed=1000 * c).record.chosen
            same[name] += chosen == ref
    return {name: {"same_winner": n, "chunks": chunks, "rate": n / chunks} for name, n in same.items()}


def toy_matching(chunks: int) -> list[dict]:
    """Adaptive options against the full search with the paper's m=10, k=8, s=50 on a leaky toy denoiser."""
    from chunkwise.search import SearchSettings, search_chunk
    from chunkwise.tests.pure.test_adaptive import LeakyToyDenoiser
    from chunkwise.tests.pure.toys import MeanColourScorer, image

    rows = []
    for mode in ("short", "truncated"):
        full = SearchSettings(candidates=10, k=8, steps=50, preview_mode=mode)
        # Early accept thresholds: percentiles of the first candidate's score on 50 separate calibration chunks.
        winners = sorted(
            search_chunk(LeakyToyDenoiser(), MeanColourScorer(), image(seed=10_000 + c), full, seed=7 * c).record.candidates[
                0
            ]["score"]
            for c in range(50)
        )
        options = {
            # Short rungs restart their schedule, so only small first rungs cost less than m*k (validated).
            "successive halving, first rung k=1": replace(full, halving_k=1),
            "successive halving, first rung k=2": replace(full, halving_k=2),
            "early accept at the median first-candidate score": replace(full, accept_score=winners[len(winners) // 2]),
            "early accept at the 90th pct. first-candidate score": replace(
                full, accept_score=winners[int(0.9 * len(winners))]),
        }
        ref = []
        for c in range(chunks):
            out = search_chunk(LeakyToyDenoiser(), MeanColourScorer(), image(seed=c), full, seed=1000 * c)
            ref.append(out.record.chosen_seed)
        for name, settings in options.items():
            same, used = 0, []
            for c in range(chunks):
                out = search_chunk(LeakyToyDenoiser(), MeanColourScorer(), image(seed=c), settings, seed=1000 * c)
                same += out.record.chosen_seed == ref[c]
                used.append(out.record.nfe["preview"] + out.record.nfe["full"])
            rows.append({
                "mode": mode, "option": name, "chunks": chunks, "same_winner_rate": same / chunks,
                "nfe_formula": full.nfe_formula(), "nfe_mean": statistics.mean(used),
                "nfe_saved_mean": full.nfe_formula() - statistics.mean(used),
                "nfe_saved_share": 1 - statistics.mean(used) / full.nfe_formula(),
            })
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Timed (one process per variant)
# ---------------------------------------------------------------------------------------------

TIMED_VARIANTS = ["naive", "short", "truncated+resume", "batched (truncated+resume)"]


def timed_child(family: str, variant: str, reps: int, chunks: int, size: dict) -> dict:
    """Run one variant ``reps`` times after a warm-up; everything per chunk."""
    import torch
    from chunkwise.search.engine import LoopSettings, run_chunks

    if family == "diffusers":
        make, scorer, clip, timer = build_diffusers(size)
        search = search_settings(variant, size["m"], size["k"], size["steps"])
        den = make().inner
        image = guide({"height": getattr(den, "height", 512), "width": getattr(den, "width", 512)})
    else:
        make, scorer, clip, timer = build(family, size)
        search = search_settings(variant)
        image = guide(size)
    settings = LoopSettings(chunks=chunks, seed=1, search=search)
    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run_chunks(make(), scorer, image, settings)  # warm-up
    runs = []
    for _ in range(reps):
        den = make()
        timer.seconds, clip.seconds, clip.images = 0.0, 0.0, 0
        t0 = time.perf_counter()
        result = run_chunks(den, scorer, image, settings)
        wall = time.perf_counter() - t0
        split = {key: sum(c["seconds"][key] for c in result.report["chunks"]) / chunks
                 for key in ("condition", "preview", "decode", "score", "full")}
        final_decode = den.finish() / chunks
        runs.append({
            "wall_per_chunk": wall / chunks,
            "condition": split["condition"],
            "preview_sampling": split["preview"],
            "preview_decode": split["decode"] - final_decode,
            "scoring": split["score"],
            "full_denoise": split["full"],
            "final_decode": final_decode,
            "model": timer.seconds / chunks,
            "outside_model_share": 1.0 - timer.seconds / wall,
            "nfe_per_chunk": result.report["totals"]["nfe"] / chunks,
        })
    out = {"family": family, "variant": variant, "size": size, "reps": reps, "chunks": chunks, "runs": runs,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_after_setup_mib": rss_setup / 1024}
    if torch.cuda.is_available():
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def summarize_runs(runs: list[dict]) -> dict:
    keys = runs[0].keys()
    out = {}
    for key in keys:
        values = [r[key] for r in runs]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


THREADS = {"n": 0}


def run_child(args_list: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args_list, str(THREADS["n"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args_list} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed(family: str, reps: int, chunks: int, spec: Optional[dict] = None) -> dict:
    results = {}
    for variant in TIMED_VARIANTS:
        raw = run_child([family, variant, str(reps), str(chunks), json.dumps(spec or SIZES[family])])
        raw["summary"] = summarize_runs(raw["runs"])
        results[variant] = raw
    naive = results["naive"]["summary"]
    for raw in results.values():
        summ = raw["summary"]
        raw["wall_ratio"] = summ["wall_per_chunk"]["median"] / naive["wall_per_chunk"]["median"]
        raw["nfe_ratio"] = summ["nfe_per_chunk"]["median"] / naive["nfe_per_chunk"]["median"]
    return results


def sweep(family: str, chunks: int) -> list[dict]:
    rows = []
    for size in SWEEP[family]:
        for variant in ("naive", "short"):
            raw = run_child([family, variant, "1", str(chunks), json.dumps(size)])
            r = raw["runs"][0]
            rows.append({"size": size, "variant": variant, **{k: r[k] for k in (
                "wall_per_chunk", "model", "outside_model_share", "preview_decode", "final_decode", "scoring",
                "condition", "nfe_per_chunk")}})
    return rows


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------


def print_counted(family: str, rows: list[dict]) -> None:
    print(f"\n## Counted, {family} (tiny models, m={M} k={K} s={S}, per chunk)")
    print(f"{'mode':40s} {'NFE':>6s} {'expected':>8s} {'formula':>7s} {'saved vs m*k+s':>14s} {'VAE frames':>10s} "
          f"{'(previews)':>10s} {'images enc.':>11s} {'calls':>6s} {'drawn':>6s}")
    for r in rows:
        print(f"{r['mode']:40s} {r['nfe_per_chunk']:6.1f} {r['nfe_expected']:8d} {r['nfe_formula']:7d} "
              f"{r['nfe_saved_per_chunk']:14.1f} {r['vae_frames_per_chunk']:10.1f} "
              f"{r['vae_frames_previews_per_chunk']:10.1f} {r['images_encoded_per_chunk']:11.1f} "
              f"{r['preview_calls_per_chunk']:6.1f} {r['candidates_drawn_per_chunk']:6.1f}")


def print_timed(family: str, results: dict, what: str = "tiny models") -> None:
    print(f"\n## Timed, {family} ({what} on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; seconds per chunk, median [min-max])")
    cols = ["wall_per_chunk", "condition", "preview_sampling", "preview_decode", "scoring", "full_denoise",
            "final_decode", "model"]
    print(f"{'variant':28s} " + " ".join(f"{c:>22s}" for c in cols)
          + f" {'outside model':>14s} {'wall ratio':>10s} {'NFE ratio':>9s} {'peak RSS MiB':>12s}")
    for variant, raw in results.items():
        s = raw["summary"]
        cells = " ".join(f"{s[c]['median']:8.3f} [{s[c]['min']:.3f}-{s[c]['max']:.3f}]" for c in cols)
        print(f"{variant:28s} {cells} {100 * s['outside_model_share']['median']:13.1f}% "
              f"{raw['wall_ratio']:10.2f} {raw['nfe_ratio']:9.2f} {raw['peak_rss_mib']:12.0f}"
              + (f" (GPU peak {raw['peak_cuda_mib']:.0f} MiB)" if "peak_cuda_mib" in raw else ""))


def print_sweep(family: str, rows: list[dict]) -> None:
    print(f"\n## Scaling, {family} (one run each; seconds per chunk)")
    print(f"{'size':24s} {'variant':8s} {'wall':>8s} {'model':>8s} {'outside':>8s} {'decode prev.':>12s} "
          f"{'decode final':>12s} {'scoring':>8s} {'condition':>9s}")
    for r in rows:
        sz = r["size"]
        label = f"{sz['width']}x{sz['height']}x{sz.get('length', sz.get('video_frames'))}f"
        print(f"{label:24s} {r['variant']:8s} {r['wall_per_chunk']:8.3f} {r['model']:8.3f} "
              f"{100 * r['outside_model_share']:7.1f}% {r['preview_decode']:12.3f} {r['final_decode']:12.3f} "
              f"{r['scoring']:8.3f} {r['condition']:9.3f}")


def print_matching(rows: list[dict]) -> None:
    print("\n## Adaptive options against the full search (toy denoiser with imperfect previews, m=10 k=8 s=50)")
    print(f"{'mode':10s} {'option':50s} {'same winner':>11s} {'NFE mean':>9s} {'m*k+s':>6s} {'saved':>6s}")
    for r in rows:
        print(f"{r['mode']:10s} {r['option']:50s} {100 * r['same_winner_rate']:10.1f}% {r['nfe_mean']:9.1f} "
              f"{r['nfe_formula']:6d} {100 * r['nfe_saved_share']:5.1f}%")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=["wan", "svd", "both"], default="both")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions after one warm-up run")
    parser.add_argument("--chunks", type=int, default=2, help="chunks per run")
    parser.add_argument("--parts", nargs="+", choices=["counted", "timed", "sweep"], default=["counted", "timed", "sweep"])
    parser.add_argument("--match-chunks", type=int, default=100, help="chunks for the toy matching rates")
    parser.add_argument("--agreement-chunks", type=int, default=6, help="chunks for approximate/stride agreement")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", default=str(ROOT / ".cache" / "bench" / "bench_search.json"))
    parser.add_argument("--diffusers", metavar="DIR",
                        help="time a local diffusers I2V folder (real weights) instead of the tiny models")
    parser.add_argument("--m", type=int, default=4, help="--diffusers: candidates per chunk (default 4)")
    parser.add_argument("--k", type=int, default=8, help="--diffusers: preview steps (default 8)")
    parser.add_argument("--steps", type=int, default=25, help="--diffusers: full steps (default 25)")
    parser.add_argument("--device", help="--diffusers: torch device (default: the first GPU, else cpu)")
    parser.add_argument("--dtype", default="auto", help="--diffusers: auto, fp32, fp16 or bf16")
    parser.add_argument("--scorer", default="clip-pipeline", choices=["clip-pipeline", "clip-openclip",
                                                                      "clip-transformers"],
                        help="--diffusers: the scorer, as in chunkwise generate")
    parser.add_argument("--width", type=int, help="--diffusers: frame width (default: the model's own)")
    parser.add_argument("--height", type=int, help="--diffusers: frame height (default: the model's own)")
    parser.add_argument("--frames", type=int, help="--diffusers: frames per chunk (default: the model's own)")
    parser.add_argument("--prompt", help="--diffusers: text prompt (CogVideoX, Wan)")
    parser.add_argument("--clip-model", default="ViT-L-14", help="--diffusers: open_clip model name")
    parser.add_argument("--clip-weights", help="--diffusers: open_clip file or transformers folder")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    _import_pack()
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        family, variant, reps, chunks, size, threads = args.child
        if int(threads):
            torch.set_num_threads(int(threads))
        with torch.inference_mode():
            print(json.dumps(timed_child(family, variant, int(reps), int(chunks), json.loads(size))))
        return {}

    THREADS["n"] = args.threads
    import logging

    logging.disable(logging.WARNING)
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False
    families = ["wan", "svd"] if args.family == "both" else [args.family]
    out = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": {
        "platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
        "cuda": torch.cuda.is_available(), "threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg()}, "settings": {"m": M, "k": K, "s": S, "chunks": args.chunks,
                                                         "reps": args.reps}, "families": {}}
    if args.diffusers:
        model = Path(args.diffusers).expanduser()
        if not (model / "model_index.json").is_file():
            parser.error(f"--diffusers {model}: not a diffusers folder (no model_index.json)")
        spec = {"model": str(model), "m": args.m, "k": args.k, "steps": args.steps, "device": args.device,
                "dtype": args.dtype, "scorer": args.scorer, "clip_model": args.clip_model,
                "clip_weights": args.clip_weights, "width": args.width, "height": args.height,
                "num_frames": args.frames, "prompt": args.prompt}
        out["settings"].update({"m": args.m, "k": args.k, "s": args.steps, "model": str(model)})
        with torch.inference_mode():
            out["families"]["diffusers"] = {"timed": timed("diffusers", args.reps, args.chunks, spec)}
        print_timed("diffusers", out["families"]["diffusers"]["timed"], what=f"{model.name}, m={args.m} "
                    f"k={args.k} s={args.steps}")
        families = []
    with torch.inference_mode():
        for family in families:
            res = out["families"].setdefault(family, {})
            if "counted" in args.parts:
                res["counted"] = counted(family, args.chunks)
                print_counted(family, res["counted"])
                res["agreement_with_full_decode"] = approx_agreement(family, args.agreement_chunks)
                print(f"winner agreement with full VAE decoding (truncated, {args.agreement_chunks} chunks; random "
                      f"tiny VAE, so the approximate rate says nothing about real models): "
                      + ", ".join(f"{k} {v['same_winner']}/{v['chunks']}" for k, v in res["agreement_with_full_decode"].items()))
            if "timed" in args.parts:
                res["timed"] = timed(family, args.reps, args.chunks)
                print_timed(family, res["timed"])
            if "sweep" in args.parts:
                res["sweep"] = sweep(family, 1)
                print_sweep(family, res["sweep"])
        if "counted" in args.parts and families:
            out["toy_matching"] = toy_matching(args.match_chunks)
            print_matching(out["toy_matching"])
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    return out


if __name__ == "__main__":
    main()
