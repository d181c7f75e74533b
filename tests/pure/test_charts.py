"""Tier 1: the PIL chart module and the evaluation charts: pixels where axes, ticks, labels, legend and data must be."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from chunkwise.scorers.encoders import CallableEncoder
from chunkwise.scorers.evaluation import EvalModels, evaluate_video
from chunkwise.scorers.evaluation_plots import PANEL, comparison_chart, evaluation_chart
from chunkwise.scorers.evaluation_report import compare_evaluations
from chunkwise.search import ChunkwiseError
from chunkwise.search.charts import BLACK, WHITE, ZERO, Series, line_chart, nice_ticks, stack, to_image_tensor

BLUE, RED, GREEN = (31, 119, 180), (214, 39, 40), (44, 160, 44)


def dark(pixels: np.ndarray) -> int:
    """How many pixels in a region are text-dark (any antialiased glyph has some)."""
    return int((pixels.max(axis=-1) < 140).sum())


@pytest.fixture
def chart():
    series = [
        Series("per chunk", [1, 2, 3, 4, 5], [0.95, 0.93, None, 0.91, 0.90], colour=BLUE),
        Series("first k chunks", [1, 2, 3, 4, 5], [0.95, 0.94, 0.935, 0.93, 0.925], colour=RED, dashed=True),
    ]
    img, axes = line_chart(series, title="subject consistency", x_label="chunk k", y_label="score", size=(640, 360))
    return np.asarray(img), axes


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.93, 0.97) == pytest.approx([0.93, 0.94, 0.95, 0.96, 0.97])
    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ticks = nice_ticks(-0.013, 0.021)
    assert ticks[0] <= -0.013 and ticks[-1] >= 0.021 and len(ticks) <= 8
    assert len(nice_ticks(0.5, 0.5)) >= 2  # a flat series still gets an axis
    with pytest.raises(ChunkwiseError, match="tick range must be finite"):
        nice_ticks(1.0, float("nan"))


def test_axes_ticks_and_tick_labels_are_drawn(chart):
    px, axes = chart
    left, top, right, bottom = axes.box
    # The two axis lines: black along the left edge and the bottom of the plot box.
    assert (px[top:bottom, left] == BLACK).all()
    assert (px[bottom, left:right] == BLACK).all()
    # Every y tick: a tick mark out to the left and a label left of it; every x tick: a mark below and a label.
    assert axes.y_ticks == pytest.approx([0.88, 0.90, 0.92, 0.94, 0.96])  # round steps, data padded off the axes
    for t in axes.y_ticks:
        _, y = axes.to_pixel(axes.x_range[0], t)
        assert (px[y, left - 4 : left] == BLACK).all(), t
        assert dark(px[y - 6 : y + 7, : left - 6]) > 5, t
    assert axes.x_ticks == [1, 2, 3, 4, 5]
    for t in axes.x_ticks:
        x, _ = axes.to_pixel(t, axes.y_range[0])
        assert (px[bottom : bottom + 5, x] == BLACK).all(), t
        assert dark(px[bottom + 6 : bottom + 20, x - 6 : x + 7]) > 3, t
    # Outside the box to the right and above the legend there is only white.
    assert (px[:, right + 2 :] == WHITE).all()


def test_title_axis_labels_and_legend_are_drawn(chart):
    px, axes = chart
    left, top, right, bottom = axes.box
    assert dark(px[:24, left : left + 160]) > 40  # the title, top left
    assert dark(px[-20:, (left + right) // 2 - 30 : (left + right) // 2 + 30]) > 10  # x label, bottom centre
    assert dark(px[(top + bottom) // 2 - 25 : (top + bottom) // 2 + 25, :20]) > 10  # y label, rotated, at the left
    labels = [entry[0] for entry in axes.legend]
    assert labels == ["per chunk", "first k chunks"]
    for _label, colour, (x, y) in axes.legend:
        assert tuple(px[y, x]) == colour  # the swatch
        assert dark(px[y - 7 : y + 8, x + 12 : x + 60]) > 10  # its text


def test_data_points_lines_gaps_and_dashes(chart):
    px, axes = chart
    for x, y in [(2, 0.93), (4, 0.91), (5, 0.90)]:
        assert tuple(px[axes.to_pixel(x, y)[::-1]]) == BLUE
    assert tuple(px[axes.to_pixel(3, 0.935)[::-1]]) == RED
    # No line across the gap at chunk 3: half-way between 2 and 4 the blue series is absent.
    (x2, y2), (x4, y4) = axes.to_pixel(2, 0.93), axes.to_pixel(4, 0.91)
    mid = px[(y2 + y4) // 2 - 1 : (y2 + y4) // 2 + 2, (x2 + x4) // 2 - 1 : (x2 + x4) // 2 + 2]
    assert not (mid == BLUE).all(axis=-1).any()
    # The dashed red line between two points has red dashes and gaps.
    (xa, ya), (xb, yb) = axes.to_pixel(1, 0.95), axes.to_pixel(2, 0.94)
    along = [tuple(px[round(ya + (yb - ya) * f), round(xa + (xb - xa) * f)]) for f in np.linspace(0.1, 0.9, 40)]
    assert RED in along and any(c != RED for c in along)


def test_bars_and_the_zero_line():
    img, axes = line_chart([Series("b - a", [1, 2, 3], [0.02, -0.01, 0.03], colour=GREEN, style="bars")],
                           zero_line=True, y_label="b - a", size=(400, 240))
    px = np.asarray(img)
    assert axes.y_range[0] < 0 < axes.y_range[1]
    for x, y in [(1, 0.02), (2, -0.01), (3, 0.03)]:
        cx, cy = axes.to_pixel(x, y / 2)
        assert tuple(px[cy, cx]) == GREEN
    _, zy = axes.to_pixel(0, 0.0)
    gap_x = (axes.to_pixel(1, 0)[0] + axes.to_pixel(2, 0)[0]) // 2
    assert tuple(px[zy, gap_x]) == ZERO
    with pytest.raises(ChunkwiseError, match="has style 'pie'"):
        line_chart([Series("x", [1], [1.0], style="pie")])
    with pytest.raises(ChunkwiseError, match="2 x values and 1 y values"):
        Series("x", [1, 2], [1.0])


def test_an_empty_chart_shows_its_note_and_panels_stack():
    img, axes = line_chart([], title="motion smoothness", note="not computed", x_span=(1, 4), size=(400, 240))
    px = np.asarray(img)
    left, top, right, bottom = axes.box
    assert axes.x_ticks == [1, 2, 3, 4]
    inside = px[top + 2 : bottom - 2, left + 2 : right - 2]
    assert not (inside == BLACK).all(axis=-1).any()  # no data, no black
    assert (inside.max(axis=-1) < 200).sum() > 20  # the grey note
    grid = stack([img, img, img], columns=2)
    assert grid.size == (800, 480)
    tensor = to_image_tensor(grid)
    assert tensor.shape == (1, 480, 800, 3) and tensor.dtype == torch.float32 and float(tensor.max()) <= 1.0


def test_evaluation_and_comparison_charts_draw_every_dimension():
    video = torch.rand(12, 4, 4, 3, generator=torch.Generator().manual_seed(2))
    enc = CallableEncoder(lambda b: b.mean(dim=(1, 2)) + 0.1)
    a = evaluate_video(video, 4, models=EvalModels(subject=enc, background=enc), label="naive")
    b = evaluate_video(video * 0.8, 4, models=EvalModels(subject=enc, background=enc), label="search")
    chart = evaluation_chart(a)
    # 5 dimensions + 2 drifts = 7 panels in 2 columns under a 30 px header.
    assert chart.size == (2 * PANEL[0], 30 + 4 * PANEL[1])
    px = np.asarray(chart)
    assert (px == BLUE).all(axis=-1).sum() > 50 and (px == RED).all(axis=-1).sum() > 50
    cmp = comparison_chart(compare_evaluations(a, b))
    # subject, background, flicker, colour drift, embedding drift: 5 cells (a/b panel + difference bars).
    assert cmp.width == 2 * PANEL[0] and cmp.height == 30 + 3 * (PANEL[1] + 170)
    assert (np.asarray(cmp) == GREEN).all(axis=-1).sum() > 200


def test_points_are_hollow_markers_without_a_line():
    img, axes = line_chart([Series("others", [1, 1, 3], [0.2, 0.8, 0.5], colour=RED, style="points")],
                           size=(320, 200))
    pixels = np.asarray(img)
    for x, y in ((1, 0.2), (1, 0.8), (3, 0.5)):
        px, py = axes.to_pixel(x, y)
        ring = pixels[py - 3:py + 4, px - 3:px + 4]
        assert (ring == RED).all(-1).any() and tuple(pixels[py, px]) != RED  # an outline, empty inside
    mid_x, mid_y = axes.to_pixel(2, 0.35)
    assert not (pixels[mid_y - 2:mid_y + 3, mid_x - 2:mid_x + 3] == RED).all(-1).any()  # no line between
