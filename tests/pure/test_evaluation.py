"""Tier 1: the evaluator (VBench's quality dimensions per chunk), its JSON, comparison, charts and command line.

Formulas are checked against values computed by hand on small synthetic videos
(static, a moving square, a colour ramp, a flickering one) and against a literal
re-reading of VBench's loops written here in numpy; the tables against each other;
tiny random encoders run the path from frames to numbers; run folders are read
through DiskSink. No downloads, no comfy.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from chunkwise.scorers.encoders import CallableEncoder
from chunkwise.scorers.evaluation import (
    DIMENSIONS,
    EVAL_FORMAT,
    EvalModels,
    chunk_sizes,
    evaluate_chunks,
    evaluate_run_folder,
    evaluate_video,
    load_evaluation,
)
from chunkwise.scorers.evaluation_report import compare_evaluations, summarize_comparison, summarize_evaluation
from chunkwise.scorers.vbench import consistency_terms, interpolation_triples
from chunkwise.scorers.verifiers import LinearHead
from chunkwise.search import ChunkwiseError
from chunkwise.search.colour import rgb_to_lab
from chunkwise.search.sinks import DiskSink

# ---------------------------------------------------------------- synthetic videos and stand-ins


def static(t=6, h=8, w=8, value=0.4):
    return torch.full((t, h, w, 3), round(value * 255) / 255)


def moving_square(t=7, h=8, w=16, side=2):
    """A white side x side square on black, one pixel to the right per frame."""
    out = torch.zeros(t, h, w, 3)
    for i in range(t):
        out[i, 3 : 3 + side, i : i + side] = 1.0
    return out


def colour_ramp(t=6, h=4, w=4):
    """Solid grey frames 20, 30, 40 ... (8-bit values)."""
    return torch.stack([torch.full((h, w, 3), (20 + 10 * i) / 255) for i in range(t)])


def flickering(t=7, h=4, w=4, low=0, high=100):
    return torch.stack([torch.full((h, w, 3), (high if i % 2 else low) / 255) for i in range(t)])


def mean_colour(batch):
    return batch.mean(dim=(1, 2))


def pooled(batch):
    return torch.nn.functional.adaptive_avg_pool2d(batch.movedim(-1, 1), 4).flatten(1) + 0.05


def average(first, second):
    """The simplest interpolation model: the mean of the two frames."""
    return (first + second) / 2


def models(**kw):
    enc = CallableEncoder(pooled, name="pooled")
    base = dict(subject=enc, background=enc, aesthetic=CallableEncoder(mean_colour, name="mean"),
                aesthetic_head=LinearHead({"weight": torch.tensor([[10.0, 0.0, 0.0]])}),
                interpolate=average, interpolator_name="average")
    return EvalModels(**{**base, **kw})


def scores(ev):
    return ev["whole_video"]


# ---------------------------------------------------------------- formulas by hand


def test_static_video_is_perfect_on_every_dimension():
    ev = evaluate_video(static(), 3, models=models())
    whole = scores(ev)
    for dim in ("subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness"):
        assert whole[dim] == pytest.approx(1.0, abs=1e-6), dim
    # aesthetic: head weight 10 on the first of the normalised mean colour (grey: 1/sqrt(3)), / 10.
    assert whole["aesthetic_quality"] == pytest.approx(1 / math.sqrt(3), abs=1e-6)
    assert ev["chunks"][1]["drift"] == {"colour": pytest.approx(0.0, abs=1e-9), "embedding": pytest.approx(0, abs=1e-6)}


def test_moving_square_flicker_and_smoothness_by_hand():
    # Each step changes 2 columns x 2 rows by 255 in every channel: MAE = 4 * 255 / (8 * 16).
    ev = evaluate_video(moving_square(), 7, models=models())
    assert scores(ev)["temporal_flickering"] == pytest.approx((255 - 4 * 255 / 128) / 255, abs=1e-6)
    # The mean of frames t and t+2 is 127.5 on 4 columns (AMT's uint8 cast truncates to 127); the real middle
    # frame has the square on the inner 2: per channel |127-0| + |127-255| + |127-255| + |127-0| per row, 2 rows.
    mae = 2 * (127 + 128 + 128 + 127) / 128
    assert scores(ev)["motion_smoothness"] == pytest.approx((255 - mae) / 255, abs=1e-6)


def test_colour_ramp_flicker_consistency_and_lab_drift_by_hand():
    ev = evaluate_video(colour_ramp(), 3, models=models())
    assert scores(ev)["temporal_flickering"] == pytest.approx(245 / 255, abs=1e-6)
    # Grey frames all point the same way in the mean-colour feature space: cos 1 (the +0.05 offset aside).
    assert scores(ev)["subject_consistency"] == pytest.approx(1.0, abs=1e-3)

    def lightness(v8):  # CIE L* of an sRGB grey, from the standard formulas
        c = v8 / 255
        y = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        f = y ** (1 / 3) if y > 216 / 24389 else (24389 / 27 * y + 16) / 116
        return 116 * f - 16

    # Chunk 0 ends on grey 40, chunk 1 on grey 70; the reference is the first frame (grey 20).
    drifts = [c["drift"]["colour"] for c in ev["chunks"]]
    assert drifts == pytest.approx([lightness(40) - lightness(20), lightness(70) - lightness(20)], abs=1e-3)
    assert ev["drift"]["reference"] == "first frame"


def test_flickering_video_and_signed_features_by_hand():
    ev = evaluate_video(flickering(), 7, models=models())
    assert scores(ev)["temporal_flickering"] == pytest.approx(155 / 255, abs=1e-6)
    # Even frames are all 0: the mean of two is 0, the real odd frame is 100.
    assert scores(ev)["motion_smoothness"] == pytest.approx(155 / 255, abs=1e-6)
    # Consistency clamps negative cosines: features +e, -e, +e, -e.
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(4, 1)
    terms = consistency_terms(signs * torch.tensor([[1.0, 2.0]]))
    assert terms.tolist() == pytest.approx([0.0, 0.5, 0.0])


def test_consistency_on_alternating_colours_by_hand():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])
    video = torch.stack([(a if i % 2 == 0 else b).view(1, 1, 3).expand(4, 4, 3) for i in range(5)])
    ev = evaluate_video(video, 5, models=models(subject=CallableEncoder(mean_colour)))
    k = 1 / math.sqrt(2)  # cos(a, b)
    assert scores(ev)["subject_consistency"] == pytest.approx((k + (1 + k) / 2 + k + (1 + k) / 2) / 4, abs=1e-6)


def test_interpolated_frames_are_truncated_to_8_bits_as_amt_does():
    video = static(5, value=128 / 255)
    just_below = EvalModels(interpolate=lambda a, b: (a + b) / 2 - 1e-4)
    ev = evaluate_video(video, 5, models=just_below)
    assert scores(ev)["motion_smoothness"] == pytest.approx(254 / 255, abs=1e-7)  # 127.97 -> 127, not 128


def test_motion_smoothness_scores_only_the_odd_frames_between_two_even_ones():
    assert interpolation_triples(0, 7) == [0, 2, 4]
    assert interpolation_triples(0, 6) == [0, 2]  # frame 5 has no even frame after it
    assert interpolation_triples(5, 9) == [5]
    calls = []

    def spy(first, second):
        calls.append(first.shape[0])
        return average(first, second)

    evaluate_video(moving_square(t=6), 6, models=EvalModels(interpolate=spy))
    assert sum(calls) == 2


# ---------------------------------------------------------------- against VBench's own loops


def vbench_consistency(features: np.ndarray) -> float:
    """vbench/subject_consistency.py's loop, frame by frame."""
    video_sim, former, first = 0.0, None, None
    for i, f in enumerate(features):
        f = f / np.linalg.norm(f)
        if i == 0:
            first = f
        else:
            video_sim += (max(0.0, float(former @ f)) + max(0.0, float(first @ f))) / 2
        former = f
    return video_sim / (len(features) - 1)


