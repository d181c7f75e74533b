"""Tier 2: the search benchmark's real-weights mode on a tiny diffusers SVD folder: it runs, and its
counted figures (NFE per chunk and the NFE ratio) follow the formula. Its timings are printed, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chunkwise.tests.pure import tiny_diffusers as tiny  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_search.py"


def test_bench_search_times_a_diffusers_folder_naive_against_search(tmp_path):
    tiny.tiny_svd().save_pretrained(tmp_path / "svd")
    out = tmp_path / "bench.json"
    m, k, s = 2, 1, 3
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--diffusers", str(tmp_path / "svd"), "--width", "16", "--height", "16",
         "--m", str(m), "--k", str(k), "--steps", str(s), "--reps", "1", "--chunks", "1", "--device", "cpu",
         "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "## Timed, diffusers" in proc.stdout
    timed = json.loads(out.read_text())["families"]["diffusers"]["timed"]
    nfe = {variant: raw["summary"]["nfe_per_chunk"]["median"] for variant, raw in timed.items()}
    assert nfe == {"naive": s, "short": m * k + s, "truncated+resume": m * k + s - k,
                   "batched (truncated+resume)": m * k + s - k}
    assert timed["short"]["nfe_ratio"] == pytest.approx((m * k + s) / s)
    for raw in timed.values():
        summary = raw["summary"]
        assert {"preview_decode", "final_decode", "scoring", "model"} <= set(summary)  # the parts it reports
        assert summary["model"]["median"] < summary["wall_per_chunk"]["median"]
    assert timed["naive"]["summary"]["preview_sampling"]["median"] == 0
    assert timed["short"]["summary"]["preview_decode"]["median"] > 0  # previews decoded apart from the final
