"""Tier 3: the demo (scripts/demo.py), end to end with tiny models through a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
