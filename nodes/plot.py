"""The score plot: every candidate's score per chunk, the winners joined by a line."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

WIDTH, HEIGHT, MARGIN = 640, 360, 40


def score_plot(report: dict) -> torch.Tensor:
    """Render the report's scores as an IMAGE ``[1, H, W, 3]``."""
    img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    chunks = report.get("chunks", [])
    points = [
        (c["index"], j, cand["score"], j == c["chosen"])
        for c in chunks
        for j, cand in enumerate(c["candidates"])
        if cand["score"] is not None
    ]
    left, top, right, bottom = MARGIN, MARGIN // 2, WIDTH - MARGIN // 2, HEIGHT - MARGIN
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    s = report.get("settings", {})
    draw.text((left, 2), f"chunkwise scores: m={s.get('candidates')} k={s.get('k')} scorer={s.get('scorer')}",
              fill=(0, 0, 0))
    if not points:
        draw.text((left + 10, (top + bottom) // 2), "search off: no scores (naive chunk-by-chunk run)", fill=(0, 0, 0))
    else:
        values = [p[2] for p in points]
        lo, hi = min(values), max(values)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        n = max(1, len(chunks) - 1)

        def xy(index, value):
            x = left + 10 + (right - left - 20) * (index / n if len(chunks) > 1 else 0.5)
            y = bottom - 10 - (bottom - top - 20) * (value - lo) / (hi - lo)
            return x, y

        winners = []
        for index, _j, value, chosen in points:
            x, y = xy(index, value)
            if chosen:
                winners.append((x, y))
            else:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(120, 120, 120))
        if len(winners) > 1:
            draw.line(winners, fill=(200, 30, 30), width=2)
        for x, y in winners:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(200, 30, 30))
        draw.text((2, top), f"{hi:.3f}", fill=(0, 0, 0))
        draw.text((2, bottom - 12), f"{lo:.3f}", fill=(0, 0, 0))
        draw.text((left, bottom + 4), f"chunk 0 .. {len(chunks) - 1}   (red: chosen, grey: other candidates)",
                  fill=(0, 0, 0))
    array = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(array).unsqueeze(0)