def vbench_flicker(frames8: np.ndarray) -> float:
    """vbench/temporal_flickering.py: mae_seq, then (255 - mean) / 255."""
    maes = [np.mean(np.abs(frames8[i].astype(np.float32) - frames8[i + 1].astype(np.float32)))
            for i in range(len(frames8) - 1)]
    return (255.0 - float(np.mean(maes))) / 255.0


def vbench_motion(frames8: np.ndarray, interpolate) -> float:
    """vbench/motion_smoothness.py: interpolate between the even frames, compare the odd ones."""
    evens = [f.astype(np.float32) / 255.0 for f in frames8[0::2]]
    outputs = [evens[0]]
    for a, b in zip(evens[:-1], evens[1:], strict=True):
        outputs += [interpolate(a, b), b]
    outputs = [(o * 255.0).clip(0, 255).astype(np.uint8) for o in outputs]
    originals, rebuilt = frames8[1::2], outputs[1::2]
    diffs = [np.mean(np.abs(originals[i].astype(np.int32) - rebuilt[i].astype(np.int32))) for i in range(len(rebuilt))]
    return (255.0 - float(np.mean(diffs))) / 255.0


@pytest.mark.parametrize("t", [8, 9])
def test_every_dimension_matches_a_literal_reading_of_vbench(t):
    video = torch.rand(t, 6, 10, 3, generator=torch.Generator().manual_seed(t))
    frames8 = (video * 255).round().to(torch.uint8).numpy()
    ev = evaluate_video(video, t, models=models())
    feats = pooled(torch.from_numpy(frames8).float() / 255).numpy()
    assert scores(ev)["subject_consistency"] == pytest.approx(vbench_consistency(feats), abs=1e-5)
    assert scores(ev)["temporal_flickering"] == pytest.approx(vbench_flicker(frames8), abs=1e-6)
    assert scores(ev)["motion_smoothness"] == pytest.approx(vbench_motion(frames8, lambda a, b: (a + b) / 2), abs=1e-6)
    emb = mean_colour(torch.from_numpy(frames8).float() / 255)
    expected = torch.nn.functional.normalize(emb, dim=-1)[:, 0].mean()
    assert scores(ev)["aesthetic_quality"] == pytest.approx(float(expected), abs=1e-6)


