"""Numbers the report derives from predictions: per-program metrics, bootstrap
intervals over programs, top-k curves.

Per-program metrics come from :func:`models.metrics.program_metrics`, the function the
evaluator averages, so the report's means equal the headline table's.
"""

from __future__ import annotations


import numpy as np
import polars as pl

from models import metrics as metrics_mod

#: Bootstrap resamples and seed (fixed: the report is reproducible).
N_BOOT = 2000
BOOT_SEED = 0


def per_program(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per program of ``frame`` (``program_id, y_true, y_pred``): ``n_schedules``
    and every metric of :data:`models.metrics.METRICS` (NaN where undefined)."""
    cols = {"program_id": pl.String, "n_schedules": pl.Int64, **{m: pl.Float64 for m in metrics_mod.METRICS}}
    frame = frame.filter(pl.col("y_true").is_finite() & (pl.col("y_true") > 0))
    rows = []
    for (pid,), g in frame.sort("program_id").group_by("program_id", maintain_order=True):
        m = metrics_mod.program_metrics(g["y_true"].to_numpy(), g["y_pred"].to_numpy())
        rows.append({"program_id": pid, "n_schedules": g.height, **{k: float(v) for k, v in m.items()}})
    return pl.DataFrame(rows, schema=cols)


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of the mean over programs (resampling programs)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return None
    rng = np.random.default_rng(BOOT_SEED)
    means = v[rng.integers(0, len(v), size=(N_BOOT, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def bootstrap_ratio_ci(num: np.ndarray, den: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Interval of ``mean(num) / mean(den)`` resampling programs in pairs (the same
    programs for both models), e.g. baseline MAPE / GNN MAPE."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    ok = np.isfinite(num) & np.isfinite(den)
    num, den = num[ok], den[ok]
    if len(num) < 2:
        return None
    rng = np.random.default_rng(BOOT_SEED)
    idx = rng.integers(0, len(num), size=(N_BOOT, len(num)))
    d = den[idx].mean(axis=1)
    r = num[idx].mean(axis=1) / np.where(d > 0, d, np.nan)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return None
    a = (1 - level) / 2
    return float(np.quantile(r, a)), float(np.quantile(r, 1 - a))


def top_k_curve(frame: pl.DataFrame, k_max: int) -> np.ndarray:
    """Mean over programs of the top-k score, k = 1..k_max, by the rules of
    :mod:`models.metrics`: a program counts for k only with more than k schedules; one
    with a failed prediction scores the worst pick; ties go to the smaller schedule id."""
    scores = []
    for _, g in frame.sort("program_id", "schedule_id").group_by("program_id", maintain_order=True):
        t, p = g["y_true"].to_numpy(), g["y_pred"].to_numpy()
        failed = metrics_mod.failed_predictions(p).any()
        ids = g["schedule_id"].to_list()
        scores.append([metrics_mod.worst_top_k_score(t, k) if failed else metrics_mod.top_k_score(t, p, k, ids)
                       for k in range(1, k_max + 1)])  # fmt: skip
    return _nanmean_columns(scores, k_max)


def random_top_k_curve(frame: pl.DataFrame, k_max: int) -> np.ndarray:
    """Expected top-k score of picking k schedules uniformly at random, averaged over the
    same programs as :func:`top_k_curve` (:func:`models.metrics.random_top_k_score`)."""
    per_prog = [[metrics_mod.random_top_k_score(g["y_true"].to_numpy(), k) for k in range(1, k_max + 1)]
                for _, g in frame.group_by("program_id")]  # fmt: skip
    return _nanmean_columns(per_prog, k_max)


def _nanmean_columns(rows: list[list[float]], k_max: int) -> np.ndarray:
    """Column means ignoring NaN; NaN (no warning) where a column has no value."""
    a = np.array(rows, float).reshape(-1, k_max)
    n = np.sum(np.isfinite(a), axis=0)
    total = np.nansum(a, axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def abs_pct_error(frame: pl.DataFrame) -> np.ndarray:
    """Per-schedule ``|y_pred - y_true| / y_true`` in percent (NaN predictions -> inf)."""
    t = frame["y_true"].to_numpy().astype(float)
    p = np.nan_to_num(frame["y_pred"].to_numpy().astype(float), nan=np.inf)
    return np.abs(p - t) / t * 100.0
