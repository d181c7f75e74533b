"""Readable summaries of ``chunkwise.eval/1`` evaluations, and the comparison of two of them.

Comparison format ``chunkwise.eval-compare/1`` (differences are ``b - a``; compare
e.g. a = naive, b = search at the same seed)::

    {"format": "chunkwise.eval-compare/1",
     "a": {"label", "source", "chunks"}, "b": {...},
     "metrics": [names compared: VBench dimensions computed in both, then colour_drift, embedding_drift],
     "higher_is_better": {name: bool},          # the VBench dimensions: true; the drifts: false
     "not_compared": {name: why},               # computed in only one, or in neither
     "whole_video": {"a": {name: v}, "b": {...}, "difference": {name: b - a}},
     "chunks": [{"index": i, "a": {...}, "b": {...}, "difference": {...}}],     # i < min(chunks of a, b)
     "cumulative": [{"chunks": k, "a": {...}, "b": {...}, "difference": {...}}],
     "mean_difference": {name: mean over chunks of the per-chunk difference},
     "notes": [str]}                            # e.g. different chunk counts or encoders

A difference is null where either value is null (a segment too short, a dimension not computed).
"""

from __future__ import annotations

import json
from typing import Optional

from ..search.errors import ChunkwiseError
from .evaluation import DIMENSIONS, PAPER_CHUNK_COUNTS, load_evaluation
from .vbench import mean_or_none

COMPARE_FORMAT = "chunkwise.eval-compare/1"
DRIFTS = ("colour_drift", "embedding_drift")
SHORT = {
    "subject_consistency": "subject",
    "background_consistency": "background",
    "temporal_flickering": "flicker",
    "motion_smoothness": "motion",
    "aesthetic_quality": "aesthetic",
    "colour_drift": "colour drift",
    "embedding_drift": "emb drift",
}


