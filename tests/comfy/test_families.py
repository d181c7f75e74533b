"""Tier 2: the declarative family bindings (nodes/families/): one size rule for validate_inputs and
construction, the spec's batch rule driving candidate batching, and Preconditioned conditioning."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import pytest
import torch
from chunkwise.nodes.families import (
    CosmosPredict2Family,
    Preconditioned,
    SVDFamily,
    Wan22TI2VFamily,
    WanFamily,
    cosmos,
    svd,
    wan,
    wan22_5b,
)
from chunkwise.nodes.families.node import check_latent_format
from chunkwise.nodes.families.spec import FamilySpec, SamplerDefaults
from chunkwise.nodes.host import ComfyI2V
from chunkwise.search.errors import ChunkwiseError
from chunkwise.search.noise import make_noise
from chunkwise.tests.comfy.test_comfy_i2v import SVD_SIZE, WAN_SIZE, guide_image, spy_calls

SIZES = [8, 16, 24, 40, 48, 64, 830, 832]
LENGTHS = [1, 2, 4, 5, 6, 25, 32, 33]


def schema_range(node, name):
    widget = {i.id: i for i in node.define_schema().inputs}[name]
    return widget.min, widget.max


BINDINGS = {"svd": (svd.I2VSVD, svd), "wan": (wan.I2VWan, wan), "wan22_5b": (wan22_5b.I2VWan22TI2V, wan22_5b),
            "cosmos": (cosmos.I2VCosmosPredict2, cosmos)}
TEXT_FAMILIES = {"wan": WanFamily, "wan22_5b": Wan22TI2VFamily, "cosmos": CosmosPredict2Family}
"""The families built from text conditioning (the tiny Wan's serves for construction)."""


@pytest.mark.parametrize("binding", sorted(BINDINGS))
def test_construction_refuses_exactly_what_validate_inputs_refuses(binding, svd_parts, wan_parts):
    """Within the widgets' own ranges (ComfyUI enforces those), a family is built exactly from the sizes its
    node's validate_inputs accepts, and the construction error carries the same message."""
    node, module = BINDINGS[binding]
    frames_name = module.SPEC.sizes.frames

    def build(width, height, frames):
        if binding == "svd":
            return SVDFamily(svd_parts[2], width=width, height=height, video_frames=frames)
        return TEXT_FAMILIES[binding](wan_parts[2], wan_parts[3], width=width, height=height, length=frames)

    low, _ = schema_range(node, "width")
    checked = 0
    for width in SIZES:
        for frames in LENGTHS:
            values = {"width": width, "height": 32, frames_name: frames}
            verdict = node.validate_inputs(**values)
            if width < low:
                continue  # below the widget's min: ComfyUI refuses it before validate_inputs
            checked += 1
            if verdict is True:
                assert build(width, 32, frames).frames == frames
            else:
                with pytest.raises(ChunkwiseError) as refused:
                    build(width, 32, frames)
                assert verdict in str(refused.value)
    assert checked > 20
    # Values no widget can hold are refused at construction too.
    with pytest.raises(ChunkwiseError, match="positive integer multiple"):
        build(32.0, 32, 5)
    with pytest.raises(ChunkwiseError, match=f"{frames_name} must be an integer >= 1, got 0"):
        build(32, 32, 0)


def test_the_size_rule_and_the_sampler_defaults_drive_the_node_schema():
    for node, module in BINDINGS.values():
        spec = module.SPEC
        inputs = {i.id: i for i in node.define_schema().inputs}
        assert inputs["width"].step == inputs["height"].step == spec.sizes.multiple
        assert (inputs[spec.sizes.frames].step or 1) == spec.sizes.frames_step
        assert [inputs[k].default for k in ("steps", "cfg", "sampler_name", "scheduler")] == [
            spec.defaults.steps, spec.defaults.cfg, spec.defaults.sampler_name, spec.defaults.scheduler]


@dataclass(eq=False)
class OneByOneWan(WanFamily):
    spec = replace(wan.SPEC, batch="none")


@pytest.mark.parametrize("rule", ["batch", "none"])
def test_the_specs_batch_rule_drives_can_batch_and_sample_batch(wan_parts, rule):
    model, vae, positive, negative = wan_parts
    family = (WanFamily if rule == "batch" else OneByOneWan)(positive, negative, **WAN_SIZE)
    assert family.spec.batch == rule
    i2v = ComfyI2V(model, vae, family, cfg=1.0)
    assert i2v.can_batch() == (rule == "batch")
    cond = i2v.condition(guide_image())
    noises = [make_noise(i2v.latent_template(cond), s) for s in (1, 2, 3)]
    calls = spy_calls(i2v, lambda args: int(args["input"].shape[0]))
    results = i2v.sample_batch(cond, noises, steps=2)
    assert calls == ([3] * 2 if rule == "batch" else [1] * 6)
    assert len(results) == 3 and i2v.nfe == 3 * 2


def test_a_spec_refuses_an_unknown_batch_rule_and_a_noise_mask_family_refuses_two_experts(wan_parts):
    with pytest.raises(ChunkwiseError, match="batch must be one of"):
        replace(wan.SPEC, batch="stack")

    @dataclass(eq=False)
    class MaskedSpecWan(WanFamily):
        spec = replace(wan.SPEC, noise_mask=True)

    model, vae, positive, negative = wan_parts
    with pytest.raises(ChunkwiseError, match="two experts need a latent without a noise_mask"):
        ComfyI2V(model, vae, MaskedSpecWan(positive, negative, **WAN_SIZE), model_low_noise=model, switch_step=1,
                 schedule_steps=2)


def test_a_binding_warns_when_the_model_is_of_another_family(svd_parts, wan_parts, caplog):
    with caplog.at_level(logging.WARNING, logger="chunkwise"):
        check_latent_format(wan_parts[0], wan.SPEC)
        check_latent_format(svd_parts[0], svd.SPEC)
        assert not caplog.records
        check_latent_format(wan_parts[0], svd.SPEC)
    assert "latent format is Wan21, the SVD family's models use SD15" in caplog.text


def sample_both(a, b, guide, steps=4, k=2, seeds=(5, 6)):
    """The same runs on two denoisers: full, truncated + resumed, and a candidate batch."""
    cond_a, cond_b = a.condition(guide), b.condition(guide)
    noise = make_noise(a.latent_template(cond_a), seeds[0])
    assert torch.equal(noise, make_noise(b.latent_template(cond_b), seeds[0]))
    assert torch.equal(a.sample(cond_a, noise, steps=steps).latent, b.sample(cond_b, noise, steps=steps).latent)
    part_a, part_b = (d.sample(c, noise, steps=steps, end_step=k) for d, c in ((a, cond_a), (b, cond_b)))
    rest_a = a.sample(cond_a, noise, steps=steps, start_step=k, resume=part_a)
    rest_b = b.sample(cond_b, noise, steps=steps, start_step=k, resume=part_b)
    assert torch.equal(rest_a.latent, rest_b.latent)
    noises = [make_noise(a.latent_template(cond_a), s) for s in seeds]
    for x, y in zip(a.sample_batch(cond_a, noises, steps=steps), b.sample_batch(cond_b, noises, steps=steps),
                    strict=True):
        assert torch.equal(x.latent, y.latent)
    assert a.nfe == b.nfe


def test_preconditioned_svd_samples_exactly_what_the_svd_binding_samples(svd_parts):
    from comfy_extras.nodes_video_model import SVD_img2vid_Conditioning, VideoLinearCFGGuidance

    model, vae, clip_vision = svd_parts
    guide = guide_image(3)
    settings = dict(sampler_name="euler", scheduler="karras", cfg=2.5)
    bound = ComfyI2V(model, vae, SVDFamily(clip_vision, min_cfg=1.0, **SVD_SIZE), **settings)
    # The hand-wired graph: the stock conditioning node and VideoLinearCFGGuidance upstream.
    positive, negative, latent = SVD_img2vid_Conditioning().encode(
        clip_vision, guide, vae, SVD_SIZE["width"], SVD_SIZE["height"], SVD_SIZE["video_frames"], 127, 6, 0.0)
    patched = VideoLinearCFGGuidance().patch(model, 1.0)[0]
    pre = ComfyI2V(patched, vae, Preconditioned(positive, negative, latent, like=svd.SPEC), **settings)
    assert pre.can_batch() and pre.family.spec.batch == "frames"
    assert "SVD (preconditioned), latent [4, 4, 6, 8]" in pre.describe()
    sample_both(bound, pre, guide)


def test_preconditioned_wan_without_a_family_samples_what_the_wan_binding_samples(wan_parts):
    from comfy_extras.nodes_wan import WanImageToVideo

    model, vae, positive, negative = wan_parts
    guide = guide_image(4)
    bound = ComfyI2V(model, vae, WanFamily(positive, negative, **WAN_SIZE), cfg=2.0)
    made = WanImageToVideo.execute(positive, negative, vae, WAN_SIZE["width"], WAN_SIZE["height"],
                                   WAN_SIZE["length"], 1, start_image=guide).result
    pre = ComfyI2V(model, vae, Preconditioned(*made), cfg=2.0)
    assert not pre.can_batch()  # no family to borrow a batch rule from: one candidate per call
    assert pre.family.positive is made[0]  # what run fingerprints read
    cond_a, cond_b = bound.condition(guide), pre.condition(guide)
    noise = make_noise(bound.latent_template(cond_a), 8)
    torch.testing.assert_close(pre.sample(cond_b, noise, steps=3).latent, bound.sample(cond_a, noise, steps=3).latent,
                               rtol=0, atol=0)
    with pytest.raises(ChunkwiseError, match="LATENT dict with 'samples'"):
        Preconditioned(positive, negative, {"noise_mask": None})


def test_a_family_spec_without_a_size_rule_needs_no_sizes():
    spec = FamilySpec(name="Made", node="(upstream)", batch="none", sizes=None, defaults=SamplerDefaults())
    pre = Preconditioned([], [], {"samples": torch.zeros(1, 4, 2, 2)}, like=spec)
    assert pre.frames is None and pre.spec.sizes is None and pre.name == "Made (preconditioned)"
