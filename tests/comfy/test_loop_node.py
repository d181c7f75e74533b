"""Tier 2: ChunkLoop.execute on the tiny SVD, Wan and LTX-Video bindings, CPU: frames, report, plot,
streaming to a run folder, resume after a real ComfyUI interrupt, bad input, the Search Options
node, and the options of workflows saved while they were ChunkLoop's own inputs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import comfy.model_management
import folder_paths
import pytest
import torch
from chunkwise.nodes.families import I2VLTXV, I2VSVD, I2VCosmosPredict2, I2VWan, I2VWan22TI2V
from chunkwise.nodes.fingerprint import binding_fingerprint
from chunkwise.nodes.loop import ChunkLoop, as_one_rgb_image
from chunkwise.nodes.plot import CHOSEN, OTHERS, score_chart
from chunkwise.nodes.plot import SIZE as PLOT_SIZE
from chunkwise.nodes.search_options import SearchOptions
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.runs import finished_chunks
from chunkwise.tests.comfy import tiny, tiny_ltxv
from chunkwise.tests.comfy.tiny_cosmos import tiny_cosmos
from chunkwise.tests.comfy.tiny_wan22_5b import tiny_wan22_5b
from chunkwise.tests.pure.toys import MeanColourScorer

STEPS, M, K, CHUNKS = 3, 2, 1, 3
FRAMES = {"svd": 4, "wan": 5, "wan22_5b": 5, "cosmos": 5, "ltxv": 9}
SIZE = {"svd": (48, 64), "wan": (32, 32), "wan22_5b": (64, 64), "cosmos": (32, 32), "ltxv": (64, 64)}
LOOPED = ["svd", "wan", "wan22_5b", "cosmos", "ltxv"]
"""The families run end to end here (each family's binding node, in the plain and the resumed run)."""


@pytest.fixture(scope="module")
def bound():
    """One I2V object per family from the real binding nodes, plus what ChunkLoop scores with."""
    svd_model, svd_vae, clip_vision = tiny.tiny_svd()
    wan_model, wan_vae, positive, negative = tiny.tiny_wan()
    svd = I2VSVD.execute(svd_model, clip_vision, svd_vae, width=64, height=48, video_frames=4, motion_bucket_id=127,
                         fps=6, augmentation_level=0.0, steps=STEPS, cfg=1.0, sampler_name="euler",
                         scheduler="karras")[0]
    wan = I2VWan.execute(wan_model, positive, negative, wan_vae, width=32, height=32, length=5, steps=STEPS, cfg=1.0,
                         sampler_name="euler", scheduler="simple")[0]
    text = dict(steps=STEPS, cfg=1.0, sampler_name="euler", scheduler="simple")
    model, vae, positive, negative = tiny_wan22_5b()
    wan22_5b = I2VWan22TI2V.execute(model, positive, negative, vae, width=64, height=64, length=5, **text)[0]
    model, vae, positive, negative = tiny_cosmos()
    cosmos = I2VCosmosPredict2.execute(model, positive, negative, vae, width=32, height=32, length=5, **text)[0]
    ltxv_model, ltxv_vae, ltxv_positive, ltxv_negative = tiny_ltxv.tiny_ltxv()
    ltxv = I2VLTXV.execute(ltxv_model, ltxv_positive, ltxv_negative, ltxv_vae, width=64, height=64, length=9,
                           strength=1.0, frame_rate=25.0, **text)[0]
    return {"svd": (svd, {"clip_vision": clip_vision}), "wan": (wan, {"scorer": MeanColourScorer()}),
            "wan22_5b": (wan22_5b, {"scorer": MeanColourScorer()}), "cosmos": (cosmos, {"scorer": MeanColourScorer()}),
            "ltxv": (ltxv, {"scorer": MeanColourScorer()})}


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_paths, "output_directory", str(tmp_path))
    return tmp_path


