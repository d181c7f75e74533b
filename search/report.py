"""The search report, format ``chunkwise.report/1``: one JSON document per run.

Key names are stable: tools and tests read them.

```
{"format": "chunkwise.report/1",
 "settings": {"chunks", "candidates", "k", "steps", "preview_mode", "seed", "scorer",
              "resume", "drop_first_frame", "colour_anchor", "colour_method",
              "cost": {"candidate_batch", "preview_stride", "preview_decode", "accept_score", "halving_k"}
                      (only when a cost option is on; then every chunk has a "cost" section too)},
 "chunks": [{"index", "candidates": [{"seed", "score", "frame_scores"}], "chosen", "chosen_seed",
             "nfe": {"preview", "full"},
             "seconds": {"condition", "preview", "decode", "score", "full"}}],
 "totals": {"nfe", "seconds", "frames"},
 "restored_chunks": number of chunks read back from a run folder instead of generated}
```
A naive chunk (search off) has one candidate whose score is null.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_FORMAT = "chunkwise.report/1"


@dataclass
class ChunkRecord:
    index: int
    candidates: list[dict]
    chosen: int
    chosen_seed: int
    nfe: dict = field(default_factory=lambda: {"preview": 0, "full": 0})
    seconds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def build_report(
    settings, scorer: str, records: list, *, frames: int, seconds: float, restored: int = 0
) -> dict[str, Any]:
    """``records`` covers every chunk; the first ``restored`` came from a run folder
    (their ``seconds`` were measured by the run that made them; ``totals.seconds``
    is this call's wall time)."""
    search = settings.search
    chunks = [r.to_json() if isinstance(r, ChunkRecord) else dict(r) for r in records]
    report = {
        "format": REPORT_FORMAT,
        "settings": {
            "chunks": settings.chunks,
            "candidates": search.candidates if search.searching else 1,
            "k": search.k,
            "steps": search.steps,
            "preview_mode": search.preview_mode if search.searching else "off",
            "seed": settings.seed,
            "scorer": scorer if search.searching else "none",
            "resume": search.resumes,
            "drop_first_frame": settings.drop_first_frame,
            "colour_anchor": float(getattr(settings, "colour_anchor", 0.0)),
            "colour_method": getattr(settings, "colour_method", "lab"),
        },
        "chunks": chunks,
        "totals": {
            "nfe": sum(c["nfe"]["preview"] + c["nfe"]["full"] for c in chunks),
            "seconds": float(seconds),
            "frames": int(frames),
        },
        "restored_chunks": int(restored),
    }
    if search.searching and getattr(search, "tuned", False):
        report["settings"]["cost"] = {
            "candidate_batch": search.candidate_batch,
            "preview_stride": search.preview_stride,
            "preview_decode": search.preview_decode,
            "accept_score": search.accept_score,
            "halving_k": search.halving_k,
        }
    return report


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def chunk_line(chunk) -> str:
    """One finished chunk in a line: the winner, its seed, every candidate's score, model evaluations, seconds.

    ``chunk`` is a chunk record (:class:`ChunkRecord`) or its JSON form in a report. Hosts show it as each
    chunk finishes; :func:`summarize` lists it for every chunk of a report.
    """
    c = chunk if isinstance(chunk, dict) else vars(chunk)
    scores = " ".join("-" if cand["score"] is None else f"{cand['score']:.4f}" for cand in c["candidates"])
    return (
        f"chunk {c['index']}: winner {c['chosen']} (seed {c['chosen_seed']}) of [{scores}], "
        f"nfe {c['nfe']['preview']}+{c['nfe']['full']}, {sum(c['seconds'].values()):.1f}s"
    )


def summarize(report: dict) -> str:
    """A readable per-chunk summary: scores, winner, model evaluations, seconds."""
    s = report["settings"]
    lines = [
        f"chunkwise: {s['chunks']} chunks, m={s['candidates']} k={s['k']} s={s['steps']} "
        f"mode={s['preview_mode']} seed={s['seed']} scorer={s['scorer']}"
    ]
    lines += [chunk_line(c) for c in report["chunks"]]
    t = report["totals"]
    lines.append(f"total: {t['frames']} frames, {t['nfe']} model evaluations, {t['seconds']:.1f}s")
    return "\n".join(lines)
