"""Scorer formulas, ranking and caching with hand-made deterministic encoders (no models, no comfy)."""

from __future__ import annotations

import math

import pytest
import torch
from chunkwise.scorers import (
    AestheticScore,
    CallableEncoder,
    ClipMinCosine,
    ComfyClipVisionEncoder,
    Composite,
    CompositeScore,
    LinearHead,
    MotionGuard,
    SubjectConsistency,
    TemporalFlicker,
    frame_indices,
    load_aesthetic_head,
)
from chunkwise.search import ChunkwiseError, LoopSettings, SearchSettings, run_chunks
from chunkwise.search.protocols import Scorer
from chunkwise.tests.pure.toys import ToyDenoiser, image

# ---------------------------------------------------------------- hand-made encoders


def mean_colour(batch: torch.Tensor) -> torch.Tensor:
    """[n, H, W, 3] -> mean RGB [n, 3]: cosines are exact by hand."""
    return batch.mean(dim=(1, 2))


def colour_histogram(batch: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """[n, H, W, 3] -> per-channel soft histograms [n, 3 * bins]: deterministic, colour-sensitive."""
    centres = (torch.arange(bins, dtype=torch.float32) + 0.5) / bins
    x = batch.float().reshape(batch.shape[0], -1, 3, 1)  # [n, P, 3, 1]
    weights = torch.exp(-(((x - centres) * bins) ** 2))  # [n, P, 3, bins]
    return weights.mean(dim=1).reshape(batch.shape[0], -1)


def tiny_pixels(batch: torch.Tensor) -> torch.Tensor:
    """[n, H, W, 3] -> the frame pooled to 4x4, flattened: sensitive to where things are."""
    x = batch.movedim(-1, 1)
    return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def solid(*rgb: float, h: int = 4, w: int = 6) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(1, 1, 1, 3).expand(1, h, w, 3).clone()


def frames(*colours) -> torch.Tensor:
    return torch.cat([solid(*c) for c in colours], dim=0)


# ---------------------------------------------------------------- frame selection


def test_frame_indices_keep_first_and_last():
    assert frame_indices(25, 1) == list(range(25))
    assert frame_indices(25, 4) == [0, 4, 8, 12, 16, 20, 24]
    assert frame_indices(10, 4) == [0, 4, 8, 9]
    assert frame_indices(1, 3) == [0]
    assert frame_indices(5, 100) == [0, 4]
    with pytest.raises(ChunkwiseError, match="frame_stride must be an integer >= 1, got 0"):
        frame_indices(5, 0)


# ---------------------------------------------------------------- ClipMinCosine


def test_min_over_frames_is_exact_on_known_example():
    scorer = ClipMinCosine(CallableEncoder(mean_colour))
    guide = solid(0.5, 0.0, 0.0)
    preview = frames((0.5, 0.0, 0.0), (0.5, 0.5, 0.0), (0.2, 0.2, 0.2), (0.3, 0.0, 0.3))
    [result] = scorer.score(guide, [preview])
    expected = [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 1 / math.sqrt(2)]
    assert result.frame_scores == pytest.approx(expected, abs=1e-6)
    assert result.score == pytest.approx(1 / math.sqrt(3), abs=1e-6)


def test_anchor_weight_blends_guide_and_anchor_per_frame_then_takes_min():
    w = 0.25
    scorer = ClipMinCosine(CallableEncoder(mean_colour), anchor_weight=w)
    guide, anchor = solid(1.0, 0.0, 0.0), solid(0.0, 1.0, 0.0)
    preview = frames((1.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 1.0))
    [result] = scorer.score(guide, [preview], anchor=anchor)
    r2 = 1 / math.sqrt(2)
    expected = [(1 - w) * r2 + w * r2, (1 - w) * 1.0 + w * 0.0, (1 - w) * 0.0 + w * r2]
    assert result.frame_scores == pytest.approx(expected, abs=1e-6)
    assert result.score == pytest.approx(min(expected), abs=1e-6)
    # Without an anchor the option falls back to the paper's formula.
    [paper] = scorer.score(guide, [preview])
    assert paper.frame_scores == pytest.approx([r2, 1.0, 0.0], abs=1e-6)


def test_frame_stride_scores_only_selected_frames_and_the_last():
    encoder = CallableEncoder(mean_colour)
    scorer = ClipMinCosine(encoder, frame_stride=3)
    guide = solid(1.0, 0.0, 0.0)
    # Frame 1 is the worst, but stride 3 skips it; the last frame (4) is always scored.
    preview = frames((1, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (1, 0, 1))
    ctx = scorer.prepare(guide)
    idx, _ = ctx.frame_similarities(preview)
    assert idx == [0, 3, 4]
    [result] = ctx.score([preview])
    assert result.frame_scores == pytest.approx([1.0, 1 / math.sqrt(2), 1 / math.sqrt(2)], abs=1e-6)
    assert encoder.images_encoded == 1 + 3 + 3  # guide once; 3 frames per scoring pass


def test_drifting_preview_loses_to_one_that_stays_when_anchored():
    # The video started grey-blue; two chunks later the guide has drifted warm. Candidate "drift"
    # keeps warming, candidate "stay" pulls back. Scored against the guide alone they are nearly
    # tied; with the anchor the one that stays wins clearly.
    anchor = solid(0.35, 0.45, 0.60, h=8, w=8)
    guide = solid(0.50, 0.45, 0.45, h=8, w=8)
    step = torch.tensor([0.04, 0.0, -0.04])
    drift = torch.cat([guide + step * t for t in range(5)]).clamp(0, 1)
    stay = torch.cat([guide - step * t for t in range(5)]).clamp(0, 1)
    encoder = CallableEncoder(colour_histogram)
    plain = ClipMinCosine(encoder)
    anchored = ClipMinCosine(encoder, anchor_weight=0.5)
    p_drift, p_stay = (s.score for s in plain.score(guide, [drift, stay], anchor=anchor))
    a_drift, a_stay = (s.score for s in anchored.score(guide, [drift, stay], anchor=anchor))
    assert a_stay > a_drift
    assert (a_stay - a_drift) > (p_stay - p_drift) + 0.05


def test_guide_and_anchor_encoded_once_per_chunk():
    encoder = CallableEncoder(colour_histogram)
    scorer = ClipMinCosine(encoder, anchor_weight=0.3, frame_stride=2)
    guide, anchor = image(8, 8, seed=1), image(8, 8, seed=2)
    ctx = scorer.prepare(guide, anchor)
    assert (encoder.calls, encoder.images_encoded) == (1, 2)
    for seed in range(5):
        ctx.score([image(8, 8, seed=10 + seed).expand(7, 8, 8, 3)])
    # 5 candidates x frames {0, 2, 4, 6}; the references are never encoded again.
    assert (encoder.calls, encoder.images_encoded) == (1 + 5, 2 + 5 * 4)
    # An anchor equal to the guide (the first chunk) is encoded once, not twice.
    scorer.prepare(guide, guide.clone())
    assert encoder.images_encoded == 2 + 5 * 4 + 1


def test_engine_encodes_references_once_per_chunk():
    calls = []

    def spy(batch):
        calls.append(batch.shape[0])
        return colour_histogram(batch)

    denoiser = ToyDenoiser(frames=5, drift=0.05)
    scorer = ClipMinCosine(CallableEncoder(spy), anchor_weight=0.5)
    settings = LoopSettings(chunks=3, seed=3, search=SearchSettings(candidates=4, k=2, steps=6))
    run_chunks(denoiser, scorer, image(8, 8), settings)
    # Chunk 1: anchor == guide -> 1 image; chunks 2, 3: guide + anchor in one call. Then 4 previews of 5 frames.
    assert calls == [1, 5, 5, 5, 5] + [2, 5, 5, 5, 5] * 2


def test_anchor_keeps_a_chunk_chain_closer_to_the_input_colour():
    # Colour drift accumulates through the guide hand-off (ToyDenoiser); scoring against the
    # original image as well picks noises that pull the chain back.
    encoder = CallableEncoder(colour_histogram)
    start = image(8, 8, seed=0)

    def final_drift(weight: float, seed: int) -> float:
        settings = LoopSettings(chunks=6, seed=seed, search=SearchSettings(candidates=6, k=2, steps=4))
        result = run_chunks(
            ToyDenoiser(frames=4, drift=0.2), ClipMinCosine(encoder, anchor_weight=weight), start, settings
        )
        last = result.last_frame[0]
        return float((last.mean(dim=(0, 1)) - start[0].mean(dim=(0, 1))).abs().mean())

    plain = [final_drift(0.0, s) for s in range(4)]
    anchored = [final_drift(0.7, s) for s in range(4)]
    assert sum(anchored) < sum(plain)


# ---------------------------------------------------------------- other verifiers


def test_temporal_flicker_matches_vbench_normalisation():
    preview = frames((0, 0, 0), (10 / 255, 10 / 255, 10 / 255), (10 / 255, 40 / 255, 10 / 255))
    [result] = TemporalFlicker().score(solid(0, 0, 0), [preview])
    d = [10.0, 10.0]  # mean |diff| on 0..255 for pairs (0, 1) and (1, 2)
    assert result.frame_scores == pytest.approx([(255 - x) / 255 for x in d], abs=1e-6)
    assert result.score == pytest.approx((255 - 10) / 255, abs=1e-6)
    [still] = TemporalFlicker().score(solid(0, 0, 0), [preview[:1].expand(3, -1, -1, -1)])
    assert still.score == 1.0


def test_motion_guard_penalises_static_previews_only():
    guard = MotionGuard(min_motion=0.02)
    guide = image(16, 16, seed=4)
    static = guide.expand(5, -1, -1, -1)
    moving = torch.cat([torch.roll(guide, shifts=2 * t, dims=2) for t in range(5)])
    [s_static, s_moving] = guard.score(guide, [static, moving])
    assert s_static.score == -1.0
    assert s_moving.score == 0.0
    slow = torch.cat([guide + 0.01 * t for t in range(5)])  # mean change 0.01 = half of min_motion
    assert guard.score(guide, [slow])[0].score == pytest.approx(-0.5, abs=1e-5)


def test_static_preview_loses_to_moving_one_with_motion_guard():
    guide = image(16, 16, seed=5)
    static = guide.expand(5, -1, -1, -1).clone()
    moving = torch.cat([torch.roll(guide, shifts=2 * t, dims=2) for t in range(5)])
    clip = ClipMinCosine(CallableEncoder(tiny_pixels))
    s_static, s_moving = (r.score for r in clip.score(guide, [static, moving]))
    assert s_static > s_moving  # the min-over-frames rule rewards the frozen chunk
    guarded = Composite([(clip, 1.0), (MotionGuard(min_motion=0.02), 0.5)])
    g_static, g_moving = guarded.score(guide, [static, moving])
    assert g_moving.score > g_static.score
    assert g_static.components == {"clip-min-cos": pytest.approx(s_static), "motion-guard": -1.0}


def test_subject_consistency_is_vbench_formula():
    def signed(batch):
        return batch.mean(dim=(1, 2)) - 0.5

    guide = solid(1.0, 0.5, 0.5)  # feature (0.5, 0, 0)
    preview = frames((1.0, 0.5, 0.5), (0.5, 1.0, 0.5), (0.0, 0.5, 0.5))  # (.5,0,0), (0,.5,0), (-.5,0,0)
    r2 = 1 / math.sqrt(2)
    [within] = SubjectConsistency(CallableEncoder(signed), use_guide=False).score(guide, [preview])
    # Frame 1 is orthogonal to frame 0, its first and previous frame: (0 + 0) / 2; frame 2 is opposite frame 0
    # (clipped to 0) and orthogonal to frame 1: (0 + 0) / 2.
    assert within.frame_scores == pytest.approx([0.0, 0.0], abs=1e-6)
    preview2 = frames((1.0, 0.5, 0.5), (1.0, 1.0, 0.5), (1.0, 1.0, 0.5))  # (.5,0,0), (.5,.5,0), (.5,.5,0)
    [res] = SubjectConsistency(CallableEncoder(signed), use_guide=True).score(guide, [preview2])
    # F = [guide, f1, f2, f3]: t=2: (1 + 1)/2; t=3: (r2 + r2)/2; t=4: (r2 + 1)/2.
    expected = [1.0, r2, (r2 + 1) / 2]
    assert res.frame_scores == pytest.approx(expected, abs=1e-6)
    assert res.score == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_aesthetic_linear_head_from_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "head.safetensors"
    save_file({"weight": torch.tensor([[10.0, 0.0, 0.0]]), "bias": torch.tensor([1.0])}, str(path))
    scorer = AestheticScore(CallableEncoder(mean_colour), load_aesthetic_head(path))
    preview = frames((1.0, 0.0, 0.0), (1.0, 1.0, 0.0))  # normalised red component: 1 and 1/sqrt(2)
    [result] = scorer.score(solid(0, 0, 0), [preview])
    expected = [(10 * 1.0 + 1) / 10, (10 / math.sqrt(2) + 1) / 10]
    assert result.frame_scores == pytest.approx(expected, abs=1e-6)
    assert result.score == pytest.approx(sum(expected) / 2, abs=1e-6)


def test_aesthetic_mlp_head_is_a_chain_of_linears(tmp_path):
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 4), torch.nn.Linear(4, 1)
    )  # the "improved" predictor's layout: no activations
    torch.save({"layers." + k: v for k, v in mlp.state_dict().items()}, tmp_path / "mlp.pth")
    head = load_aesthetic_head(tmp_path / "mlp.pth")
    x = torch.nn.functional.normalize(torch.rand(5, 3), dim=-1)
    assert torch.allclose(head(x), mlp.eval()(x).squeeze(-1), atol=1e-6)


