"""The score plot: every candidate's score per chunk, the winners joined by a line.

Drawn with ``search.charts`` (PIL, like the evaluation charts): axes, ticks, the chunk numbers of
the report (its ``index``, from 0, as the per-chunk summary prints them), a legend and a title
with the run's search settings.
"""

from __future__ import annotations

import torch
from PIL import Image

from ..search.charts import Axes, Series, line_chart, to_image_tensor

SIZE = (640, 360)
CHOSEN, OTHERS = (214, 39, 40), (127, 127, 127)
TITLE_CHARS = 80


def _title(report: dict) -> str:
    s = report.get("settings", {})
    scorer = str(s.get('scorer')).split('[')[0]  # its name; the full description is in the report
    text = f"chunkwise scores: m={s.get('candidates')} k={s.get('k')} scorer={scorer}"
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 3] + "..."


def score_chart(report: dict) -> tuple[Image.Image, Axes]:
    """The report's scores as a chart: the chosen candidate per chunk (line), the others (hollow points);
    returns the image and its axes (where each score is drawn)."""
    chunks = report.get("chunks", [])
    span = (0, max(0, len(chunks) - 1))
    xs, chosen, other_x, other_y = [], [], [], []
    for c in chunks:
        xs.append(c["index"])
        chosen.append(c["candidates"][c["chosen"]]["score"] if c.get("candidates") else None)
        for j, cand in enumerate(c.get("candidates", [])):
            if j != c["chosen"] and cand["score"] is not None:
                other_x.append(c["index"])
                other_y.append(cand["score"])
    if all(v is None for v in chosen):
        return line_chart([], title=_title(report), x_label="chunk", y_label="score", size=SIZE, x_span=span,
                          note="search off: no scores (naive chunk-by-chunk run)")
    series = [Series("other candidates", other_x, other_y, colour=OTHERS, style="points"),
              Series("chosen", xs, chosen, colour=CHOSEN)]
    return line_chart(series, title=_title(report), x_label="chunk", y_label="score", size=SIZE, x_span=span)


def score_plot(report: dict) -> torch.Tensor:
    """The score chart as a ComfyUI IMAGE ``[1, H, W, 3]``."""
    return to_image_tensor(score_chart(report)[0])