# ---------------------------------------------------------------- tables agree with each other


def test_per_chunk_and_cumulative_tables_agree_with_evaluating_the_pieces():
    video = torch.rand(17, 6, 8, 3, generator=torch.Generator().manual_seed(3))
    ev = evaluate_video(video, 5, drop_first_frame=True, models=models())
    assert [c["frames"] for c in ev["chunks"]] == [5, 4, 4, 4]
    assert [c["start"] for c in ev["chunks"]] == [0, 5, 9, 13]
    assert ev["cumulative"][-1]["scores"] == ev["whole_video"]
    assert ev["cumulative"][0]["scores"] == ev["chunks"][0]["scores"]
    for row in ev["chunks"]:  # a chunk is scored as its own video (odd starts included)
        alone = evaluate_video(video[row["start"] : row["start"] + row["frames"]], row["frames"], models=models())
        for dim in DIMENSIONS:
            assert row["scores"][dim] == pytest.approx(alone["whole_video"][dim], abs=1e-6), (row["index"], dim)
    for cum in ev["cumulative"]:  # the video truncated after k chunks
        cut = evaluate_video(video[: cum["frames"]], cum["frames"], models=models())
        for dim in DIMENSIONS:
            assert cum["scores"][dim] == pytest.approx(cut["whole_video"][dim], abs=1e-6), (cum["chunks"], dim)


def test_whole_video_flicker_is_the_pair_weighted_mix_of_chunks_and_seams():
    video = torch.rand(12, 4, 4, 3, generator=torch.Generator().manual_seed(5))
    ev = evaluate_video(video, 4, models=models())
    loss = lambda v: 255 - 255 * v  # noqa: E731 - mean MAE from a flicker value
    inside = sum(loss(c["scores"]["temporal_flickering"]) * (c["frames"] - 1) for c in ev["chunks"])
    seams = sum(loss(c["seam"]["temporal_flickering"]) for c in ev["chunks"][1:])
    assert loss(scores(ev)["temporal_flickering"]) * 11 == pytest.approx(inside + seams, rel=1e-5)
    aesthetic = sum(c["scores"]["aesthetic_quality"] * c["frames"] for c in ev["chunks"]) / 12
    assert scores(ev)["aesthetic_quality"] == pytest.approx(aesthetic, abs=1e-6)
    assert ev["chunks"][0]["seam"] is None and set(ev["chunks"][1]["seam"]) == {
        "temporal_flickering", "subject_consistency", "background_consistency"}


