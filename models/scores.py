"""From a scale-free score to seconds: how the XGBoost models that rank (TVM's pack-sum
objective, on Halide's data and on TVM's) still give run times.

Their score is relative within a program (``min_cost / cost``: 1 for the program's
fastest schedule, lower = slower) and carries no absolute scale. Ranking metrics
(Kendall's tau, pairwise accuracy, top-k) use the score alone. For MAPE and log RMSE
we convert with one *global* constant fitted on the training programs, never on test
labels::

    predicted_time = exp(a) / pos(score),  a = mean over training schedules of log(t) + log(pos(score))

(since ``score ~ min_time / time``, ``exp(a)`` estimates a typical program's best time).
Summed tree outputs can be zero or negative, so ``pos`` (:func:`positive`) maps the
score strictly increasingly onto positive numbers, keeping the order of schedules: the
identity above ``f``, and ``f^2 / (2f - s)`` below (continuous with its slope, tending
to 0 like ``1/|s|``), where ``f`` is the smallest training target (at least
:data:`MIN_FLOOR`). The resulting MAPE mostly measures how far each program's best run
time is from the training programs' typical one: read it as "what a scale-free model
gives when asked for seconds", not as the model's ranking quality.
"""

from __future__ import annotations

import numpy as np

#: Smallest ``f`` of :func:`positive`.
MIN_FLOOR = 1e-3


def positive(score: np.ndarray, floor: float) -> np.ndarray:
    """Strictly increasing map onto (0, inf): ``s`` above ``floor``, ``floor**2 / (2 floor - s)`` below."""
    score = np.asarray(score, dtype=np.float64)
    return np.where(score > floor, score, floor**2 / (2 * floor - np.minimum(score, floor)))


def score_floor(targets: np.ndarray) -> float:
    """``f``: the smallest training target, at least :data:`MIN_FLOOR`."""
    return max(MIN_FLOOR, float(np.min(targets)))


def fit_log_scale(scores: np.ndarray, runtimes: np.ndarray, floor: float) -> float:
    """``a``: the mean over training schedules of ``log(t) + log(pos(score))``."""
    return float(np.mean(np.log(runtimes) + np.log(positive(scores, floor))))


def to_seconds(scores: np.ndarray, log_scale: float, floor: float) -> np.ndarray:
    """``exp(a) / pos(score)``."""
    return np.exp(log_scale) / positive(scores, floor)
