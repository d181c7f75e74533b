"""Small line and bar charts drawn with PIL: axes, ticks, tick labels, axis labels, legend, title.

Drawn with PIL rather than matplotlib: ComfyUI does not ship matplotlib and the
pack depends only on numpy, Pillow and safetensors, so an optional matplotlib
path would be a second, mostly untested way to draw the same figure. The charts
needed here (a few series against a chunk axis) are small; drawn directly they
are the same pixels on every machine, which the tests check.

:func:`line_chart` returns the image and its :class:`Axes` (the plot box, the
ranges, the ticks and where each legend swatch is), so callers can place more
marks and tests can look at the pixels where an axis or a point must be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import ChunkwiseError

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]
BLACK, WHITE, GRID, ZERO = (0, 0, 0), (255, 255, 255), (225, 225, 225), (110, 110, 110)
TICK = 5
PAD = 8
STYLES = ("line", "bars", "points")


def font(size: int = 12):
    """Pillow's bundled scalable font at ``size`` pixels (its bitmap font on a Pillow before 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, typeface) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=typeface)
    return right - left, bottom - top


@dataclass
class Series:
    """One data series: ``y[i]`` at ``x[i]``; ``None`` leaves a gap. ``style`` is ``line``, ``bars`` or
    ``points`` (hollow markers, no line: e.g. several values at one x)."""

    label: str
    x: Sequence[float]
    y: Sequence[Optional[float]]
    colour: Optional[tuple] = None
    style: str = "line"
    dashed: bool = False

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ChunkwiseError(
                f"series {self.label!r} has {len(self.x)} x values and {len(self.y)} y values; expected one y per x"
            )

    def points(self) -> list[tuple[float, float]]:
        return [(float(a), float(b)) for a, b in zip(self.x, self.y, strict=True) if b is not None and math.isfinite(b)]


@dataclass
class Axes:
    """Where a chart's parts are, in pixels: the plot box ``(left, top, right, bottom)``, ranges, ticks, legend."""

    box: tuple[int, int, int, int]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: list[float]
    y_ticks: list[float]
    legend: list[tuple[str, tuple, tuple[int, int]]] = field(default_factory=list)

    def to_pixel(self, x: float, y: float) -> tuple[int, int]:
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = left + (right - left) * (x - x0) / (x1 - x0)
        py = bottom - (bottom - top) * (y - y0) / (y1 - y0)
        return round(px), round(py)


def nice_step(span: float, target: int = 5) -> float:
    """A 1, 2 or 5 times a power of ten step that cuts ``span`` into about ``target`` parts."""
    raw = span / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw - 1e-12 * power:
            return m * power
    return 10 * power


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (the first <= lo, the last >= hi)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ChunkwiseError(f"tick range must be finite with lo <= hi, got {lo}..{hi}")
    if hi - lo < 1e-12:
        pad = max(abs(lo) * 0.05, 0.01)
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def integer_ticks(lo: int, hi: int, target: int = 10) -> list[float]:
    step = max(1, math.ceil((hi - lo + 1) / target))
    if step > 1:
        step = int(nice_step(hi - lo + 1, target)) or 1
    first = lo if step == 1 else math.ceil(lo / step) * step
    ticks = list(range(first, hi + 1, step))
    return [float(t) for t in (ticks or [lo])]


