"""Tier 1: the search engine with toy denoisers and scorers; no ComfyUI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from chunkwise.search import (
    ChunkwiseError,
    Hooks,
    LoopSettings,
    SearchSettings,
    candidate_seed,
    chunk_seed,
    make_noise,
    run_chunks,
    search_chunk,
)
from chunkwise.search.protocols import CandidateScore, Scorer
from chunkwise.tests.pure.toys import FakeClock, MeanColourScorer, ScriptedScorer, ToyDenoiser, image


def settings(**kw):
    search = {k: kw.pop(k) for k in list(kw) if k in SearchSettings.__dataclass_fields__}
    base = SearchSettings(**{"candidates": 3, "k": 2, "steps": 6, **search})
    return LoopSettings(**{"chunks": 3, "seed": 7, "search": base, "drop_first_frame": False, **kw})


def test_importing_search_and_scorers_does_not_import_comfy():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import chunkwise.search, chunkwise.scorers; "
        "bad = [m for m in sys.modules if m == 'comfy' or m.startswith('comfy.') or m in ('folder_paths', 'nodes')]; "
        "assert not bad, bad"
    )
    from chunkwise.tests.conftest import PKG_PARENT

    subprocess.run([sys.executable, "-c", code, str(PKG_PARENT)], check=True)


def test_winner_is_argmax_with_ties_to_lowest_index():
    den = ToyDenoiser()
    out = search_chunk(den, ScriptedScorer([0.1, 0.9, 0.9, 0.3]), image(), SearchSettings(4, 2, 6), seed=10)
    assert out.record.chosen == 1
    assert out.record.chosen_seed == 11
    assert [c["score"] for c in out.record.candidates] == [0.1, 0.9, 0.9, 0.3]


def test_candidate_j_is_drawn_from_seed_plus_j_and_winner_replays_from_its_seed():
    den = ToyDenoiser()
    out = search_chunk(den, ScriptedScorer([0.0, 0.0, 5.0]), image(), SearchSettings(3, 2, 6), seed=100)
    template = den.latent_template(image())
    for j in range(3):
        assert torch.equal(den.noises[j], make_noise(template, 100 + j))
    # The full run starts from the winner's noise, recomputed from its seed alone.
    assert torch.equal(den.noises[3], make_noise(template, out.record.chosen_seed))
    assert out.record.chosen_seed == 102


def test_noise_is_seeded_on_cpu_and_wraps_at_2_64():
    t = torch.zeros(2, 3, 4, 4)
    assert torch.equal(make_noise(t, 5), make_noise(t, 5))
    assert not torch.equal(make_noise(t, 5), make_noise(t, 6))
    assert candidate_seed(2**64 - 1, 1) == 0
    assert make_noise(t, 2**64 - 1).shape == t.shape
    assert chunk_seed(3, 2) == 3 + 2_000_000


def test_same_seed_and_settings_give_identical_frames_and_report():
    runs = [
        run_chunks(ToyDenoiser(), MeanColourScorer(), image(), settings(), clock=FakeClock()) for _ in range(2)
    ]
    assert torch.equal(runs[0].video(), runs[1].video())
    assert json.dumps(runs[0].report) == json.dumps(runs[1].report)
    other = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), settings(seed=8), clock=FakeClock())
    assert not torch.equal(other.video(), runs[0].video())


@pytest.mark.parametrize(
    "mode,resume,expected",
    [("short", True, 3 * 2 + 6), ("truncated", True, 3 * 2 + (6 - 2)), ("truncated", False, 3 * 2 + 6)],
)
def test_nfe_per_chunk_matches_formula(mode, resume, expected):
    den = ToyDenoiser()
    s = settings(preview_mode=mode, resume=resume)
    result = run_chunks(den, MeanColourScorer(), image(), s)
    for chunk in result.report["chunks"]:
        assert chunk["nfe"]["preview"] + chunk["nfe"]["full"] == expected
    assert result.report["totals"]["nfe"] == den.nfe == 3 * expected == 3 * s.search.nfe_per_chunk()


def test_truncated_resume_equals_full_run_from_the_winner_noise():
    den = ToyDenoiser()
    search = SearchSettings(3, 2, 6, preview_mode="truncated")
    out = search_chunk(den, MeanColourScorer(), image(), search, seed=3)
    assert den.calls[-1] == {"steps": 6, "start": 2, "end": 6, "resume": True}
    ref = ToyDenoiser()
    cond = ref.condition(image())
    full = ref.sample(cond, make_noise(ref.latent_template(cond), out.record.chosen_seed), steps=6)
    assert torch.equal(out.latent, full.latent)


def test_guide_of_each_chunk_is_the_last_frame_of_the_previous():
    den = ToyDenoiser(frames=4)
    result = run_chunks(den, MeanColourScorer(), image(), settings(chunks=3))
    chunks = result.sink.chunks
    assert torch.equal(den.guides[0], image())
    # One condition() per chunk, reused by every candidate and the full run.
    assert len(den.guides) == 3
    for i in (1, 2):
        assert torch.equal(den.guides[i], chunks[i - 1][-1:])
    assert torch.equal(result.last_frame, chunks[-1][-1:])


def test_one_candidate_is_the_naive_loop():
    s = settings(candidates=1, chunks=4)
    result = run_chunks(ToyDenoiser(), None, image(), s)
    # The naive baseline written out by hand.
    den = ToyDenoiser()
    guide, frames = image(), []
    for i in range(4):
        cond = den.condition(guide)
        noise = make_noise(den.latent_template(cond), chunk_seed(7, i))
        chunk = den.decode(den.sample(cond, noise, steps=6).latent)
        frames.append(chunk)
        guide = chunk[-1:]
    assert torch.equal(result.video(), torch.cat(frames))
    assert result.report["totals"]["nfe"] == 4 * 6
    assert all(c["nfe"] == {"preview": 0, "full": 6} for c in result.report["chunks"])
    assert result.report["settings"]["preview_mode"] == "off"
    # Search off with m > 1 is the same naive loop.
    off = run_chunks(ToyDenoiser(), None, image(), replace(s, search=replace(s.search, candidates=5, enabled=False)))
    assert torch.equal(off.video(), result.video())


def test_candidate_zero_of_each_chunk_uses_the_naive_seed():
    result = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), settings(chunks=3))
    for i, chunk in enumerate(result.report["chunks"]):
        assert chunk["candidates"][0]["seed"] == chunk_seed(7, i)
        assert [c["seed"] for c in chunk["candidates"]] == [chunk_seed(7, i) + j for j in range(3)]


def test_drop_first_frame_removes_the_repeated_guide_frame_at_seams():
    kept = run_chunks(ToyDenoiser(frames=5), MeanColourScorer(), image(), settings(chunks=3))
    dropped = run_chunks(ToyDenoiser(frames=5), MeanColourScorer(), image(), settings(chunks=3, drop_first_frame=True))
    assert kept.video().shape[0] == 15
    assert dropped.video().shape[0] == 5 + 4 + 4 == dropped.report["totals"]["frames"]
    assert torch.equal(dropped.sink.chunks[1], kept.sink.chunks[1][1:])


def test_report_has_the_documented_keys():
    result = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), settings(), clock=FakeClock())
    r = result.report
    assert r["format"] == "chunkwise.report/1"
    assert {"chunks", "candidates", "k", "steps", "preview_mode", "seed", "scorer"} <= set(r["settings"])
    assert r["settings"]["scorer"] == "toy-colour"
    assert set(r["totals"]) == {"nfe", "seconds", "frames"}
    for c in r["chunks"]:
        assert set(c) == {"index", "candidates", "chosen", "chosen_seed", "nfe", "seconds"}
        assert set(c["seconds"]) == {"condition", "preview", "decode", "score", "full"}
        assert all(v > 0 for v in c["seconds"].values())
        assert len(c["candidates"]) == 3
        scores = [cand["score"] for cand in c["candidates"]]
        assert c["chosen"] == scores.index(max(scores))
        assert all(len(cand["frame_scores"]) == 5 for cand in c["candidates"])


def test_anchor_is_the_input_image_for_every_chunk():
    seen = []

    class Spy(MeanColourScorer):
        def prepare(self, guide, anchor=None):
            seen.append(anchor)
            return super().prepare(guide, anchor)

    run_chunks(ToyDenoiser(), Spy(), image(), settings(chunks=3))
    assert len(seen) == 3 and all(torch.equal(a, image()) for a in seen)
    seen.clear()
    run_chunks(ToyDenoiser(), Spy(), image(), settings(chunks=2, use_anchor=False))
    assert seen == [None, None]


def test_progress_counts_sampler_steps_over_the_run_and_interrupt_stops_between_candidates():
    ticks = []
    s = settings(chunks=2)
    run_chunks(ToyDenoiser(), MeanColourScorer(), image(), s, hooks=Hooks(on_progress=lambda d, t: ticks.append((d, t))))
    total = 2 * (3 * 2 + 6)
    assert ticks[-1] == (total, total)
    assert all(t == total for _, t in ticks)
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)

    calls = {"n": 0}

    def interrupt():
        calls["n"] += 1
        if calls["n"] == 5:  # loop start, after condition, then before candidates 0, 1, 2
            raise KeyboardInterrupt("stop")

    den = ToyDenoiser()
    with pytest.raises(KeyboardInterrupt):
        run_chunks(den, MeanColourScorer(), image(), s, hooks=Hooks(check_interrupt=interrupt))
    assert den.nfe == 2 * 2  # stopped before the third candidate of chunk 0


def test_previews_and_chunks_reach_the_hooks():
    previews, chunks = [], []
    hooks = Hooks(on_preview=lambda c, j, f, s: previews.append((c, j, f.shape[0])), on_chunk=lambda r, f: chunks.append(r.index))
    run_chunks(ToyDenoiser(frames=4), MeanColourScorer(), image(), settings(chunks=2), hooks=hooks)
    assert previews == [(c, j, 4) for c in range(2) for j in range(3)]
    assert chunks == [0, 1]


# --- validation: every bad input is refused before any model work, with a clear message ---


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"chunks": 0}, r"chunks must be at least 1, got 0"),
        ({"candidates": 0}, r"candidates \(m\) must be at least 1, got 0"),
        ({"k": 0}, r"k \(preview steps\) must be at least 1, got 0"),
        ({"steps": 0}, r"steps must be at least 1, got 0"),
        ({"preview_mode": "truncated", "k": 6}, r"k \(preview steps\) must be smaller than steps in truncated mode, got k=6, steps=6"),
        ({"preview_mode": "sideways"}, r"preview_mode must be one of"),
        ({"seed": -1}, r"seed must be at least 0, got -1"),
        ({"chunks": 2.5}, r"chunks must be an integer, got 2.5"),
    ],
)
def test_bad_settings_are_refused_before_work(kw, match):
    den = ToyDenoiser()
    with pytest.raises(ChunkwiseError, match=match):
        run_chunks(den, MeanColourScorer(), image(), settings(**kw))
    assert den.nfe == 0 and den.guides == []


@pytest.mark.parametrize(
    "img,match",
    [
        (torch.rand(2, 8, 8, 3), r"must be one image, got a batch of 2"),
        (torch.rand(1, 8, 8, 4), r"must have 3 channels \(RGB\), got 4"),
        (torch.rand(1, 8, 8, 1), r"must have 3 channels \(RGB\), got 1"),
        ((torch.rand(1, 8, 8, 3) * 255).to(torch.uint8), r"must be a float tensor .* got dtype torch.uint8"),
        (torch.rand(8, 8), r"must have shape \[1, H, W, 3\] \(ComfyUI IMAGE\), got shape \[8, 8\]"),
        (torch.full((1, 8, 8, 3), float("nan")), r"contains 192 NaN/inf values"),
        ("picture.png", r"must be a torch.Tensor"),
    ],
)
def test_bad_images_are_refused(img, match):
    den = ToyDenoiser()
    with pytest.raises(ChunkwiseError, match=match):
        run_chunks(den, MeanColourScorer(), img, settings())
    assert den.nfe == 0


def test_an_hwc_image_is_accepted_as_one_frame():
    result = run_chunks(ToyDenoiser(), MeanColourScorer(), image()[0], settings(chunks=1))
    assert result.video().shape[0] == 5


def test_search_without_a_scorer_is_refused():
    with pytest.raises(ChunkwiseError, match="needs a scorer, got none"):
        run_chunks(ToyDenoiser(), None, image(), settings())


def test_nan_latents_and_frames_are_reported():
    class NanDenoiser(ToyDenoiser):
        def sample(self, *a, **kw):
            r = super().sample(*a, **kw)
            r.latent = r.latent * float("nan")
            return r

    with pytest.raises(ChunkwiseError, match=r"preview latent of chunk 0, candidate 0 contains .* NaN/inf"):
        run_chunks(NanDenoiser(), MeanColourScorer(), image(), settings())

    class NanDecode(ToyDenoiser):
        def decode(self, latent):
            return super().decode(latent) * float("nan")

    with pytest.raises(ChunkwiseError, match=r"frames of chunk 0 contains"):
        run_chunks(NanDecode(), None, image(), settings(candidates=1))


def test_a_scorer_returning_the_wrong_count_is_reported():
    with pytest.raises(ChunkwiseError, match=r"returned 2 scores for 1 preview"):
        run_chunks(ToyDenoiser(), ScriptedScorer([1.0] * 10, count=2), image(), settings())


def test_a_nan_or_infinite_score_is_reported():
    with pytest.raises(ChunkwiseError, match=r"score of chunk 0, candidate 1 is nan; expected a finite number"):
        run_chunks(ToyDenoiser(), ScriptedScorer([1.0, float("nan"), 0.0]), image(), settings())
    with pytest.raises(ChunkwiseError, match=r"score of chunk 0, candidate 0 is -inf"):
        run_chunks(ToyDenoiser(), ScriptedScorer([float("-inf"), 1.0, 0.0]), image(), settings())

    class InfiniteFrame(MeanColourScorer):
        def prepare(self, guide, anchor=None):
            inner = super().prepare(guide, anchor)

            class _Ctx:
                def score(self, previews):
                    out = inner.score(previews)
                    for s in out:
                        s.frame_scores[-1] = float("inf")
                    return out

            return _Ctx()

    with pytest.raises(ChunkwiseError, match=r"frame \d+ score of chunk 0, candidate 0 is inf"):
        run_chunks(ToyDenoiser(), InfiniteFrame(), image(), settings())


# --- search against drift ---


def colour_drift(video: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean absolute difference of per-channel means between the last frame and the input."""
    return (video[-1].mean(dim=(0, 1)) - reference[0].mean(dim=(0, 1))).abs().mean().item()