def test_chunk_layouts_and_short_segments():
    assert chunk_sizes(25 + 24 * 4, 25, drop_first_frame=True) == [25, 24, 24, 24, 24]
    assert chunk_sizes(10, 4) == [4, 4, 2]
    with pytest.raises(ChunkwiseError, match="frames_per_chunk must be an integer >= 1, got 0"):
        chunk_sizes(10, 0)
    with pytest.raises(ChunkwiseError, match="add up to 9 frames, the video has 10"):
        evaluate_video(static(10), sizes=[4, 5])
    ev = evaluate_video(static(5), sizes=[1, 2, 2], models=models())
    assert ev["chunks"][0]["scores"]["temporal_flickering"] is None  # one frame: no pair
    assert ev["chunks"][1]["scores"]["motion_smoothness"] is None  # two frames: nothing to rebuild
    assert ev["chunks"][1]["scores"]["temporal_flickering"] == pytest.approx(1.0)
    with pytest.raises(ChunkwiseError, match="chunk 0 has 3 frames, the layout says 2"):
        evaluate_chunks(iter([static(3)]), [2])
    with pytest.raises(ChunkwiseError, match="more than the 1 chunks the layout lists"):
        evaluate_chunks(iter([static(2), static(2)]), [2])
    with pytest.raises(ChunkwiseError, match="got 1 chunks, the layout lists 2"):
        evaluate_chunks(iter([static(2)]), [2, 2])
    with pytest.raises(ChunkwiseError, match="frames 2..3 are \\[4, 4\\], the video's first frames \\[8, 8\\]"):
        evaluate_chunks(iter([static(2), static(2, h=4, w=4)]), [2, 2])


# ---------------------------------------------------------------- what was computed, and what not


def test_missing_models_are_left_out_with_the_file_to_provide():
    ev = evaluate_video(static(), 3)
    assert set(ev["left_out"]) == {"subject_consistency", "background_consistency", "motion_smoothness",
                                   "aesthetic_quality"}
    assert "dino_vitbase16_pretrain.pth" in ev["left_out"]["subject_consistency"]
    assert "ViT-B/32" in ev["left_out"]["background_consistency"]
    assert "AMT-S" in ev["left_out"]["motion_smoothness"] and "sa_0_4_vit_l_14_linear.pth" in ev["left_out"][
        "aesthetic_quality"]
    assert ev["whole_video"]["motion_smoothness"] is None and ev["whole_video"]["temporal_flickering"] == 1.0
    assert ev["dimensions"]["motion_smoothness"] == {
        "computed": False, "model": None, "vbench_model": "AMT-S (amt-s.pth)",
        "follows": "vbench/motion_smoothness.py (AMT-S; third_party/amt/utils/utils.py tensor2img)",
        "reason": ev["left_out"]["motion_smoothness"]}
    assert ev["chunks"][0]["drift"]["embedding"] is None
    half = evaluate_video(static(), 3, models=EvalModels(aesthetic=CallableEncoder(mean_colour)))
    assert "sa_0_4_vit_l_14_linear.pth is missing" in half["left_out"]["aesthetic_quality"]
    assert half["drift"]["embedding_model"] == "callable"  # the ViT-L/14 still measures the drift
    told = evaluate_video(static(), 3, models=EvalModels(unavailable={"subject_consistency": "x.pth not found"}))
    assert told["left_out"]["subject_consistency"] == "x.pth not found"


def test_json_round_trip_and_format_checks():
    ev = evaluate_video(moving_square(), 3, models=models(), image=moving_square()[:1], label="naive")
    text = json.dumps(ev, allow_nan=False)
    again = load_evaluation(text)
    assert again == json.loads(text) and again["format"] == EVAL_FORMAT and again["label"] == "naive"
    assert again["drift"]["reference"] == "input image"
    assert again["dimensions"]["subject_consistency"]["model"] == "pooled"
    with pytest.raises(ChunkwiseError, match="expected a chunkwise.eval/1 evaluation, got format 'chunkwise.report/1'"):
        load_evaluation({"format": "chunkwise.report/1"})
    with pytest.raises(ChunkwiseError, match="lacks its 'chunks' table"):
        load_evaluation({"format": EVAL_FORMAT})


def test_drift_embedding_is_one_minus_cosine_to_the_input_image():
    reference = torch.zeros(1, 4, 4, 3)
    reference[..., 0] = 1.0
    video = torch.zeros(4, 4, 4, 3)
    video[..., 1] = 1.0  # green against a red reference
    ev = evaluate_video(video, 2, image=reference, models=EvalModels(background=CallableEncoder(mean_colour)))
    assert [c["drift"]["embedding"] for c in ev["chunks"]] == pytest.approx([1.0, 1.0])
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]))
    green = rgb_to_lab(torch.tensor([0.0, 1.0, 0.0]))
    assert ev["chunks"][0]["drift"]["colour"] == pytest.approx(float(torch.linalg.vector_norm(red - green)), rel=1e-6)


