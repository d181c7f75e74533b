"""Tier 1: colour anchoring (search/colour.py) on synthetic chunk chains; no ComfyUI."""

from __future__ import annotations

import pytest
import torch
from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks
from chunkwise.search.colour import anchor_colours, colour_drift, colour_stats, lab_to_rgb, rgb_to_lab
from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image


def textured(seed=0, h=16, w=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, h, w, 3, generator=g) * 0.6 + 0.2


def drifting_chain(anchor, chunks, strength, method="lab", frames=4):
    """Each chunk copies its guide with a colour cast, more contrast and more saturation,
    as a VAE round trip plus model bias does; the next chunk starts from its last frame."""
    guide, drifts = anchor, []
    gain = torch.tensor([1.06, 1.0, 0.95])
    for _ in range(chunks):
        mean = guide.mean(dim=(0, 1, 2), keepdim=True)
        chunk = ((guide - mean) * 1.08 + mean) * gain + torch.tensor([0.02, 0.0, -0.015])
        chunk = chunk.clamp(0, 1).repeat(frames, 1, 1, 1)
        chunk = anchor_colours(chunk, anchor, strength, method)
        drifts.append(colour_drift(chunk, anchor))
        guide = chunk[-1:]
    return drifts


def test_lab_round_trip_is_close_to_identity():
    x = textured(1)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)).float(), x, atol=1e-5)
    # White is L=100, a=b=0.
    white = rgb_to_lab(torch.ones(1, 1, 3))[0, 0]
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0], dtype=white.dtype), atol=1e-2)


def test_lab_conversion_stays_on_the_frames_device():
    # frames decoded on a GPU stay there: the conversion constants follow them (meta: no data, same rules)
    frames = torch.empty(2, 4, 4, 3, device="meta")
    assert rgb_to_lab(frames).device.type == "meta"
    assert lab_to_rgb(rgb_to_lab(frames)).device.type == "meta"


@pytest.mark.parametrize("method", ["lab", "rgb"])
def test_anchoring_holds_a_drifting_chain_near_the_anchor(method):
    anchor = textured(0)
    free = drifting_chain(anchor, 10, 0.0, method)
    held = drifting_chain(anchor, 10, 1.0, method)
    half = drifting_chain(anchor, 10, 0.5, method)
    print(f"\n[{method}] drift per chunk without anchoring: {[round(d, 2) for d in free]}")
    print(f"[{method}] drift per chunk with strength 0.5:   {[round(d, 2) for d in half]}")
    print(f"[{method}] drift per chunk with strength 1.0:   {[round(d, 2) for d in held]}")
    # Without anchoring the drift accumulates chunk after chunk.
    assert free[-1] > 3 * free[0] and free[-1] > 10.0
    # With full anchoring it stays small (Lab units; ~2.3 is just noticeable) and does not grow.
    assert max(held) < 0.1 * free[-1]
    assert held[-1] < 2.3
    # Half strength lies in between.
    assert held[-1] < half[-1] < free[-1]


def test_strength_zero_returns_the_frames_unchanged_and_inputs_are_not_modified():
    frames, anchor = textured(3).repeat(2, 1, 1, 1), textured(0)
    before = frames.clone()
    assert anchor_colours(frames, anchor, 0.0) is frames
    out = anchor_colours(frames, anchor, 1.0)
    assert torch.equal(frames, before)
    assert out.shape == frames.shape and out.dtype == frames.dtype
    mean_o, std_o = colour_stats(out)
    mean_a, std_a = colour_stats(anchor)
    assert torch.allclose(mean_o, mean_a, atol=0.5) and torch.allclose(std_o, std_a, atol=0.5)


def test_flat_chunk_is_shifted_not_blown_up():
    flat = torch.full((2, 4, 4, 3), 0.3)
    out = anchor_colours(flat, textured(0), 1.0, "rgb")
    assert torch.isfinite(out).all()
    assert torch.allclose(out, out[0, 0, 0].expand_as(out))  # still flat


@pytest.mark.parametrize("bad", [-0.1, 1.5, "1", True, float("nan")])
def test_bad_strength_is_refused_with_the_value(bad):
    with pytest.raises(ChunkwiseError, match="colour_anchor strength"):
        anchor_colours(textured(0), textured(1), bad)


def test_engine_applies_anchoring_before_the_hand_off():
    settings = LoopSettings(chunks=4, seed=3, search=SearchSettings(3, 2, 6), colour_anchor=1.0)
    den = ToyDenoiser(drift=0.3)
    img = image(seed=2)
    anchored = run_chunks(den, MeanColourScorer(), img, settings)
    free = run_chunks(ToyDenoiser(drift=0.3), MeanColourScorer(), img, LoopSettings(**{**settings.__dict__, "colour_anchor": 0.0}))
    # Chunk 1's guide is chunk 0's anchored last frame.
    assert torch.equal(den.guides[1], anchored.sink.chunks[0][-1:])
    d_anch = colour_drift(anchored.sink.chunks[-1], img)
    d_free = colour_drift(free.sink.chunks[-1], img)
    print(f"\ntoy chain, last chunk drift: free {d_free:.2f}, anchored {d_anch:.2f}")
    assert d_anch < d_free
    assert anchored.report["settings"]["colour_anchor"] == 1.0
    with pytest.raises(ChunkwiseError, match="method"):
        LoopSettings(colour_anchor=0.5, colour_method="hsv").validate()