def test_aesthetic_head_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="models/aesthetic"):
        load_aesthetic_head(tmp_path / "missing.pth")
    head = LinearHead({"weight": torch.ones(1, 768), "bias": torch.zeros(1)})
    scorer = AestheticScore(CallableEncoder(mean_colour), head)
    with pytest.raises(ChunkwiseError, match="takes 768-dim embeddings, encoder 'callable' gives 3"):
        scorer.score(solid(0, 0, 0), [frames((1, 0, 0))])


# ---------------------------------------------------------------- composite


def test_composite_is_weighted_sum_with_components():
    clip = ClipMinCosine(CallableEncoder(mean_colour))
    clip2 = ClipMinCosine(CallableEncoder(mean_colour), frame_stride=2)
    flicker = TemporalFlicker()
    comp = Composite([(clip, 2.0), (flicker, -1.0), (clip2, 0.5)])
    guide = solid(1.0, 0.0, 0.0)
    preview = frames((1, 0, 0), (1, 1, 0), (1, 1, 1))
    [res] = comp.score(guide, [preview])
    c = clip.score(guide, [preview])[0]
    f = flicker.score(guide, [preview])[0]
    assert isinstance(res, CompositeScore)
    assert res.score == pytest.approx(2.0 * c.score - f.score + 0.5 * c.score, abs=1e-6)
    assert res.frame_scores == c.frame_scores
    assert list(res.components) == ["clip-min-cos", "temporal-flicker", "clip-min-cos#2"]
    assert "2*clip-min-cos" in comp.describe() and "-1*temporal-flicker" in comp.describe()
    with pytest.raises(ChunkwiseError, match="at least one"):
        Composite([])
    with pytest.raises(ChunkwiseError, match=r"part 0 must be a \(Scorer, weight\) pair"):
        Composite([clip])


