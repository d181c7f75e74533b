"""The demo's prompts and real-weights checks (scripts/demo.py), without a server."""

from __future__ import annotations

import pytest
from chunkwise.scripts import demo


def test_wan22_tiny_prompt_loads_both_experts_and_switches_halfway():
    prompt = demo.tiny_prompt("wan22", "start.png", {"steps": 4})
    unets = [n["inputs"]["unet_name"] for n in prompt.values() if n["class_type"] == "UNETLoader"]
    assert unets == [demo.TINY_WAN_UNET] * 2
    binding = prompt[demo.find(prompt, "ChunkwiseI2VWan")]["inputs"]
    assert binding["steps"] == 4 and binding["switch_step"] == 2 and isinstance(binding["model_low_noise"], list)
    real = demo.real_prompt("wan22", "start.png", {"steps": 30})
    assert real[demo.find(real, "ChunkwiseI2VWan")]["inputs"]["switch_step"] == 15
    wan21 = demo.real_prompt("wan", "start.png", {"steps": 30})
    assert wan21[demo.find(wan21, "ChunkwiseI2VWan")]["inputs"]["switch_step"] == 0  # one model: no switch


@pytest.mark.parametrize("workflow", ["svd", "wan", "wan22"])
def test_real_weights_are_checked_by_the_workflows_standard_names(workflow, tmp_path):
    names = {m["name"]: m["directory"] for m in demo.required_models(workflow)}
    assert names, "the workflow carries no model entries"
    args = demo.parse_args(["--workflow", workflow, "--models", str(tmp_path)])
    with pytest.raises(demo.DemoError) as err:
        demo.choose_models(args)
    for name in names:
        assert name in str(err.value) and "https://" in str(err.value)
    for name, directory in names.items():
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
        (tmp_path / directory / name).write_bytes(b"")
    assert demo.choose_models(args) == tmp_path.resolve()
    prompt = demo.real_prompt(workflow, "start.png", {"chunks": 7})
    loop = prompt[demo.find(prompt, "ChunkwiseChunkLoop")]["inputs"]
    assert loop["chunks"] == 7
    file_inputs = [v for n in prompt.values() for k, v in n["inputs"].items() if k.endswith("_name")]
    assert set(names) <= set(file_inputs)
