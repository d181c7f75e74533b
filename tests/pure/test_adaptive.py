"""Tier 1: adaptive search (successive halving, early accept) on toy denoisers; no ComfyUI.

``LeakyToyDenoiser`` makes the preview an imperfect judge, as in a real model:
its x0 prediction at noise level sigma is the true chunk plus ``sigma`` times a
colour error drawn from the noise, so short previews rank candidates with
noise and longer ones rank them more and more like the finished chunks.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks, search_chunk
from chunkwise.search.adaptive import Rung, halving_preview_nfe, halving_rungs, keep_best
from chunkwise.search.noise import make_noise
from chunkwise.search.protocols import SampleResult
from chunkwise.tests.pure.toys import MeanColourScorer, ScriptedScorer, ToyDenoiser, image


class LeakyToyDenoiser(ToyDenoiser):
    """ToyDenoiser whose x0 prediction at sigma carries ``leak * sigma`` of a second, noise-drawn colour error."""

    def __init__(self, frames: int = 5, drift: float = 0.05, leak: float = 0.15) -> None:
        super().__init__(frames=frames, drift=drift)
        self.leak = leak

    def leak_bias(self, noise):
        # Drawn from the first frame only: independent of bias(), which sums all frames.
        n = noise[0].numel() // noise.shape[1]
        return self.leak * noise[0].sum(dim=(1, 2)) / n**0.5

    def sample(self, cond, noise, *, steps, start_step=0, end_step=None, resume=None, callback=None, seed=None):
        end_step = steps if end_step is None else end_step
        self.calls.append({"steps": steps, "start": start_step, "end": end_step, "resume": resume is not None})
        sigmas = torch.linspace(1.0, 0.0, steps + 1)
        if resume is not None:
            assert resume.end_step == start_step and resume.steps == steps
            x, (bias, err) = resume.latent.clone(), resume.state
        else:
            assert start_step == 0
            self.noises.append(noise.clone())
            x, bias, err = noise.clone(), self.bias(noise), self.leak_bias(noise)
        truth = self.target(cond, bias)
        x0 = truth
        for i in range(start_step, end_step):
            self.nfe += 1
            s, s_next = sigmas[i], sigmas[i + 1]
            x0 = truth + s * err.view(1, -1, 1, 1)
            x = x + (s_next - s) * (x - x0) / s
            if callback is not None:
                callback(i, x0)
        return SampleResult(latent=x, x0=x0, steps=steps, start_step=start_step, end_step=end_step,
                            state=(bias, err))


def matching_rate(adaptive: SearchSettings, full: SearchSettings, chunks: int = 40) -> tuple[float, list[int]]:
    """How often ``adaptive`` picks the same winner as ``full``, over ``chunks`` independent chunks."""
    same, used = 0, []
    for c in range(chunks):
        guide = image(seed=c)
        a = search_chunk(LeakyToyDenoiser(), MeanColourScorer(), guide, adaptive, seed=1000 * c)
        b = search_chunk(LeakyToyDenoiser(), MeanColourScorer(), guide, full, seed=1000 * c)
        same += a.record.chosen_seed == b.record.chosen_seed
        used.append(a.record.nfe["preview"] + a.record.nfe["full"])
    return same / chunks, used


# --- the schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "m,k,first,expected",
    [
        (8, 8, 2, [(2, 8), (4, 4), (8, 2)]),
        (8, 8, 1, [(1, 8), (2, 4), (4, 2)]),  # stops before a rung of one
        (5, 6, 2, [(2, 5), (4, 3), (6, 2)]),  # k capped at the final length
        (2, 8, 2, [(2, 2)]),  # nothing left to compare after one rung
        (4, 8, 8, [(8, 4)]),  # first rung at k: the plain search
    ],
)
def test_halving_rungs(m, k, first, expected):
    assert halving_rungs(m, k, first) == [Rung(kr, n) for kr, n in expected]


def test_halving_nfe_extends_truncated_rungs_and_restarts_short_ones():
    rungs = halving_rungs(8, 8, 2)
    assert halving_preview_nfe(rungs, truncated=True) == 8 * 2 + 4 * (4 - 2) + 2 * (8 - 4)
    assert halving_preview_nfe(rungs, truncated=False) == 8 * 2 + 4 * 4 + 2 * 8


def test_keep_best_ties_to_the_lower_index_and_returns_index_order():
    scores = {0: 0.1, 1: 0.5, 2: 0.5, 3: 0.9, 4: 0.5}
    assert keep_best([0, 1, 2, 3, 4], scores, 3) == [1, 2, 3]
    assert keep_best([4, 2, 0], scores, 1) == [2]


# --- successive halving in the engine -------------------------------------------------


@pytest.mark.parametrize("mode", ["short", "truncated"])
def test_halving_counts_nfe_exactly_and_reports_what_it_saved(mode):
    search = SearchSettings(candidates=8, k=8, steps=12, preview_mode=mode, halving_k=2)
    den = LeakyToyDenoiser()
    result = run_chunks(den, MeanColourScorer(), image(), LoopSettings(chunks=3, seed=5, search=search))
    truncated = mode == "truncated"
    preview = 8 * 2 + 4 * 2 + 2 * 4 if truncated else 8 * 2 + 4 * 4 + 2 * 8
    full = 12 - 8 if truncated else 12
    formula = 8 * 8 + full
    assert search.nfe_per_chunk() == preview + full
    for chunk in result.report["chunks"]:
        assert chunk["nfe"] == {"preview": preview, "full": full}
        assert chunk["cost"]["nfe_formula"] == formula == search.nfe_formula()
        assert chunk["cost"]["nfe_saved"] == formula - (preview + full)
        ks = [r["k"] for r in chunk["cost"]["rungs"]]
        sizes = [len(r["candidates"]) for r in chunk["cost"]["rungs"]]
        assert (ks, sizes) == ([2, 4, 8], [8, 4, 2])
        # Survivors are the best of the rung before.
        rungs = chunk["cost"]["rungs"]
        for r in range(1, len(rungs)):
            earlier = {j: chunk["candidates"][j]["rung_scores"][r - 1] for j in rungs[r - 1]["candidates"]}
            ranked = sorted(earlier, key=lambda j: (-earlier[j], j))
            assert rungs[r]["candidates"] == sorted(ranked[: len(rungs[r]["candidates"])])
        last = chunk["cost"]["rungs"][-1]["candidates"]
        assert chunk["chosen"] in last
        finals = {j: chunk["candidates"][j]["score"] for j in last}
        assert chunk["chosen"] == max(last, key=lambda j: (finals[j], -j))
        # Frames decoded and scored: one preview per candidate per rung, 5 frames each.
        assert chunk["cost"]["frames_decoded"] == chunk["cost"]["frames_scored"] == (8 + 4 + 2) * 5
    assert den.nfe == result.report["totals"]["nfe"] == 3 * (preview + full)


def test_halving_keeps_the_better_half_of_each_rung():
    # 4 candidates, rungs (1, 4) -> (2, 2): scores of rung 1 decide who is extended.
    search = SearchSettings(candidates=4, k=2, steps=6, preview_mode="truncated", halving_k=1)
    scorer = ScriptedScorer([0.3, 0.9, 0.1, 0.8, 0.2, 0.4])
    den = LeakyToyDenoiser()
    out = search_chunk(den, scorer, image(), search, seed=40)
    assert out.record.cost["rungs"] == [{"k": 1, "candidates": [0, 1, 2, 3]}, {"k": 2, "candidates": [1, 3]}]
    assert [c.get("rung_scores") for c in out.record.candidates] == [[0.3], [0.9, 0.2], [0.1], [0.8, 0.4]]
    assert out.record.chosen == 3 and out.record.chosen_seed == 43
    # Rung 2 resumed rung 1's previews; the winner resumed its rung-2 preview at step 2.
    windows = [(c["start"], c["end"], c["resume"]) for c in den.calls]
    assert windows == [(0, 1, False)] * 4 + [(1, 2, True)] * 2 + [(2, 6, True)]


def test_truncated_halving_winner_resumes_to_the_same_chunk_as_a_full_run_from_its_noise():
    search = SearchSettings(candidates=6, k=4, steps=8, preview_mode="truncated", halving_k=1)
    out = search_chunk(LeakyToyDenoiser(), MeanColourScorer(), image(3), search, seed=9)
    ref = LeakyToyDenoiser()
    template = ref.latent_template(image(3))
    full = ref.sample(image(3), make_noise(template, out.record.chosen_seed), steps=8)
    torch.testing.assert_close(out.latent, full.latent)


@pytest.mark.parametrize("mode", ["short", "truncated"])
def test_halving_picks_the_full_search_winner_in_most_chunks(mode):
    full = SearchSettings(candidates=8, k=8, steps=16, preview_mode=mode)
    halving = replace(full, halving_k=2)
    rate, used = matching_rate(halving, full)
    assert rate >= 0.75, rate
    assert set(used) == {halving.nfe_per_chunk()} and halving.nfe_per_chunk() < full.nfe_per_chunk()
    # The leak is what makes the question non-trivial: one-step previews alone do worse.
    rate_k1, _ = matching_rate(replace(full, k=1), full)
    assert rate_k1 < rate


# --- early accept ------------------------------------------------------------------


def test_early_accept_stops_at_the_first_preview_reaching_the_threshold():
    search = SearchSettings(candidates=5, k=2, steps=6, accept_score=0.5)
    den = ToyDenoiser()
    out = search_chunk(den, ScriptedScorer([0.1, 0.4, 0.7, 0.9, 0.95]), image(), search, seed=20)
    assert len(out.record.candidates) == 3 and out.record.chosen == 2 and out.record.chosen_seed == 22
    assert out.record.nfe == {"preview": 3 * 2, "full": 6}
    assert out.record.cost["accepted"] == 2
    assert out.record.cost["nfe_saved"] == (5 * 2 + 6) - (3 * 2 + 6) == 2 * 2
    assert search.nfe_per_chunk() == 5 * 2 + 6  # the most a chunk can use


def test_early_accept_that_never_fires_is_the_full_search():
    search = SearchSettings(candidates=4, k=2, steps=6, preview_mode="truncated")
    strict = replace(search, accept_score=10.0)
    a = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), LoopSettings(chunks=3, seed=2, search=search))
    b = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), LoopSettings(chunks=3, seed=2, search=strict))
    assert torch.equal(a.video(), b.video())
    assert [c["chosen_seed"] for c in a.report["chunks"]] == [c["chosen_seed"] for c in b.report["chunks"]]
    assert all(c["cost"]["accepted"] is None and c["cost"]["nfe_saved"] == 0 for c in b.report["chunks"])


def test_early_accept_saves_nfe_and_the_progress_total_still_ends_at_100_percent():
    search = SearchSettings(candidates=8, k=4, steps=8)
    seen = []
    from chunkwise.search import Hooks

    lenient = replace(search, accept_score=-0.02)
    hooks = Hooks(on_progress=lambda d, t: seen.append((d, t)))
    result = run_chunks(ToyDenoiser(), MeanColourScorer(), image(), LoopSettings(chunks=4, seed=1, search=lenient),
                        hooks=hooks)
    used = [c["nfe"]["preview"] + c["nfe"]["full"] for c in result.report["chunks"]]
    drawn = [len(c["candidates"]) for c in result.report["chunks"]]
    assert used == [n * 4 + 8 for n in drawn]
    assert [c["cost"]["nfe_saved"] for c in result.report["chunks"]] == [(8 - n) * 4 for n in drawn]
    assert min(drawn) < 8  # the threshold is reached on this seed
    for c in result.report["chunks"]:
        scores = [cand["score"] for cand in c["candidates"]]
        assert all(v < -0.02 for v in scores[:-1]) and scores[-1] >= -0.02 or len(scores) == 8
    assert seen[-1] == (4 * search.nfe_per_chunk(), 4 * search.nfe_per_chunk())
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_early_accept_and_halving_are_refused_together_and_bad_values_are_named():
    with pytest.raises(ChunkwiseError, match="cannot be combined"):
        SearchSettings(candidates=4, k=4, steps=8, accept_score=0.5, halving_k=1).validate()
    with pytest.raises(ChunkwiseError, match="halving_k must be smaller than k, got halving_k=4, k=4"):
        SearchSettings(candidates=4, k=4, steps=8, halving_k=4).validate()
    with pytest.raises(ChunkwiseError, match="accept_score must be a finite number or None, got nan"):
        SearchSettings(accept_score=float("nan")).validate()
    with pytest.raises(ChunkwiseError, match="halving_k must be at least 0, got -1"):
        SearchSettings(halving_k=-1).validate()