def test_search_keeps_colour_closer_to_the_input_than_naive_over_ten_chunks():
    """The toy model's colour bias depends on the noise; the bias of every chunk carries into
    the next through the guide hand-off. Search must keep the drift lower on average."""
    naive_drift, search_drift = [], []
    for seed in range(8):
        s = settings(chunks=10, seed=seed, candidates=6, k=2, steps=6)
        naive = run_chunks(ToyDenoiser(drift=0.02), None, image(), replace(s, search=replace(s.search, candidates=1)))
        searched = run_chunks(ToyDenoiser(drift=0.02), MeanColourScorer(), image(), s)
        naive_drift.append(colour_drift(naive.video(), image()))
        search_drift.append(colour_drift(searched.video(), image()))
    naive_mean = sum(naive_drift) / len(naive_drift)
    search_mean = sum(search_drift) / len(search_drift)
    print(f"colour drift after 10 chunks, mean of 8 seeds: naive {naive_mean:.4f}, search (m=6) {search_mean:.4f}")
    assert search_mean < 0.5 * naive_mean
    assert sum(s < n for s, n in zip(search_drift, naive_drift, strict=False)) >= 6


class _ConstantScorer(Scorer):
    name = "constant"

    def prepare(self, guide, anchor=None):
        class _C:
            def score(self, previews):
                return [CandidateScore(1.0, [1.0]) for _ in previews]

        return _C()


def test_constant_scores_choose_candidate_zero():
    result = run_chunks(ToyDenoiser(), _ConstantScorer(), image(), settings(chunks=2))
    assert all(c["chosen"] == 0 for c in result.report["chunks"])
