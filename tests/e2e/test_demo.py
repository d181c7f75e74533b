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


def test_demo_on_the_toy_world_shows_search_holding_the_colours(tmp_path):
    """The default demo (no weights): naive and search from one image and seed through the A/B workflow."""
    import re

    from chunkwise.scripts import demo_toy

    out = tmp_path / "output"
    chunks = 4
    cmd = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(out), "--chunks", str(chunks)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert demo_toy.LABEL in done.stdout

    # 1. Both videos and the side-by-side one: chunks x 13 frames minus the dropped seam frames.
    import av

    prompt = json.loads((out / "chunkwise_demo_toy_prompt.json").read_text())
    width, height, length = demo_toy.toy_size(prompt)
    expected = length + (chunks - 1) * (length - 1)
    for name, frame_width in (("naive", width), ("search", width), ("side_by_side", 2 * width + 4)):
        with av.open(str(out / f"chunkwise_demo_toy_{name}.mp4")) as container:
            frames = [f for f in container.decode(video=0)]
        assert len(frames) == expected and (frames[0].width, frames[0].height) == (frame_width, height), name

    # 2. The evaluations (chunkwise.eval/1) and the comparison chart.
    naive = json.loads((out / "chunkwise_demo_toy_naive.eval.json").read_text())
    search = json.loads((out / "chunkwise_demo_toy_search.eval.json").read_text())
    for ev, label in ((naive, "naive"), (search, "search m=4")):
        assert ev["format"] == "chunkwise.eval/1" and ev["label"] == label and len(ev["chunks"]) == chunks
        assert ev["drift"]["reference"] == "input image"
    from PIL import Image

    with Image.open(out / "chunkwise_demo_toy_comparison.png") as plot:
        assert plot.width > 400 and plot.height > 200
    report = json.loads((out / "chunkwise_demo_toy_search_report.json").read_text())
    assert [len(c["candidates"]) for c in report["chunks"]] == [4] * chunks

    # 3. The printed table: one row per chunk, and the last chunk's drift, lower with search.
    found = re.search(r"last chunk \((\d+)\): colour drift naive ([\d.]+), search ([\d.]+)", done.stdout)
    assert found, done.stdout[-2000:]
    assert int(found.group(1)) == chunks
    drift_naive, drift_search = float(found.group(2)), float(found.group(3))
    assert (drift_naive, drift_search) == tuple(round(d, 2) for d in demo_toy.last_drifts(naive, search))
    print(f"\ntoy world, {chunks} chunks: last-chunk colour drift naive {drift_naive}, search {drift_search}")
    assert drift_search < drift_naive