def _dashed(draw: ImageDraw.ImageDraw, a, b, colour, width: int, dash: int = 6) -> None:
    length = math.dist(a, b)
    if length == 0:
        return
    steps = max(1, int(length // dash))
    for i in range(0, steps, 2):
        t0, t1 = i / steps, min(1.0, (i + 1) / steps)
        p0 = (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0)
        p1 = (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)
        draw.line([p0, p1], fill=colour, width=width)


def _y_range(series: Sequence[Series], y_range, zero_line: bool) -> tuple[list[float], tuple[float, float]]:
    if y_range is None:
        values = [p[1] for s in series for p in s.points()]
        if any(s.style == "bars" for s in series) or zero_line:
            values.append(0.0)
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = 0.04 * (hi - lo)  # so no marker sits on an axis line
        lo, hi = lo - (pad if lo != 0.0 else 0.0), hi + (pad if hi != 0.0 else 0.0)
    else:
        lo, hi = y_range
    ticks = nice_ticks(lo, hi)
    return ticks, (ticks[0], ticks[-1])


def _layout(draw, size, title, x_label, y_label, legend_labels, y_labels):
    """The plot box: room for the title, the legend row, the y tick labels and both axis labels."""
    width, height = size
    tick_font, label_font, title_font = font(11), font(12), font(14)
    top = PAD
    if title:
        top += text_size(draw, title, title_font)[1] + PAD
    if legend_labels:
        top += text_size(draw, "Hg", label_font)[1] + PAD
    y_text = max(text_size(draw, t, tick_font)[0] for t in y_labels)
    left = PAD + (text_size(draw, "Hg", label_font)[1] + PAD if y_label else 0) + y_text + TICK + 4
    bottom = height - PAD - text_size(draw, "0", tick_font)[1] - TICK - 4
    if x_label:
        bottom -= text_size(draw, "Hg", label_font)[1] + PAD
    right = width - PAD - 6
    if right - left < 20 or bottom - top < 20:
        raise ChunkwiseError(f"chart size {size} leaves no room for the plot; use at least 200 x 140 pixels")
    return (left, top + 4, right, bottom)


def line_chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    size: tuple[int, int] = (640, 360),
    y_range: Optional[tuple[float, float]] = None,
    zero_line: bool = False,
    note: str = "",
    x_span: Optional[tuple[int, int]] = None,
) -> tuple[Image.Image, Axes]:
    """Draw ``series`` against a shared integer x axis (chunk numbers); returns ``(image, axes)``.

    ``y_range`` fixes the value axis (otherwise it spans the data, widened to
    round ticks); ``x_span`` the first and last x tick (otherwise the data's).
    ``zero_line`` draws ``y = 0``. ``note`` is written in the plot when no
    series has a point (a dimension that was not computed).
    """
    for s in series:
        if s.style not in STYLES:
            raise ChunkwiseError(f"series {s.label!r} has style {s.style!r}; expected one of {STYLES}")
    img = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(img)
    # 1. Ranges and ticks.
    xs = list(x_span or ()) or [p[0] for s in series for p in s.points()] or [float(v) for s in series for v in s.x]
    xs = xs or [0.0, 1.0]
    x_lo, x_hi = math.floor(min(xs)), math.ceil(max(xs))
    x_range = (x_lo - 0.5, x_hi + 0.5)
    y_ticks, y_rng = _y_range(series, y_range, zero_line)
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    y_labels = [format_tick(t, y_step) for t in y_ticks]
    # 2. Layout, then grid, ticks and axes; the data; the texts.
    box = _layout(draw, size, title, x_label, y_label, [s.label for s in series], y_labels)
    axes = Axes(box, x_range, y_rng, integer_ticks(int(x_lo), int(x_hi)), y_ticks)
    _draw_axes(draw, axes, y_labels, zero_line)
    colours = [s.colour or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    _draw_series(draw, axes, series, colours)
    _draw_texts(img, draw, axes, series, colours, title=title, x_label=x_label, y_label=y_label, note=note)
    return img, axes


def _draw_axes(draw: ImageDraw.ImageDraw, axes: Axes, y_labels: list[str], zero_line: bool) -> None:
    tick_font = font(11)
    left, top, right, bottom = axes.box
    for t, text in zip(axes.y_ticks, y_labels, strict=True):
        _, py = axes.to_pixel(axes.x_range[0], t)
        draw.line([(left + 1, py), (right, py)], fill=GRID)
        draw.line([(left - TICK, py), (left, py)], fill=BLACK)
        w, h = text_size(draw, text, tick_font)
        draw.text((left - TICK - 3 - w, py - h // 2 - 2), text, fill=BLACK, font=tick_font)
    for t in axes.x_ticks:
        px, _ = axes.to_pixel(t, axes.y_range[0])
        draw.line([(px, bottom), (px, bottom + TICK)], fill=BLACK)
        text = str(int(t))
        w, _ = text_size(draw, text, tick_font)
        draw.text((px - w // 2, bottom + TICK + 2), text, fill=BLACK, font=tick_font)
    if zero_line and axes.y_range[0] < 0 < axes.y_range[1]:
        _, py = axes.to_pixel(axes.x_range[0], 0.0)
        draw.line([(left, py), (right, py)], fill=ZERO)


def _draw_series(draw: ImageDraw.ImageDraw, axes: Axes, series: Sequence[Series], colours: list) -> None:
    """Bars first, then hollow points, then lines (broken at gaps) with a marker on every point, then the
    two axis lines."""
    left, top, right, bottom = axes.box
    bars = [s for s in series if s.style == "bars"]
    slot = (right - left) / (axes.x_range[1] - axes.x_range[0]) * 0.8 / max(1, len(bars))
    base = min(max(0.0, axes.y_range[0]), axes.y_range[1])
    for k, s in enumerate(bars):
        colour = colours[list(series).index(s)]
        for x, y in s.points():
            px, py = axes.to_pixel(x, y)
            _, p0 = axes.to_pixel(x, base)
            x0 = px - slot * len(bars) / 2 + k * slot
            draw.rectangle([round(x0), min(py, p0), round(x0 + slot) - 1, max(py, p0)], fill=colour)
    for s, colour in zip(series, colours, strict=True):
        if s.style == "points":
            for x, y in s.points():
                px, py = axes.to_pixel(x, y)
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], outline=colour, width=1)
    for s, colour in zip(series, colours, strict=True):
        if s.style != "line":
            continue
        previous = None
        for x, y in zip(s.x, s.y, strict=True):
            if y is None or not math.isfinite(y):
                previous = None
                continue
            point = axes.to_pixel(float(x), float(y))
            if previous is not None and s.dashed:
                _dashed(draw, previous, point, colour, 2)
            elif previous is not None:
                draw.line([previous, point], fill=colour, width=2)
            previous = point
        for x, y in s.points():
            px, py = axes.to_pixel(x, y)
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    draw.line([(left, top), (left, bottom)], fill=BLACK)
    draw.line([(left, bottom), (right, bottom)], fill=BLACK)


def _draw_texts(img, draw, axes: Axes, series, colours, *, title, x_label, y_label, note) -> None:
    """Title, the legend row under it (recorded in ``axes.legend``), axis labels, the no-data note."""
    label_font, title_font = font(12), font(14)
    left, top, right, bottom = axes.box
    y_text = PAD
    if title:
        draw.text((left, y_text), title, fill=BLACK, font=title_font)
        y_text += text_size(draw, title, title_font)[1] + PAD
    x_text = left
    _, h = text_size(draw, "Hg", label_font)
    for s, colour in zip(series, colours, strict=True):
        cy = y_text + h // 2 + 2
        draw.rectangle([x_text, cy - 4, x_text + 15, cy + 4], fill=colour)
        axes.legend.append((s.label, colour, (x_text + 7, cy)))
        draw.text((x_text + 20, y_text), s.label, fill=BLACK, font=label_font)
        x_text += 20 + text_size(draw, s.label, label_font)[0] + 14
    if x_label:
        w, h = text_size(draw, x_label, label_font)
        draw.text(((left + right) // 2 - w // 2, img.height - PAD - h - 3), x_label, fill=BLACK, font=label_font)
    if y_label:
        w, h = text_size(draw, y_label, label_font)
        label = Image.new("RGB", (w + 4, h + 6), WHITE)
        ImageDraw.Draw(label).text((2, 0), y_label, fill=BLACK, font=label_font)
        label = label.rotate(90, expand=True)
        img.paste(label, (PAD - 2, max(0, (top + bottom) // 2 - label.height // 2)))
    if note and not any(s.points() for s in series):
        w, h = text_size(draw, note, label_font)
        draw.text(((left + right) // 2 - w // 2, (top + bottom) // 2 - h // 2), note, fill=ZERO, font=label_font)


def stack(images: Sequence[Image.Image], columns: int = 2) -> Image.Image:
    """Panels in a grid, row by row, on white (cells as large as the largest panel)."""
    if not images:
        raise ChunkwiseError("nothing to draw: no chart panels were given")
    columns = max(1, min(columns, len(images)))
    w, h = max(i.width for i in images), max(i.height for i in images)
    rows = math.ceil(len(images) / columns)
    out = Image.new("RGB", (w * columns, h * rows), WHITE)
    for k, panel in enumerate(images):
        out.paste(panel, ((k % columns) * w, (k // columns) * h))
    return out


def vertical(images: Sequence[Image.Image]) -> Image.Image:
    """Panels one above the other, left-aligned."""
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), WHITE)
    y = 0
    for panel in images:
        out.paste(panel, (0, y))
        y += panel.height
    return out


def to_image_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image as a ComfyUI IMAGE ``[1, H, W, 3]`` float in 0..1."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).unsqueeze(0)


__all__ = ["Axes", "PALETTE", "Series", "line_chart", "nice_ticks", "stack", "to_image_tensor", "vertical"]
