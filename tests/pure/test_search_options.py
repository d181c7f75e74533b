"""Tier 1: the search's cost options (batched candidates, preview frame stride, approximate
decode) on the toy denoiser; no ComfyUI."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks, search_chunk
from chunkwise.search.adaptive import frame_indices
from chunkwise.tests.pure.toys import FakeClock, MeanColourScorer, ToyDenoiser, image


class BatchToy(ToyDenoiser):
    """ToyDenoiser with ``sample_batch``: one call per batch, counted, same maths per noise."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.batches: list[int] = []

    def sample_batch(self, cond, noises, *, steps, start_step=0, end_step=None, resumes=None, callback=None,
                     seeds=None):
        self.batches.append(len(noises))
        resumes = resumes or [None] * len(noises)
        return [
            self.sample(cond, n, steps=steps, start_step=start_step, end_step=end_step, resume=r, seed=s)
            for n, r, s in zip(noises, resumes, seeds or [None] * len(noises), strict=True)
        ]


class StridedToy(ToyDenoiser):
    """ToyDenoiser with ``preview_decode`` that decodes only the strided frames (like SVD's per-frame VAE)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.frames_decoded = 0

    def preview_decode(self, latent, *, stride=1, approximate=False):
        picked = latent[frame_indices(latent.shape[0], stride)]
        self.frames_decoded += picked.shape[0]
        return self.decode(picked)


def run(den, search, chunks=3, seed=4):
    settings = LoopSettings(chunks=chunks, seed=seed, search=search, drop_first_frame=False)
    return run_chunks(den, MeanColourScorer(), image(), settings, clock=FakeClock())


def test_options_default_off_and_records_keep_their_keys():
    assert not SearchSettings().tuned
    result = run(ToyDenoiser(), SearchSettings(3, 2, 6))
    assert all("cost" not in c for c in result.report["chunks"])


@pytest.mark.parametrize("mode", ["short", "truncated"])
@pytest.mark.parametrize("batch", [2, 3, 5])
def test_batched_candidates_give_the_same_run_in_fewer_sampler_calls(mode, batch):
    search = SearchSettings(5, 2, 6, preview_mode=mode)
    plain = run(ToyDenoiser(), search)
    den = BatchToy()
    batched = run(den, replace(search, candidate_batch=batch))
    assert torch.equal(plain.video(), batched.video())
    for a, b in zip(plain.report["chunks"], batched.report["chunks"], strict=True):
        assert a["candidates"] == b["candidates"] and a["chosen_seed"] == b["chosen_seed"]
        assert a["nfe"] == b["nfe"]
        calls = -(-5 // batch)
        assert b["cost"]["preview_calls"] == calls and b["cost"]["nfe_saved"] == 0
    assert den.batches == ([batch] * (5 // batch) + ([5 % batch] if 5 % batch > 1 else [])) * 3


def test_candidate_batch_without_sample_batch_samples_one_by_one():
    den = ToyDenoiser()
    result = run(den, SearchSettings(4, 2, 6, candidate_batch=4), chunks=1)
    assert result.report["chunks"][0]["cost"]["preview_calls"] == 4
    assert len(den.calls) == 4 + 1


def test_batched_halving_resumes_each_survivor_from_its_own_state():
    search = SearchSettings(8, 4, 8, preview_mode="truncated", halving_k=1)
    plain = run(ToyDenoiser(), search)
    batched = run(BatchToy(), replace(search, candidate_batch=3))
    assert torch.equal(plain.video(), batched.video())
    assert [c["candidates"] for c in plain.report["chunks"]] == [c["candidates"] for c in batched.report["chunks"]]


def test_a_sample_batch_returning_the_wrong_count_is_reported():
    class Short(BatchToy):
        def sample_batch(self, cond, noises, **kw):
            return super().sample_batch(cond, noises, **kw)[:-1]

    with pytest.raises(ChunkwiseError, match="sample_batch returned 1 results for 2 noises"):
        search_chunk(Short(), MeanColourScorer(), image(), SearchSettings(2, 2, 6, candidate_batch=2), seed=0)


@pytest.mark.parametrize("total,stride,expected", [(5, 1, [0, 1, 2, 3, 4]), (5, 2, [0, 2, 4]), (6, 2, [0, 2, 4, 5]),
                                                   (25, 8, [0, 8, 16, 24]), (3, 10, [0, 2]), (1, 4, [0])])
def test_frame_indices_take_every_nth_frame_and_always_the_last(total, stride, expected):
    assert frame_indices(total, stride) == expected


def test_preview_stride_scores_only_the_strided_frames():
    search = SearchSettings(3, 2, 6, preview_stride=2)
    full_decode = run(ToyDenoiser(frames=6), search, chunks=2)  # decodes all 6, scores 4
    strided = run(StridedToy(frames=6), search, chunks=2)  # decodes and scores 4
    for a, b in zip(full_decode.report["chunks"], strided.report["chunks"], strict=True):
        assert all(len(c["frame_scores"]) == 4 for c in a["candidates"] + b["candidates"])
        assert a["candidates"] == b["candidates"]
        assert a["cost"]["frames_decoded"] == 3 * 6 and b["cost"]["frames_decoded"] == 3 * 4
        assert a["cost"]["frames_scored"] == b["cost"]["frames_scored"] == 3 * 4
    # The chunks themselves are complete: stride only touches the previews.
    assert strided.video().shape[0] == 2 * 6


def test_stride_scores_are_the_full_scores_of_the_same_frames():
    den = ToyDenoiser(frames=7)
    full = search_chunk(den, MeanColourScorer(), image(), SearchSettings(3, 2, 6), seed=3)
    strided = search_chunk(ToyDenoiser(frames=7), MeanColourScorer(), image(), SearchSettings(3, 2, 6, preview_stride=3),
                           seed=3)
    for a, b in zip(full.record.candidates, strided.record.candidates, strict=True):
        assert b["frame_scores"] == [a["frame_scores"][i] for i in frame_indices(7, 3)]
        assert b["score"] == min(b["frame_scores"]) >= a["score"]


def test_approximate_decode_needs_a_denoiser_that_offers_it():
    with pytest.raises(ChunkwiseError, match="preview_decode='approx' needs a denoiser with preview_decode"):
        search_chunk(ToyDenoiser(), MeanColourScorer(), image(), SearchSettings(2, 2, 6, preview_decode="approx"),
                     seed=0)


def test_approximate_decode_is_refused_before_a_run_folder_is_made(tmp_path):
    from chunkwise.search.sinks import DiskSink

    den = ToyDenoiser()
    settings = LoopSettings(chunks=2, seed=0, search=SearchSettings(2, 2, 6, preview_decode="approx"))
    with pytest.raises(ChunkwiseError, match="preview_decode='approx' needs a denoiser"):
        run_chunks(den, MeanColourScorer(), image(), settings, sink=DiskSink(tmp_path, "run"))
    assert list(tmp_path.iterdir()) == [] and den.nfe == 0


def test_approximate_decode_is_requested_from_the_denoiser():
    seen = []

    class Approx(StridedToy):
        def preview_decode(self, latent, *, stride=1, approximate=False):
            seen.append((stride, approximate))
            return self.decode(latent[::2]) if approximate else super().preview_decode(latent, stride=stride)

    out = search_chunk(Approx(), MeanColourScorer(), image(), SearchSettings(2, 2, 6, preview_decode="approx"), seed=0)
    assert seen == [(1, True), (1, True)]
    assert out.record.cost["frames_decoded"] == 0 and out.record.cost["frames_scored"] == 2 * 3


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"candidate_batch": 0}, "candidate_batch must be at least 1, got 0"),
        ({"preview_stride": 0}, "preview_stride must be at least 1, got 0"),
        ({"preview_stride": 1.5}, "preview_stride must be an integer, got 1.5"),
        ({"preview_decode": "taesd"}, "preview_decode must be one of \\('vae', 'approx'\\), got 'taesd'"),
    ],
)
def test_bad_option_values_are_refused(kw, match):
    with pytest.raises(ChunkwiseError, match=match):
        SearchSettings(**kw).validate()


@pytest.mark.parametrize("mode, halving_k, allowed", [("short", 2, True), ("short", 4, False), ("short", 6, False),
                                                      ("truncated", 6, True)])
def test_successive_halving_must_cost_fewer_preview_evaluations_than_the_plain_search(mode, halving_k, allowed):
    # m=10, k=8: short rungs restart their schedule (10x4 + 5x8 = 80 = m*k at halving_k=4), truncated ones extend
    search = SearchSettings(candidates=10, k=8, steps=50, preview_mode=mode, halving_k=halving_k)
    if allowed:
        assert search.validate().nfe_per_chunk() < search.nfe_formula()
    else:
        with pytest.raises(ChunkwiseError, match=rf"halving_k={halving_k} costs \d+ preview evaluations per chunk in "
                                                 r"short mode, not fewer than the plain search's m\*k=80"):
            search.validate()
