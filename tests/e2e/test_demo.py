"""Tier 3: the demo (scripts/demo.py), end to end with tiny models, and its real-weights checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chunkwise.scripts import demo

ROOT = Path(__file__).resolve().parent.parent.parent


def test_demo_writes_video_and_report(tmp_path):
    out = tmp_path / "output"
    cmd = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workflow", "wan", "--output", str(out),
           "--chunks", "2", "--candidates", "2", "--k", "1", "--steps", "2", "--seed", "3"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # 1. The video: chunks x frames per chunk minus the dropped seam frames, as an h264 mp4.
    import av

    with av.open(str(out / "chunkwise_demo_wan.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    per_chunk = demo.TINY["wan"]["length"]
    assert frames == 2 * per_chunk - 1

    # 2. The report: 2 chunks of 2 candidates, the argmax chosen.
    report = json.loads((out / "chunkwise_demo_wan_report.json").read_text())
    assert [len(c["candidates"]) for c in report["chunks"]] == [2, 2]
    for chunk in report["chunks"]:
        scores = [c["score"] for c in chunk["candidates"]]
        assert chunk["chosen"] == scores.index(max(scores))
    assert (out / "chunkwise_demo_wan_scores.png").stat().st_size > 0

    # 3. ComfyUI's own UNETLoader and VAELoader loaded the tiny Wan files.
    prompt = json.loads((out / "chunkwise_demo_wan_prompt.json").read_text())
    kinds = {n["class_type"]: n["inputs"] for n in prompt.values()}
    assert kinds["UNETLoader"]["unet_name"] == demo.TINY_WAN_UNET
    assert kinds["VAELoader"]["vae_name"] == demo.TINY_WAN_VAE
    assert str(out) in done.stdout


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