# ---------------------------------------------------------------- plumbing and errors


class FakeClipVision:
    """Duck-typed stand-in for ComfyUI's CLIP_VISION: counts encode_image calls."""

    def __init__(self):
        self.batches = []

    def encode_image(self, image, crop=True):
        self.batches.append(image.shape[0])

        class Out:
            image_embeds = colour_histogram(image)

        return Out()


def test_comfy_encoder_batches_and_normalises():
    cv = FakeClipVision()
    enc = ComfyClipVisionEncoder(cv, batch_size=2)
    emb = enc.encode(image(8, 8).expand(5, -1, -1, -1))
    assert cv.batches == [2, 2, 1]
    assert emb.shape == (5, 24)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(5))
    assert enc.calls == 1 and enc.images_encoded == 5


def test_bad_settings_and_inputs_are_refused_with_the_value():
    enc = CallableEncoder(mean_colour)
    with pytest.raises(ChunkwiseError, match="anchor_weight must be in"):
        ClipMinCosine(enc, anchor_weight=1.5)
    with pytest.raises(ChunkwiseError, match="frame_stride must be an integer >= 1, got 2.5"):
        ClipMinCosine(enc, frame_stride=2.5)
    with pytest.raises(ChunkwiseError, match="batch_size must be an integer >= 1, got 0"):
        CallableEncoder(mean_colour, batch_size=0)
    with pytest.raises(ChunkwiseError, match="min_motion must be in"):
        MotionGuard(min_motion=0)
    ctx = ClipMinCosine(enc).prepare(solid(1, 0, 0))
    with pytest.raises(ChunkwiseError, match=r"got shape \[5, 4, 6, 8\]; pass decoded RGB frames, not latents"):
        ctx.score([torch.rand(5, 4, 6, 8)])
    with pytest.raises(ChunkwiseError, match="guide image must be one image, got a batch of 2"):
        ClipMinCosine(enc).prepare(torch.rand(2, 4, 4, 3))


def test_every_scorer_follows_the_protocol():
    enc = CallableEncoder(mean_colour)
    scorers = [
        ClipMinCosine(enc),
        SubjectConsistency(enc),
        TemporalFlicker(),
        MotionGuard(),
        AestheticScore(enc, LinearHead({"weight": torch.ones(1, 3)})),
        Composite([(TemporalFlicker(), 1.0)]),
    ]
    previews = [image(8, 8, seed=s).expand(4, -1, -1, -1) for s in range(3)]
    for scorer in scorers:
        assert isinstance(scorer, Scorer)
        out = scorer.prepare(image(8, 8)).score(previews)
        assert len(out) == 3 and all(math.isfinite(r.score) for r in out), scorer.describe()
        assert isinstance(scorer.describe(), str) and scorer.name in scorer.describe()
