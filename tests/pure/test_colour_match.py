"""Tier 1: the weight-free colour scorer against hand-made frames."""

from __future__ import annotations

import pytest
import torch
from chunkwise.scorers.colour_match import ColourMatch
from chunkwise.search.colour import colour_drift
from chunkwise.search.errors import ChunkwiseError


def picture(seed=0, h=24, w=32):
    return torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


def test_same_colours_score_one_and_motion_costs_nothing():
    g = picture()
    moved = torch.cat([torch.roll(g, shifts=s, dims=2) for s in range(4)])  # a pan keeps the statistics
    (score,) = ColourMatch(size=1024).score(g, [moved])
    assert score.score == pytest.approx(1.0, abs=1e-9) and len(score.frame_scores) == 4


def test_the_worst_frame_sets_the_score_and_it_is_the_evaluations_colour_drift():
    g = picture()
    shifted = (g + torch.tensor([0.08, 0.0, -0.08])).clamp(0, 1)
    preview = torch.cat([g, g, shifted])
    (score,) = ColourMatch(size=1024).score(g, [preview])
    assert score.frame_scores[:2] == pytest.approx([1.0, 1.0])
    assert score.score == pytest.approx(1 - colour_drift(shifted, g) / 100, abs=1e-9)
    assert score.score < 0.95


def test_more_drift_scores_lower_and_the_anchor_counts_with_its_weight():
    g, anchor = picture(), picture(1)
    previews = [(g + d).clamp(0, 1) for d in (0.02, 0.05, 0.1)]
    scores = [s.score for s in ColourMatch().score(g, previews)]
    assert scores[0] > scores[1] > scores[2]
    plain = ColourMatch(anchor_weight=0.0).score(g, [g], anchor=anchor)[0].score
    weighted = ColourMatch(anchor_weight=0.5).score(g, [g], anchor=anchor)[0].score
    assert plain == pytest.approx(1.0) and weighted < plain


def test_bad_settings_are_refused_with_the_value():
    with pytest.raises(ChunkwiseError, match="got 3"):
        ColourMatch(size=3)
    with pytest.raises(ChunkwiseError, match="anchor_weight"):
        ColourMatch(anchor_weight=2.0)
