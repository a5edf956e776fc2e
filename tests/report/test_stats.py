"""The report's top-k curves follow the metric rules of models.metrics (hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from report import stats


def frame() -> pl.DataFrame:
    # a: the model picks the slowest first; b: 2 schedules; c: a failed (NaN) prediction.
    return pl.DataFrame({
        "program_id": ["a"] * 4 + ["b"] * 2 + ["c"] * 3,
        "schedule_id": list("wxyz") + ["p", "q"] + ["r", "s", "t"],
        "y_true": [1.0, 2.0, 4.0, 8.0, 1.0, 3.0, 1.0, 2.0, 4.0],
        "y_pred": [8.0, 4.0, 2.0, 1.0, 1.0, 2.0, math.nan, 1.0, 1.0],
    })  # fmt: skip


def test_top_k_curve_counts_programs_above_k_and_scores_failures_at_worst() -> None:
    curve = stats.top_k_curve(frame(), 4)
    # k=1: a 1/8, b 1/1, c worst 1/4; k=2: a 1/4, c worst 1/2 (b has only 2); k=3: a 1/2; k=4: none.
    assert curve[:3] == pytest.approx([(0.125 + 1 + 0.25) / 3, (0.25 + 0.5) / 2, 0.5])
    assert np.isnan(curve[3])


def test_random_curve_over_the_same_programs() -> None:
    curve = stats.random_top_k_curve(frame(), 3)
    # k=1: a mean(1, 1/2, 1/4, 1/8), b mean(1, 1/3), c mean(1, 1/2, 1/4)
    k1 = np.mean([np.mean([1, 0.5, 0.25, 0.125]), np.mean([1, 1 / 3]), np.mean([1, 0.5, 0.25])])
    assert curve[0] == pytest.approx(k1)
    assert np.isnan(stats.random_top_k_curve(frame().filter(pl.col("program_id") == "b"), 2)[1])