def start_image(seed=0, h=40, w=56):
    return torch.rand((1, h, w, 3), generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


def assert_plot_marks_the_scores(plot, report):
    """The score plot draws every scored candidate where its axes put the score: each winner a filled
    disc, every other candidate a hollow ring, nothing of the winners' colour in the plot box beyond
    the winners' columns; it has the chart module's axes and ticks (chunk numbers as in the report)."""
    width, height = PLOT_SIZE
    assert plot.shape == (1, height, width, 3)
    pixels = (plot[0] * 255).round().to(torch.int64)
    _, axes = score_chart(report)
    chunks = report["chunks"]
    assert axes.x_ticks == [float(c["index"]) for c in chunks][: len(axes.x_ticks)]
    marks = [(*axes.to_pixel(c["index"], cand["score"]), j == c["chosen"]) for c in chunks
             for j, cand in enumerate(c["candidates"]) if cand["score"] is not None]
    red, grey = torch.tensor(CHOSEN), torch.tensor(OTHERS)

    def box(x, y, r):
        return pixels[y - r:y + r + 1, x - r:x + r + 1]

    winners = [(x, y) for x, y, chosen in marks if chosen]
    assert len(winners) == len(chunks)
    for x, y in winners:
        assert (box(x, y, 2) == red).all(), f"no disc at the winner's score ({x}, {y})"
    for x, y, chosen in marks:
        if chosen or any(abs(x - wx) + abs(y - wy) <= 8 for wx, wy in winners):
            continue  # drawn under a winner's disc
        assert (box(x, y, 3) == grey).all(-1).any(), f"no ring at a candidate's score ({x}, {y})"
        assert not (pixels[y, x] == red).all()
    left, top, right, bottom = axes.box
    inside = pixels[top:bottom + 1, left:right + 1]
    red_columns = (inside == red).all(-1).any(0).nonzero().flatten() + left
    xs = [x for x, _ in winners]
    assert red_columns.min() >= min(xs) - 4 and red_columns.max() <= max(xs) + 4


def opts(**widgets):
    """A Search Options node's output with these widget values."""
    return SearchOptions.execute(**widgets)[0]


def loop(i2v, scoring, image=None, **kw):
    args = dict(chunks=CHUNKS, candidates=M, k=K, preview_mode="short schedule", seed=5, search=True,
                drop_first_frame=True)
    args.update(kw)
    return ChunkLoop.execute(i2v, start_image() if image is None else image, **scoring, **args)


class InterruptAtChunk:
    """The binding, unchanged, except that ComfyUI's Cancel flag is raised when chunk ``at`` starts
    (as the Cancel button does); the loop's next interrupt check stops the run mid-chunk."""

    def __init__(self, inner, at):
        self._inner, self._at, self._conditions = inner, at, 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def condition(self, guide):
        if self._conditions == self._at:
            comfy.model_management.interrupt_current_processing(True)
        self._conditions += 1
        return self._inner.condition(guide)


@pytest.fixture(scope="module")
def plain(bound):
    """Each family's in-memory run (no run name), made once and compared against below."""
    return {family: loop(i2v, scoring) for family, (i2v, scoring) in bound.items()}


@pytest.mark.parametrize("family", LOOPED)
def test_chunk_loop_makes_the_video_report_plot_and_overview(plain, family, outdir):
    out = plain[family]
    video, report_text, plot, folder, overview = out.result
    t, (h, w) = FRAMES[family], SIZE[family]
    assert video.shape == (CHUNKS * t - (CHUNKS - 1), h, w, 3)  # one repeated guide frame dropped per seam
    report = json.loads(report_text)
    assert len(report["chunks"]) == CHUNKS and report["totals"]["frames"] == video.shape[0]
    for c in report["chunks"]:
        scores = [cand["score"] for cand in c["candidates"]]
        assert len(scores) == M
        assert c["chosen"] == max(range(M), key=lambda j: (scores[j], -j))
    assert_plot_marks_the_scores(plot, report)
    assert folder == ""
    assert overview.shape == (CHUNKS, h, w, 3)
    assert torch.equal(overview[-1], video[-1])
    assert json.loads(out.ui["report"][0]) == report and "chunk 2: winner" in out.ui["text"][0]


@pytest.mark.parametrize("family", LOOPED)
def test_streamed_run_interrupted_by_cancel_resumes_to_identical_frames(bound, plain, family, outdir):
    i2v, scoring = bound[family]
    full = plain[family].result
    # Cancel as chunk 2 starts: chunks 0 and 1 stay on disk with a consistent state.
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        loop(InterruptAtChunk(i2v, at=2), scoring, run_name="cut")
    folder = outdir / "chunkwise" / "cut"
    assert finished_chunks(folder) == 2
    assert (folder / "chunk_0001" / "guide.safetensors").is_file()
    assert not (folder / "report.json").exists() and not (folder / "chunk_0002").exists()

    # Queue the same run again: only chunk 2 is generated, and every frame matches the
    # uninterrupted run (the run folder holds 8-bit PNGs: the in-memory floats, rounded).
    nfe_before = i2v.nfe
    resumed = loop(i2v, scoring, run_name="cut")
    assert i2v.nfe - nfe_before == M * K + STEPS  # one chunk's worth of model evaluations
    assert resumed.result[3] == str(folder.resolve())
    assert torch.equal(resumed.result[0], (full[0] * 255).round() / 255)
    report, full_report = json.loads(resumed.result[1]), json.loads(full[1])
    assert report["restored_chunks"] == 2 and len(report["chunks"]) == CHUNKS
    assert [c["chosen_seed"] for c in report["chunks"]] == [c["chosen_seed"] for c in full_report["chunks"]]
    assert [c["candidates"] for c in report["chunks"]] == [c["candidates"] for c in full_report["chunks"]]
    assert json.loads((folder / "report.json").read_text())["chunks"] == report["chunks"]
    assert "resumed: chunks 0..1" in resumed.ui["text"][0]

    # last chunk + overview returns the last chunk only (no model work); the whole video stays in the folder.
    nfe_before = i2v.nfe
    last = loop(i2v, scoring, run_name="cut", options=opts(return_frames="last chunk + overview")).result
    assert i2v.nfe == nfe_before
    assert torch.equal(last[0], resumed.result[0][-(FRAMES[family] - 1):])
    assert last[4].shape[0] == CHUNKS


def test_changed_settings_on_a_run_folder_are_refused_and_new_run_starts_beside_it(bound, outdir):
    i2v, scoring = bound["wan"]
    loop(i2v, scoring, chunks=1, run_name="r")
    files = sorted(p.name for p in (outdir / "chunkwise" / "r").rglob("*"))
    with pytest.raises(ChunkwiseError, match=r"settings\.seed: 5 -> 6"):
        loop(i2v, scoring, chunks=1, run_name="r", seed=6)
    with pytest.raises(ChunkwiseError, match="image"):
        loop(i2v, scoring, chunks=1, run_name="r", image=start_image(seed=9))
    with pytest.raises(ChunkwiseError, match="already holds a run"):
        loop(i2v, scoring, chunks=1, run_name="r", options=opts(on_existing="error"))
    assert sorted(p.name for p in (outdir / "chunkwise" / "r").rglob("*")) == files
    other = loop(i2v, scoring, chunks=1, run_name="r", seed=6, options=opts(on_existing="new run")).result
    assert other[3].endswith("r-2")


def test_image_policy_batch_uses_the_first_and_rgba_or_gray_become_rgb(bound, plain, caplog):
    i2v, scoring = bound["wan"]
    img = start_image()
    rgba_batch = torch.cat([torch.cat([img, torch.rand(1, 40, 56, 1)], dim=-1), torch.rand(1, 40, 56, 4)])
    with caplog.at_level("WARNING", logger="chunkwise"):
        first = loop(i2v, scoring, image=rgba_batch, chunks=1).result[0]
    assert "batch of 2" in caplog.text
    # Chunk 0 does not depend on how many chunks follow: the same as the plain run's first chunk.
    assert torch.equal(first, plain["wan"].result[0][: FRAMES["wan"]])
    gray = img.mean(dim=-1, keepdim=True)
    assert torch.equal(as_one_rgb_image(gray), gray.repeat(1, 1, 1, 3))
    assert torch.equal(as_one_rgb_image(torch.cat([gray, gray], dim=-1)), gray.repeat(1, 1, 1, 3))
    assert torch.equal(as_one_rgb_image(img[0]), img)


def test_bad_input_gets_a_clear_error_before_any_work(bound, outdir):
    i2v, scoring = bound["wan"]
    nfe = i2v.nfe
    for kw, match in [
        ({"k": STEPS}, r"k \(preview steps\) must be smaller.*k=3, steps=3"),
        ({"run_name": "../outside"}, "run name"),
        ({"run_name": "/abs"}, "run name"),
        ({"options": opts(colour_anchor=1.5)}, "colour_anchor strength must be in 0..1, got 1.5"),
        ({"image": torch.full((1, 8, 8, 3), float("nan"))}, "NaN"),
        ({"image": torch.rand(1, 8, 8, 5)}, "got 5"),
    ]:
        with pytest.raises(ChunkwiseError, match=match):
            loop(i2v, scoring, **kw)
    assert i2v.nfe == nfe and list(outdir.iterdir()) == []
    assert ChunkLoop.validate_inputs(chunks=0) == "chunks must be between 1 and 1000, got 0"
    assert "between 1 and 64, got 0" in ChunkLoop.validate_inputs(candidates=0)
    assert "must be one folder name without '/'" in ChunkLoop.validate_inputs(run_name="a/../b")
    assert "got 'sideways'" in ChunkLoop.validate_inputs(preview_mode="sideways")
    assert ChunkLoop.validate_inputs(chunks=3, candidates=4, k=2, preview_mode="truncated", seed=0, search=True,
                                     run_name="ok name") is True


def test_colour_anchor_changes_the_chain_and_is_recorded(bound, plain):
    from chunkwise.search.colour import colour_drift

    i2v, scoring = bound["wan"]
    free = plain["wan"].result
    anchored = loop(i2v, scoring, options=opts(colour_anchor=1.0)).result
    assert json.loads(anchored[1])["settings"]["colour_anchor"] == 1.0
    assert not torch.equal(free[0], anchored[0])
    last = slice(-(FRAMES["wan"] - 1), None)
    img = start_image()
    print(f"\ntiny Wan, last chunk colour drift (Lab): free {colour_drift(free[0][last], img):.2f}, "
          f"anchored {colour_drift(anchored[0][last], img):.2f}")
    assert colour_drift(anchored[0][last], img) < colour_drift(free[0][last], img)


def test_binding_fingerprint_follows_the_weights_and_patches_not_the_load_state(bound):
    i2v, _ = bound["wan"]
    fp = binding_fingerprint(i2v)
    assert {"model", "vae", "positive", "negative"} <= set(fp)
    assert binding_fingerprint(i2v) == fp
    # a model no earlier test has loaded: ComfyUI skips re-patching modules it marked as patched
    base = tiny.tiny_wan(seed=7)[0]
    key = next(iter(base.model.state_dict()))
    plain = binding_fingerprint(SimpleNamespace(model=base))
    patched = base.clone()
    patched.add_patches({key: (torch.ones_like(base.model.state_dict()[key]),)}, 0.5)
    before_load = binding_fingerprint(SimpleNamespace(model=patched))
    assert before_load != plain  # a LoRA-like patch changes the frames, so the fingerprint
    try:
        patched.patch_model()  # as loading does: the weight is changed in place, the original backed up
        assert not torch.equal(patched.model.state_dict()[key], patched.backup[key].weight)
        assert binding_fingerprint(SimpleNamespace(model=patched)) == before_load
    finally:
        patched.unpatch_model()
    assert binding_fingerprint(SimpleNamespace(model=base)) == plain
    other_model = tiny.tiny_wan(seed=8)[0]
    assert binding_fingerprint(SimpleNamespace(model=other_model))["model"] != plain["model"]


def test_cost_options_reach_the_search_and_its_report(bound, plain):
    i2v, scoring = bound["wan"]
    base = json.loads(plain["wan"].result[1])
    assert all("cost" not in c or not c["cost"] for c in base["chunks"])  # off by default: the paper's search

    batched = json.loads(loop(i2v, scoring, options=opts(candidate_batch=2)).result[1])
    assert [c["chosen_seed"] for c in batched["chunks"]] == [c["chosen_seed"] for c in base["chunks"]]
    assert all(c["cost"]["preview_calls"] == 1 for c in batched["chunks"])  # both candidates in one call

    m, k = 4, 2
    halving = json.loads(loop(i2v, scoring, candidates=m, k=k, preview_mode="truncated",
                              options=opts(halving_k=1)).result[1])
    for c in halving["chunks"]:
        assert c["cost"]["rungs"] and c["cost"]["nfe_saved"] > 0
        assert c["nfe"]["preview"] + c["nfe"]["full"] == c["cost"]["nfe_formula"] - c["cost"]["nfe_saved"]

    strided = json.loads(loop(i2v, scoring, options=opts(preview_frame_stride=2,
                                                         preview_decode="approximate (latent to RGB)")).result[1])
    for c in strided["chunks"]:  # no preview goes through the VAE; every 2nd approximate frame plus the last
        assert c["cost"]["frames_decoded"] == 0 and 0 < c["cost"]["frames_scored"] < M * FRAMES["wan"]

    # the toy scorer's scores are minus a colour distance below 1: the first candidate is always good enough
    accepted = json.loads(loop(i2v, scoring, candidates=3, options=opts(early_accept=True, accept_score=-1.0))
                          .result[1])
    for c in accepted["chunks"]:
        assert c["cost"]["accepted"] == 0 and c["chosen"] == 0 and c["nfe"]["preview"] == K

    # halving_k and k sit on two nodes: checked when ChunkLoop runs, before any model work.
    nfe = i2v.nfe
    with pytest.raises(ChunkwiseError, match="halving_k must be smaller than k"):
        loop(i2v, scoring, k=2, options=opts(halving_k=2))
    assert i2v.nfe == nfe
    assert "cannot be combined" in SearchOptions.validate_inputs(early_accept=True, accept_score=0.5, halving_k=1)
    assert "halving_k must be between 0 and 1000, got -1" == SearchOptions.validate_inputs(halving_k=-1)
    assert SearchOptions.validate_inputs(early_accept=False, accept_score=0.5, halving_k=1) is True
    assert SearchOptions.validate_inputs(early_accept=True, accept_score=0.0, halving_k=0) is True


def test_fingerprint_follows_schedule_patches_cfg_functions_middle_layers_and_scorer_weights():
    from chunkwise.nodes.fingerprint import scorer_fingerprint
    from chunkwise.scorers import ClipMinCosine, ComfyClipVisionEncoder
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance

    model = tiny.tiny_wan(seed=9)[0]

    def fp(m):
        return binding_fingerprint(SimpleNamespace(model=m))["model"]

    base = fp(model)
    assert fp(model.clone()) == base
    shifted = {shift: fp(ModelSamplingSD3().patch(model, shift)[0]) for shift in (3.0, 8.0)}
    assert len({base, *shifted.values()}) == 3  # another shift is another schedule: other frames
    ramps = {c: fp(VideoLinearCFGGuidance().patch(model, c)[0]) for c in (1.0, 2.0)}
    assert len({base, *ramps.values()}) == 3

    middle = tiny.tiny_wan(seed=9)[0]
    params = list(middle.model.state_dict().values())
    params[len(params) // 2].add_(1.0)  # a fine-tune of a middle layer only
    assert fp(middle) != base

    def scorer(seed):
        return ClipMinCosine(ComfyClipVisionEncoder(tiny.tiny_clip_vision(seed)))

    assert scorer_fingerprint(scorer(3)) == scorer_fingerprint(scorer(3))
    assert scorer_fingerprint(scorer(3)) != scorer_fingerprint(scorer(4))
    assert scorer_fingerprint(MeanColourScorer()) == "no weights"


class NanSampler(InterruptAtChunk):
    """The binding, unchanged, except that every sample returns a NaN latent."""

    def __init__(self, inner):
        super().__init__(inner, at=-1)

    def sample(self, cond, noise, **kw):
        result = self._inner.sample(cond, noise, **kw)
        result.latent = result.latent * float("nan")
        return result


def test_bad_input_on_an_existing_run_folder_leaves_it_byte_for_byte(bound, outdir):
    i2v, scoring = bound["wan"]
    loop(i2v, scoring, chunks=2, run_name="keep")
    folder = outdir / "chunkwise" / "keep"

    def snapshot():
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    before = snapshot()
    nfe = i2v.nfe
    for kw, match in [
        ({"k": STEPS}, r"k \(preview steps\) must be smaller"),
        ({"options": opts(colour_anchor=1.5)}, "colour_anchor strength must be in 0..1"),
        ({"image": torch.full((1, 8, 8, 3), float("nan"))}, "NaN"),
        ({"image": torch.rand(1, 8, 8, 5)}, "got 5"),
        ({"candidates": 3}, r"settings\.search\.candidates: 2 -> 3"),
        ({"options": opts(preview_decode="approximate (latent to RGB)", halving_k=0, early_accept=False,
                          preview_frame_stride=1, candidate_batch=1), "k": 1, "candidates": 2, "seed": 6},
         r"settings\.seed"),
    ]:
        with pytest.raises(ChunkwiseError, match=match):
            loop(i2v, scoring, chunks=3, run_name="keep", **kw)
    assert i2v.nfe == nfe and snapshot() == before  # refused before any model work, nothing written

    # A NaN latent in chunk 2 (extending the finished run; chunks 0 and 1 are read back, not sampled)
    # stops the run; chunks 0 and 1 stay as they were.
    with pytest.raises(ChunkwiseError, match="NaN/inf"):
        loop(NanSampler(i2v), scoring, chunks=3, run_name="keep")
    after = snapshot()
    assert {p: b for p, b in after.items() if p.parts[0] in ("chunk_0000", "chunk_0001")} == {
        p: b for p, b in before.items() if p.parts[0] in ("chunk_0000", "chunk_0001")}
    assert not any(p.parts[0].startswith(("chunk_0002", ".chunk_0002")) for p in after)
    assert finished_chunks(folder) == 2


# Workflows saved while the Search Options were ChunkLoop's own inputs.

LEGACY_DEFAULTS = {"return_frames": "all frames", "on_existing": "resume", "colour_anchor": 0.0, "colour_method": "lab",
                   "candidate_batch": 1, "preview_frame_stride": 1, "preview_decode": "full VAE", "accept_score": 0.0,
                   "halving_k": 0}
"""What every saved prompt of the 21-input ChunkLoop sends (its defaults then)."""


def same_run(a, b):
    ra, rb = json.loads(a[1]), json.loads(b[1])
    assert torch.equal(a[0], b[0])
    assert ra["settings"] == rb["settings"]
    assert [(c["chosen_seed"], c["candidates"]) for c in ra["chunks"]] == [
        (c["chosen_seed"], c["candidates"]) for c in rb["chunks"]]


def test_legacy_keyword_options_run_as_the_same_search_options_would(bound, caplog):
    i2v, scoring = bound["wan"]
    legacy = dict(LEGACY_DEFAULTS, colour_anchor=1.0, colour_method="rgb", candidate_batch=2, accept_score=-1.0)
    with caplog.at_level("WARNING", logger="chunkwise"):
        old = loop(i2v, scoring, candidates=3, **legacy).result
    assert "Search Options" in caplog.text and "'colour_anchor': 1.0" in caplog.text
    assert "'return_frames'" not in caplog.text  # values left at their defaults are not news
    new = loop(i2v, scoring, candidates=3, options=opts(colour_anchor=1.0, colour_method="rgb", candidate_batch=2,
                                                        early_accept=True, accept_score=-1.0)).result
    same_run(old, new)
    settings = json.loads(old[1])["settings"]
    assert settings["colour_anchor"] == 1.0 and settings["colour_method"] == "rgb"
    assert settings["cost"]["accept_score"] == -1.0 and settings["cost"]["candidate_batch"] == 2
    # accept_score 0 meant off: the paper's full search, as with no options at all.
    off = loop(i2v, scoring, chunks=1, **LEGACY_DEFAULTS).result
    same_run(off, loop(i2v, scoring, chunks=1).result)
    assert "cost" not in json.loads(off[1])["settings"]  # no cost option on


def test_early_accept_takes_a_threshold_of_zero(bound):
    i2v, scoring = bound["wan"]
    # The toy scorer's scores are minus a colour distance, below 0: a 0 threshold is never reached.
    report = json.loads(loop(i2v, scoring, chunks=1, candidates=3,
                             options=opts(early_accept=True, accept_score=0.0)).result[1])
    assert report["settings"]["cost"]["accept_score"] == 0.0
    (chunk,) = report["chunks"]
    assert chunk["cost"]["accepted"] is None and chunk["nfe"]["preview"] == 3 * K


def test_bad_or_doubled_legacy_values_are_refused_before_any_work(bound, outdir):
    i2v, scoring = bound["wan"]
    nfe = i2v.nfe
    for kw, match in [
        ({"colour_anchor": -0.1}, r"colour_anchor must be between 0 and 1, got -0.1.*Search Options"),
        ({"candidate_batch": 0}, "candidate_batch must be between 1 and 64, got 0"),
        ({"preview_decode": "cheap"}, r"preview_decode must be one of \['full VAE'"),
        ({"halving_k": "two"}, "halving_k must be of type INT, got 'two'"),
        ({"halving_k": 1, "accept_score": 0.5}, "cannot be combined"),
        # A saved value that is not off beside a Search Options node: two places would say what the run does.
        ({"options": opts(), "colour_anchor": 0.5}, r"\{'colour_anchor': 0.5\}.*Search Options node on its options"),
    ]:
        with pytest.raises(ChunkwiseError, match=match):
            loop(i2v, scoring, k=2, run_name="legacy", **kw)
    with pytest.raises(TypeError, match="colour_anchr"):
        loop(i2v, scoring, colour_anchr=0.5)
    assert i2v.nfe == nfe and list(outdir.iterdir()) == []
    # The off values an old prompt carries beside a Search Options node: the node's values hold.
    report = json.loads(loop(i2v, scoring, chunks=1, options=opts(colour_anchor=0.5), **LEGACY_DEFAULTS).result[1])
    assert report["settings"]["colour_anchor"] == 0.5


def test_the_executor_hands_legacy_values_through_the_prompt(bound):
    """ComfyUI gives execute only declared inputs; the saved ones are read from the hidden prompt,
    as ComfyUI's executor sets it on its per-run class clone (PREPARE_CLASS_CLONE)."""
    import execution  # ComfyUI's executor module
    from comfy_execution.graph import DynamicPrompt

    i2v, scoring = bound["wan"]
    inputs = dict(LEGACY_DEFAULTS, colour_anchor=1.0, halving_k=["3", 0])  # a linked value is ComfyUI's to pass
    prompt = {"11": {"class_type": "ChunkwiseChunkLoop", "inputs": inputs}}
    # The hidden values as the host's executor gathers them for this node (their shape differs by version).
    _, _, hidden = execution.get_input_data(inputs, ChunkLoop, "11", dynprompt=DynamicPrompt(prompt))
    clone = ChunkLoop.PREPARE_CLASS_CLONE(hidden)
    args = dict(chunks=1, candidates=M, k=K, preview_mode="short schedule", seed=5, search=True, drop_first_frame=True)
    out = clone.execute(i2v, start_image(), **scoring, **args).result
    same_run(out, loop(i2v, scoring, chunks=1, options=opts(colour_anchor=1.0)).result)
    with pytest.raises(ChunkwiseError, match="Search Options node on its options"):
        clone.execute(i2v, start_image(), **scoring, **args, options=opts())
