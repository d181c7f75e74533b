"""Charts of evaluations: each dimension against the chunk number, and two evaluations with their difference.

Drawn with ``search.charts`` (PIL). The x axis counts chunks from 1, so the
per-chunk value of chunk k and the value of the video truncated after k chunks
share a tick (the paper's Table 3 reads k = 5, 10, 15, 20).
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from ..search.charts import PALETTE, Series, font, line_chart, stack, text_size, vertical
from .evaluation import DIMENSIONS, load_evaluation
from .evaluation_report import chunk_metrics, computed_metrics, load_comparison

PANEL = (480, 280)
DIFFERENCE_PANEL = (480, 170)
TITLES = {
    "subject_consistency": "subject consistency",
    "background_consistency": "background consistency",
    "temporal_flickering": "temporal flickering",
    "motion_smoothness": "motion smoothness",
    "aesthetic_quality": "aesthetic quality",
    "colour_drift": "colour drift of the last frame (Lab)",
    "embedding_drift": "embedding drift of the last frame (1 - cos)",
}
A_COLOUR, B_COLOUR, DIFF_COLOUR = PALETTE[0], PALETTE[1], PALETTE[2]


def _header(text: str, width: int) -> Image.Image:
    typeface = font(15)
    strip = Image.new("RGB", (width, 30), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    _, h = text_size(draw, text, typeface)
    draw.text((10, (30 - h) // 2 - 2), text, fill=(0, 0, 0), font=typeface)
    return strip


def evaluation_chart(evaluation) -> Image.Image:
    """One panel per VBench dimension (per chunk, and the first k chunks) and per drift, against the chunk number."""
    ev = load_evaluation(evaluation)
    xs = [row["index"] + 1 for row in ev["chunks"]]
    metrics = computed_metrics(ev)
    span = (1, max(1, len(xs)))
    panels = []
    for dim in DIMENSIONS:
        if dim not in metrics:
            img, _ = line_chart([], title=TITLES[dim], x_label="chunk k", y_label="score", size=PANEL, x_span=span,
                                note="not computed: see left_out in the evaluation")
            panels.append(img)
            continue
        per_chunk = Series("per chunk", xs, [row["scores"][dim] for row in ev["chunks"]], colour=A_COLOUR)
        first_k = Series("first k chunks", xs, [row["scores"][dim] for row in ev["cumulative"]],
                         colour=B_COLOUR, dashed=True)
        img, _ = line_chart([per_chunk, first_k], title=TITLES[dim], x_label="chunk k", y_label="score",
                            size=PANEL, x_span=span)
        panels.append(img)
    for drift in ("colour_drift", "embedding_drift"):
        if drift in metrics:
            values = [chunk_metrics(row)[drift] for row in ev["chunks"]]
            img, _ = line_chart([Series("last frame vs " + ev["drift"]["reference"], xs, values, colour=DIFF_COLOUR)],
                                title=TITLES[drift], x_label="chunk k", y_label="distance", size=PANEL, x_span=span)
            panels.append(img)
    grid = stack(panels, columns=2)
    return vertical([_header(f"chunkwise evaluation: {ev['label']}", grid.width), grid])


def comparison_chart(comparison) -> Image.Image:
    """Per metric: a and b per chunk on the same axes, and under them the difference b - a as bars."""
    cmp = load_comparison(comparison)
    a, b = cmp["a"]["label"], cmp["b"]["label"]
    xs = [row["index"] + 1 for row in cmp["chunks"]]
    cells = []
    for metric in cmp["metrics"]:
        unit = "score" if metric in DIMENSIONS else "distance"
        top, _ = line_chart(
            [Series(f"a: {a}", xs, [row["a"][metric] for row in cmp["chunks"]], colour=A_COLOUR),
             Series(f"b: {b}", xs, [row["b"][metric] for row in cmp["chunks"]], colour=B_COLOUR)],
            title=TITLES[metric] + " per chunk", x_label="chunk k", y_label=unit, size=PANEL)
        bottom, _ = line_chart(
            [Series("b - a", xs, [row["difference"][metric] for row in cmp["chunks"]], colour=DIFF_COLOUR,
                    style="bars")],
            x_label="chunk k", y_label="b - a", size=DIFFERENCE_PANEL, zero_line=True)
        cells.append(vertical([top, bottom]))
    if not cells:
        empty, _ = line_chart([], title="nothing to compare", size=PANEL, note="no metric was computed in both")
        cells.append(empty)
    grid = stack(cells, columns=2)
    return vertical([_header(f"chunkwise comparison: b = {b} vs a = {a}", grid.width), grid])


__all__ = ["comparison_chart", "evaluation_chart"]
