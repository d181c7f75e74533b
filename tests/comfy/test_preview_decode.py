"""Tier 2: cheaper preview decodes (frame stride, approximate latent-to-RGB) on tiny Wan and SVD models, CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from chunkwise.search.adaptive import frame_indices
from chunkwise.search.engine import SearchSettings, search_chunk
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy.test_comfy_i2v import BrightnessScorer, guide_image, make_i2v

FRAMES = {"wan": 5, "svd": 4, "wan22_5b": 5, "cosmos": 5, "ltxv": 9, "kandinsky5": 17}
LATENT_FRAMES = {"wan": 2, "svd": 4, "wan22_5b": 2, "cosmos": 2, "ltxv": 2, "kandinsky5": 5}  # Wan packs 4 frames per latent frame after the first, LTXV 8
PIXELS = {"wan": (32, 32), "svd": (48, 64), "wan22_5b": (64, 64), "cosmos": (32, 32), "ltxv": (64, 64), "kandinsky5": (32, 32)}


def preview_x0(i2v, seed=0, k=2, steps=6):
    cond = i2v.condition(guide_image(seed))
    noise = make_noise(i2v.latent_template(cond), seed)
    return i2v.sample(cond, noise, steps=steps, end_step=k).x0


def test_stride_decodes_only_the_picked_frames_where_the_vae_allows(family_name, parts):
    i2v = make_i2v(family_name, parts)
    x0 = preview_x0(i2v)
    before = i2v.frames_decoded
    full = i2v.decode(x0)
    assert i2v.frames_decoded - before == FRAMES[family_name]
    picked = frame_indices(FRAMES[family_name], 2)
    before = i2v.frames_decoded
    strided = i2v.preview_decode(x0, stride=2)
    decoded = i2v.frames_decoded - before
    # SVD's image VAE decodes each latent frame alone; Wan's video VAEs need the whole clip.
    assert decoded == (len(picked) if family_name == "svd" else FRAMES[family_name])
    assert strided.shape[0] == len(picked)
    torch.testing.assert_close(strided, full[picked], rtol=1e-5, atol=1e-5)


def test_approximate_decode_is_comfyuis_latent_to_rgb_preview(family_name, parts):
    from latent_preview import Latent2RGBPreviewer

    i2v = make_i2v(family_name, parts)
    x0 = preview_x0(i2v, seed=1)
    fmt = i2v.model.model.latent_format
    before = i2v.frames_decoded
    small = i2v.approximate_decode(x0, upscale=False)
    assert i2v.frames_decoded == before  # no VAE work
    assert small.shape[0] == LATENT_FRAMES[family_name] and small.shape[-1] == 3
    # ComfyUI's own sampler preview shows the first frame of the model-space latent.
    previewer = Latent2RGBPreviewer(fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias)
    theirs = previewer.decode_latent_to_preview(i2v.model.model.process_latent_in(x0))
    theirs = torch.from_numpy(np.asarray(theirs)).float() / 255.0
    assert theirs.shape == small[0].shape
    assert (small[0] - theirs).abs().max() <= 1.0 / 255.0 + 1e-6
    big = i2v.preview_decode(x0, approximate=True)
    assert tuple(big.shape) == (LATENT_FRAMES[family_name],) + PIXELS[family_name] + (3,)
    assert 0.0 <= float(big.min()) and float(big.max()) <= 1.0
    strided = i2v.preview_decode(x0, stride=3, approximate=True)
    torch.testing.assert_close(strided, big[frame_indices(big.shape[0], 3)])


def test_a_model_without_rgb_factors_is_refused_with_the_fix(wan_parts):
    i2v = make_i2v("wan", wan_parts)
    x0 = preview_x0(i2v)
    fmt = i2v.model.model.latent_format
    saved = fmt.latent_rgb_factors
    try:
        fmt.latent_rgb_factors = None
        with pytest.raises(ChunkwiseError, match="no latent_rgb_factors.*use preview_decode='vae'"):
            i2v.approximate_decode(x0)
    finally:
        fmt.latent_rgb_factors = saved


def test_strided_search_chooses_what_full_decoding_of_the_same_frames_chooses(family_name, parts):
    """The strided search against a search on full decodes, scored on the same frames."""
    search = SearchSettings(candidates=3, k=1, steps=3, preview_mode="truncated")
    picked = frame_indices(FRAMES[family_name], 2)
    for seed in range(2):
        full = search_chunk(make_i2v(family_name, parts), BrightnessScorer(), guide_image(seed), search, seed=seed)
        strided = search_chunk(make_i2v(family_name, parts), BrightnessScorer(), guide_image(seed),
                               SearchSettings(**{**search.__dict__, "preview_stride": 2}), seed=seed)
        for a, b in zip(full.record.candidates, strided.record.candidates, strict=True):
            assert b["frame_scores"] == pytest.approx([a["frame_scores"][i] for i in picked], abs=1e-5)
        by_full_frames = max(range(3), key=lambda j: (min(full.record.candidates[j]["frame_scores"][i] for i in picked), -j))
        assert strided.record.chosen == by_full_frames
        assert strided.record.cost["frames_decoded"] == 3 * (len(picked) if family_name == "svd" else FRAMES[family_name])
        assert strided.record.cost["frames_scored"] == 3 * len(picked)
        assert strided.frames.shape[0] == FRAMES[family_name]  # the chunk itself is decoded whole


def test_approximate_search_against_full_decoding(family_name, parts):
    """Approximate previews pick a valid winner with no VAE work for previews; how often it is the
    full decode's winner is reported, not asserted: the tiny VAEs are random, so ComfyUI's factors
    (fitted to the real VAEs) say nothing about them. benchmarks/bench_search.py prints the rate."""
    search = SearchSettings(candidates=3, k=2, steps=4, preview_mode="truncated")
    approx_settings = SearchSettings(**{**search.__dict__, "preview_decode": "approx"})
    i2v = make_i2v(family_name, parts)
    before = i2v.frames_decoded
    approx = search_chunk(i2v, BrightnessScorer(), guide_image(5), approx_settings, seed=5)
    assert i2v.frames_decoded - before == FRAMES[family_name]  # only the finished chunk went through the VAE
    assert approx.record.cost["frames_decoded"] == 0
    assert approx.record.cost["frames_scored"] == 3 * LATENT_FRAMES[family_name]
    scores = [c["score"] for c in approx.record.candidates]
    assert approx.record.chosen == scores.index(max(scores))
    full = search_chunk(make_i2v(family_name, parts), BrightnessScorer(), guide_image(5), search, seed=5)
    assert approx.record.nfe == full.record.nfe
    # Scores differ from full decoding (another image), the candidates and the schedule do not.
    assert [c["seed"] for c in approx.record.candidates] == [c["seed"] for c in full.record.candidates]
    assert scores != [c["score"] for c in full.record.candidates]


class LinearVAE:
    """The tiny SVD VAE, except that it decodes with ComfyUI's latent-to-RGB factors (upscaled): a VAE
    the approximate decode describes exactly, so both searches must see the same previews."""

    def __init__(self, inner, i2v) -> None:
        self.inner, self.i2v = inner, i2v

    def decode(self, latent):
        return self.i2v.approximate_decode(latent, upscale=True)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("mode", ["short", "truncated"])
def test_approximate_search_chooses_what_full_decoding_chooses_when_the_factors_are_the_vae(svd_parts, mode):
    search = SearchSettings(candidates=4, k=2, steps=4, preview_mode=mode)
    approx_settings = SearchSettings(**{**search.__dict__, "preview_decode": "approx"})
    for seed in range(3):
        records = []
        for settings in (search, approx_settings):
            i2v = make_i2v("svd", svd_parts)
            i2v.vae = LinearVAE(i2v.vae, i2v)
            records.append(search_chunk(i2v, BrightnessScorer(), guide_image(seed), settings, seed=seed).record)
        full, approx = records
        assert approx.cost["frames_decoded"] == 0  # the previews never went through decode()
        assert [c["score"] for c in approx.candidates] == pytest.approx([c["score"] for c in full.candidates],
                                                                        abs=1e-6)
        assert approx.chosen == full.chosen


@pytest.fixture
def taesd_previews(tmp_path, monkeypatch):
    """ComfyUI started with --preview-method taesd and a models/vae_approx folder of its own."""
    import folder_paths
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod

    monkeypatch.setitem(folder_paths.folder_names_and_paths, "vae_approx",
                        ([str(tmp_path)], folder_paths.supported_pt_extensions))
    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod.TAESD)
    return tmp_path


def test_approximate_decode_uses_comfyuis_taesd_previewer_when_comfyui_previews_with_it(family_name, parts,
                                                                                        taesd_previews):
    import latent_preview
    from chunkwise.tests.comfy import tiny

    i2v = make_i2v(family_name, parts)
    if i2v.model.model.latent_format.taesd_decoder_name is None:
        pytest.skip(f"{type(i2v.model.model.latent_format).__name__} latents have no TAESD decoder in ComfyUI "
                    "(taesd_decoder_name None): its previewer is latent-to-RGB under every preview method")
    x0 = preview_x0(i2v, seed=2)
    latent_rgb = i2v.approximate_decode(x0)  # no decoder file yet: ComfyUI's fallback, latent-to-RGB
    fmt = i2v.model.model.latent_format
    tiny.save_tiny_preview_decoder(taesd_previews, fmt)
    i2v = make_i2v(family_name, parts)
    before = i2v.frames_decoded
    frames = i2v.approximate_decode(x0)
    assert i2v.frames_decoded == before  # not the VAE
    assert tuple(frames.shape) == (LATENT_FRAMES[family_name],) + PIXELS[family_name] + (3,)
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    assert not torch.allclose(frames, latent_rgb, atol=1e-2)
    # The first frame is ComfyUI's own sampler preview with that decoder.
    previewer = latent_preview.get_previewer(i2v.model.load_device, fmt)
    assert isinstance(previewer, latent_preview.TAESDPreviewerImpl)
    theirs = previewer.decode_latent_to_preview(i2v.model.model.process_latent_in(x0))
    theirs = torch.from_numpy(np.asarray(theirs)).float() / 255.0
    assert theirs.shape == frames[0].shape
    assert (frames[0] - theirs).abs().max() <= 1.0 / 255.0 + 1e-5
    torch.testing.assert_close(i2v.preview_decode(x0, stride=2, approximate=True),
                               frames[frame_indices(frames.shape[0], 2)])


@pytest.mark.parametrize("method", ["none", "auto", "latent2rgb"])
def test_approximate_decode_stays_latent_to_rgb_unless_comfyui_previews_with_taesd(svd_parts, tmp_path, monkeypatch,
                                                                                   method):
    import folder_paths
    import latent_preview
    from chunkwise.tests.comfy import tiny
    from comfy.cli_args import LatentPreviewMethod

    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod(method))
    i2v = make_i2v("svd", svd_parts)
    x0 = preview_x0(i2v, seed=3)
    expected = i2v.approximate_decode(x0)
    tiny.save_tiny_preview_decoder(tmp_path, i2v.model.model.latent_format)
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "vae_approx",
                        ([str(tmp_path)], folder_paths.supported_pt_extensions))
    assert torch.equal(make_i2v("svd", svd_parts).approximate_decode(x0), expected)