# ---------------------------------------------------------------- run folders


def test_a_run_folder_is_read_through_disksink_and_scores_as_its_frames(tmp_path):
    from chunkwise.search import LoopSettings, SearchSettings, run_chunks
    from chunkwise.tests.pure.toys import MeanColourScorer, ToyDenoiser, image

    settings = LoopSettings(chunks=3, seed=4, drop_first_frame=True,
                            search=SearchSettings(candidates=2, k=2, steps=4)).validate()
    result = run_chunks(ToyDenoiser(frames=5, drift=0.2), MeanColourScorer(), image(seed=2), settings,
                        sink=DiskSink(tmp_path, "run"))
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    ev = evaluate_run_folder(tmp_path / "run", models=models())
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    assert [c["frames"] for c in ev["chunks"]] == [5, 4, 4]
    assert ev["label"] == "run" and ev["source"]["kind"] == "run folder"
    assert ev["source"]["report"]["seed"] == 4 and ev["source"]["report"]["candidates"] == 2
    direct = evaluate_video(result.video(), sizes=[5, 4, 4], models=models())
    for dim in DIMENSIONS:
        assert ev["whole_video"][dim] == pytest.approx(direct["whole_video"][dim], abs=1e-6)
        assert ev["chunks"][2]["scores"][dim] == pytest.approx(direct["chunks"][2]["scores"][dim], abs=1e-6)


def test_a_run_folder_with_a_missing_chunk_is_evaluated_up_to_it(tmp_path):
    sink = DiskSink(tmp_path, "cut")
    sink.open_run({"seed": 1}, chunks=3)
    for i in range(3):
        sink.write_chunk(i, torch.rand(3, 4, 4, 3, generator=torch.Generator().manual_seed(i)))
    (tmp_path / "cut" / "chunk_0002" / "frame_000007.png").unlink()
    ev = evaluate_run_folder(tmp_path / "cut")
    assert len(ev["chunks"]) == 2 and ev["source"]["report"] is None
    with pytest.raises(ChunkwiseError, match="is not a chunkwise run folder"):
        evaluate_run_folder(tmp_path)


# ---------------------------------------------------------------- comparison and summaries


def test_comparison_is_b_minus_a_per_chunk_and_names_what_it_left_out():
    video = torch.rand(12, 4, 4, 3, generator=torch.Generator().manual_seed(9))
    a = evaluate_video(video, 4, models=models(), label="naive")
    b = evaluate_video(video * 0.5, 4, models=models(interpolate=None), label="search")
    cmp = compare_evaluations(a, json.dumps(b))
    assert cmp["format"] == "chunkwise.eval-compare/1" and cmp["a"]["label"] == "naive"
    assert "motion_smoothness" not in cmp["metrics"] and cmp["not_compared"]["motion_smoothness"] == "computed only in a"
    for row in cmp["chunks"]:
        for m in cmp["metrics"]:
            assert row["difference"][m] == pytest.approx(row["b"][m] - row["a"][m])
    assert cmp["chunks"][1]["a"]["temporal_flickering"] == a["chunks"][1]["scores"]["temporal_flickering"]
    assert cmp["chunks"][1]["b"]["colour_drift"] == b["chunks"][1]["drift"]["colour"]
    mean = sum(r["difference"]["temporal_flickering"] for r in cmp["chunks"]) / 3
    assert cmp["mean_difference"]["temporal_flickering"] == pytest.approx(mean)
    assert cmp["higher_is_better"]["colour_drift"] is False and cmp["higher_is_better"]["subject_consistency"]
    short = evaluate_video(video[:8], 4, models=models(), label="short")
    assert "a has 3 chunks, b 2" in compare_evaluations(a, short)["notes"][0]
    text = summarize_comparison(cmp)
    assert "b = 'search' minus a = 'naive'" in text and "mean over chunks" in text


def test_summary_names_models_left_out_dimensions_and_the_papers_chunk_counts():
    video = torch.rand(24, 4, 4, 3, generator=torch.Generator().manual_seed(1))
    ev = evaluate_video(video, 2, models=models(interpolate=None))
    text = summarize_evaluation(ev)
    assert "subject_consistency: pooled" in text
    assert "motion_smoothness: not computed: no frame-interpolation model" in text
    counts = [line.split()[0] for line in text.split("after k chunks")[1].split("per chunk")[0].splitlines()[2:]]
    assert counts == ["5", "10", "12"]
