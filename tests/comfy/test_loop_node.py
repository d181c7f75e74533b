"""Tier 2: ChunkLoop.execute on the tiny SVD and Wan bindings, CPU: frames, report, plot,
streaming to a run folder, resume after a real ComfyUI interrupt, and bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import comfy.model_management
import folder_paths
import pytest
import torch
from chunkwise.nodes.families import I2VSVD, I2VWan
from chunkwise.nodes.loop import ChunkLoop, as_one_rgb_image, binding_fingerprint
from chunkwise.search.errors import ChunkwiseError
from chunkwise.tests.comfy import tiny
from chunkwise.tests.pure.toys import MeanColourScorer

STEPS, M, K, CHUNKS = 3, 2, 1, 3
FRAMES = {"svd": 4, "wan": 5}
SIZE = {"svd": (48, 64), "wan": (32, 32)}


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
    return {"svd": (svd, {"clip_vision": clip_vision}), "wan": (wan, {"scorer": MeanColourScorer()})}


@pytest.fixture
def outdir(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_paths, "output_directory", str(tmp_path))
    return tmp_path


def start_image(seed=0, h=40, w=56):
    return torch.rand((1, h, w, 3), generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


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


@pytest.mark.parametrize("family", ["svd", "wan"])
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
    assert plot.ndim == 4 and plot.shape[0] == 1 and plot.shape[-1] == 3
    assert folder == ""
    assert overview.shape == (CHUNKS, h, w, 3)
    assert torch.equal(overview[-1], video[-1])
    assert json.loads(out.ui["report"][0]) == report and "chunk 2: winner" in out.ui["text"][0]


@pytest.mark.parametrize("family", ["svd", "wan"])
def test_streamed_run_interrupted_by_cancel_resumes_to_identical_frames(bound, plain, family, outdir):
    i2v, scoring = bound[family]
    full = plain[family].result
    # Cancel as chunk 2 starts: chunks 0 and 1 stay on disk with a consistent state.
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        loop(InterruptAtChunk(i2v, at=2), scoring, run_name="cut")
    folder = outdir / "chunkwise" / "cut"
    state = json.loads((folder / "state.json").read_text())
    assert [c["index"] for c in state["chunks"]] == [0, 1]
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
    last = loop(i2v, scoring, run_name="cut", return_frames="last chunk + overview").result
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
        loop(i2v, scoring, chunks=1, run_name="r", on_existing="error")
    assert sorted(p.name for p in (outdir / "chunkwise" / "r").rglob("*")) == files
    other = loop(i2v, scoring, chunks=1, run_name="r", seed=6, on_existing="new run").result
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
        ({"colour_anchor": 1.5}, "colour_anchor strength must be in 0..1, got 1.5"),
        ({"image": torch.full((1, 8, 8, 3), float("nan"))}, "NaN"),
        ({"image": torch.rand(1, 8, 8, 5)}, "got 5"),
    ]:
        with pytest.raises(ChunkwiseError, match=match):
            loop(i2v, scoring, **kw)
    assert i2v.nfe == nfe and list(outdir.iterdir()) == []
    assert ChunkLoop.validate_inputs(chunks=0) == "chunks must be between 1 and 1000, got 0"
    assert "between 1 and 64, got 0" in ChunkLoop.validate_inputs(candidates=0)
    assert "'..'" in ChunkLoop.validate_inputs(run_name="a/../b") or "/" in ChunkLoop.validate_inputs(run_name="a/../b")
    assert "colour_anchor" in ChunkLoop.validate_inputs(colour_anchor=-0.1)
    assert ChunkLoop.validate_inputs(chunks=3, candidates=4, k=2, run_name="ok name", colour_anchor=0.5) is True


def test_colour_anchor_changes_the_chain_and_is_recorded(bound, plain):
    from chunkwise.search.colour import colour_drift

    i2v, scoring = bound["wan"]
    free = plain["wan"].result
    anchored = loop(i2v, scoring, colour_anchor=1.0).result
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

    batched = json.loads(loop(i2v, scoring, candidate_batch=2).result[1])
    assert [c["chosen_seed"] for c in batched["chunks"]] == [c["chosen_seed"] for c in base["chunks"]]
    assert all(c["cost"]["preview_calls"] == 1 for c in batched["chunks"])  # both candidates in one call

    m, k = 4, 2
    halving = json.loads(loop(i2v, scoring, candidates=m, k=k, preview_mode="truncated", halving_k=1).result[1])
    for c in halving["chunks"]:
        assert c["cost"]["rungs"] and c["cost"]["nfe_saved"] > 0
        assert c["nfe"]["preview"] + c["nfe"]["full"] == c["cost"]["nfe_formula"] - c["cost"]["nfe_saved"]

    strided = json.loads(loop(i2v, scoring, preview_frame_stride=2, preview_decode="approximate (latent to RGB)")
                         .result[1])
    for c in strided["chunks"]:  # no preview goes through the VAE; every 2nd approximate frame plus the last
        assert c["cost"]["frames_decoded"] == 0 and 0 < c["cost"]["frames_scored"] < M * FRAMES["wan"]

    # the toy scorer's scores are minus a colour distance below 1: the first candidate is always good enough
    accepted = json.loads(loop(i2v, scoring, candidates=3, accept_score=-1.0).result[1])
    for c in accepted["chunks"]:
        assert c["cost"]["accepted"] == 0 and c["chosen"] == 0 and c["nfe"]["preview"] == K

    assert "halving_k must be smaller than k" in ChunkLoop.validate_inputs(k=2, halving_k=2)
    assert "cannot be combined" in ChunkLoop.validate_inputs(k=4, halving_k=1, accept_score=0.5)
    assert "candidate_batch must be between 1 and 64, got 0" == ChunkLoop.validate_inputs(candidate_batch=0)
    assert ChunkLoop.validate_inputs(k=4, halving_k=1, candidate_batch=4, preview_frame_stride=2) is True


def test_fingerprint_follows_schedule_patches_cfg_functions_middle_layers_and_scorer_weights():
    from chunkwise.nodes.loop import scorer_fingerprint
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
        ({"colour_anchor": 1.5}, "colour_anchor strength must be in 0..1"),
        ({"image": torch.full((1, 8, 8, 3), float("nan"))}, "NaN"),
        ({"image": torch.rand(1, 8, 8, 5)}, "got 5"),
        ({"candidates": 3}, r"settings\.search\.candidates: 2 -> 3"),
        ({"preview_decode": "approximate (latent to RGB)", "halving_k": 0, "accept_score": 0.0, "k": 1,
          "candidates": 2, "preview_frame_stride": 1, "candidate_batch": 1, "seed": 6}, r"settings\.seed"),
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
    assert [c["index"] for c in json.loads((folder / "state.json").read_text())["chunks"]] == [0, 1]