def _number(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def chunk_metrics(row: dict) -> dict[str, Optional[float]]:
    """A chunk row's VBench scores and its drift, under the comparison's metric names."""
    drift = row.get("drift") or {}
    return {**row["scores"], "colour_drift": drift.get("colour"), "embedding_drift": drift.get("embedding")}


def computed_metrics(evaluation: dict) -> list[str]:
    names = [d for d in DIMENSIONS if evaluation["dimensions"].get(d, {}).get("computed")]
    names.append("colour_drift")
    if (evaluation.get("drift") or {}).get("embedding_model"):
        names.append("embedding_drift")
    return names


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    return ["  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) for cells in [header, *rows]]


def paper_rows(count: int) -> list[int]:
    """Chunk counts shown in the cumulative table: the paper's 5/10/15/20 that exist, and the last."""
    shown = [k for k in PAPER_CHUNK_COUNTS if k <= count]
    return shown + ([count] if count not in shown else [])


def summarize_evaluation(evaluation: dict, max_chunk_rows: int = 25) -> str:
    """A readable summary: what was computed with which model, what was left out and why, and the tables."""
    ev = load_evaluation(evaluation)
    src = ev["source"]
    n = len(ev["chunks"])
    sizes = sorted({c["frames"] for c in ev["chunks"]})
    lines = [
        f"chunkwise evaluation {ev['label']!r}: {src['frames']} frames ({src['width']}x{src['height']}) in {n} "
        f"chunks of {'/'.join(map(str, sizes))} frames ({src['kind']}{': ' + src['path'] if src.get('path') else ''})"
    ]
    for dim in DIMENSIONS:
        info = ev["dimensions"][dim]
        if info["computed"]:
            lines.append(f"  {dim}: {info['model'] or 'no model needed'} (VBench: {info['vbench_model']})")
    for dim, why in ev["left_out"].items():
        lines.append(f"  {dim}: not computed: {why}")
    metrics = computed_metrics(ev)
    dims = [m for m in metrics if m in DIMENSIONS]
    lines.append("whole video: " + "  ".join(f"{SHORT[d]} {_number(ev['whole_video'][d])}" for d in dims))
    lines.append("after k chunks (the video truncated there):")
    rows = [[str(k)] + [_number(ev["cumulative"][k - 1]["scores"][d]) for d in dims] for k in paper_rows(n)]
    lines += ["  " + r for r in _table(["k"] + [SHORT[d] for d in dims], rows)]
    lines.append(f"per chunk (drift: of the last frame from the {ev['drift']['reference']}):")
    rows = []
    for row in ev["chunks"][:max_chunk_rows]:
        values = chunk_metrics(row)
        rows.append([str(row["index"])] + [_number(values[m], 2 if m == "colour_drift" else 4) for m in metrics])
    lines += ["  " + r for r in _table(["chunk"] + [SHORT[m] for m in metrics], rows)]
    if n > max_chunk_rows:
        lines.append(f"  ... {n - max_chunk_rows} more chunks in the JSON")
    return "\n".join(lines)


def _difference(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else b - a


def _pair(a: dict, b: dict, metrics: list[str]) -> dict:
    a = {m: a.get(m) for m in metrics}
    b = {m: b.get(m) for m in metrics}
    return {"a": a, "b": b, "difference": {m: _difference(a[m], b[m]) for m in metrics}}


def compare_evaluations(a, b) -> dict:
    """Per-metric ``b - a`` per chunk, per chunk count and for the whole video (format ``chunkwise.eval-compare/1``)."""
    a, b = load_evaluation(a), load_evaluation(b)
    in_a, in_b = computed_metrics(a), computed_metrics(b)
    metrics = [m for m in in_a if m in in_b]
    not_compared = {}
    for m in list(DIMENSIONS) + list(DRIFTS):
        if m in metrics:
            continue
        where = "a" if m in in_a else "b" if m in in_b else None
        not_compared[m] = f"computed only in {where}" if where else "computed in neither"
    n = min(len(a["chunks"]), len(b["chunks"]))
    notes = []
    if len(a["chunks"]) != len(b["chunks"]):
        notes.append(f"a has {len(a['chunks'])} chunks, b {len(b['chunks'])}: chunks and counts compared up to {n}; "
                     "whole_video compares videos of different lengths")
    for d in metrics:
        if d in DIMENSIONS and a["dimensions"][d]["model"] != b["dimensions"][d]["model"]:
            notes.append(f"{d}: a used {a['dimensions'][d]['model']!r}, b {b['dimensions'][d]['model']!r}")
    if a["drift"]["reference"] != b["drift"]["reference"]:
        notes.append(f"drift reference: a {a['drift']['reference']!r}, b {b['drift']['reference']!r}")
    chunks = [{"index": i, **_pair(chunk_metrics(a["chunks"][i]), chunk_metrics(b["chunks"][i]), metrics)}
              for i in range(n)]
    dims = [m for m in metrics if m in DIMENSIONS]
    cumulative = [{"chunks": k + 1, **_pair(a["cumulative"][k]["scores"], b["cumulative"][k]["scores"], dims)}
                  for k in range(n)]
    return {
        "format": COMPARE_FORMAT,
        "a": {"label": a["label"], "source": a["source"], "chunks": len(a["chunks"])},
        "b": {"label": b["label"], "source": b["source"], "chunks": len(b["chunks"])},
        "metrics": metrics,
        "higher_is_better": {m: m in DIMENSIONS for m in metrics},
        "not_compared": not_compared,
        "whole_video": _pair(a["whole_video"], b["whole_video"], dims),
        "chunks": chunks,
        "cumulative": cumulative,
        "mean_difference": {m: mean_or_none([c["difference"][m] for c in chunks if c["difference"][m] is not None])
                            for m in metrics},
        "notes": notes,
    }


def load_comparison(obj) -> dict:
    """A ``chunkwise.eval-compare/1`` comparison from a dict or a JSON string; checked."""
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except ValueError as e:
            raise ChunkwiseError(f"comparison is not JSON ({e}); expected a {COMPARE_FORMAT} document") from e
    if not isinstance(obj, dict) or obj.get("format") != COMPARE_FORMAT:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise ChunkwiseError(
            f"expected a {COMPARE_FORMAT} comparison, got format {got!r}; connect the comparison output of "
            "ChunkwiseCompare (or a file written by chunkwise evaluate --compare)"
        )
    return obj


def summarize_comparison(comparison: dict, max_chunk_rows: int = 25) -> str:
    """A readable summary of a comparison: which is better where, per chunk count and per chunk."""
    cmp = load_comparison(comparison)
    a, b = cmp["a"]["label"], cmp["b"]["label"]
    lines = [f"chunkwise comparison: b = {b!r} minus a = {a!r} (VBench dimensions: > 0 means b is better; "
             "drift: < 0 means b drifts less)"]
    lines += [f"  note: {n}" for n in cmp["notes"]]
    lines += [f"  {m}: not compared ({why})" for m, why in cmp["not_compared"].items()]
    dims = [m for m in cmp["metrics"] if m in DIMENSIONS]
    whole = cmp["whole_video"]
    lines.append("whole video: " + "  ".join(
        f"{SHORT[d]} {_number(whole['a'][d])} -> {_number(whole['b'][d])} ({_signed(whole['difference'][d])})"
        for d in dims))
    lines.append("after k chunks, difference b - a:")
    rows = [[str(k)] + [_signed(cmp["cumulative"][k - 1]["difference"][d]) for d in dims]
            for k in paper_rows(len(cmp["cumulative"]))] if cmp["cumulative"] else []
    lines += ["  " + r for r in _table(["k"] + [SHORT[d] for d in dims], rows)]
    lines.append("per chunk, difference b - a:")
    rows = [[str(c["index"])] + [_signed(c["difference"][m]) for m in cmp["metrics"]]
            for c in cmp["chunks"][:max_chunk_rows]]
    lines += ["  " + r for r in _table(["chunk"] + [SHORT[m] for m in cmp["metrics"]], rows)]
    lines.append("mean over chunks: " + "  ".join(
        f"{SHORT[m]} {_signed(v)}" for m, v in cmp["mean_difference"].items()))
    return "\n".join(lines)


def _signed(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.4f}"


__all__ = [
    "COMPARE_FORMAT",
    "chunk_metrics",
    "compare_evaluations",
    "computed_metrics",
    "load_comparison",
    "summarize_comparison",
    "summarize_evaluation",
]
