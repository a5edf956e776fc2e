"""Numbers the report derives from predictions: per-program metrics, bootstrap
intervals over programs, top-k curves.

Per-program metrics come from :func:`models.metrics.program_metrics`, the function the
evaluator averages, so the report's means equal the headline table's.
"""

from __future__ import annotations

import math

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
    """Mean over programs (with >= 2 schedules) of the top-k score, k = 1..k_max."""
    scores = []
    for _, g in frame.group_by("program_id"):
        if g.height < 2:
            continue
        t, p = g["y_true"].to_numpy(), g["y_pred"].to_numpy()
        p = np.clip(np.nan_to_num(p, nan=np.inf), 1e-30, None)
        scores.append([metrics_mod.top_k_score(t, p, k) for k in range(1, k_max + 1)])
    return np.nanmean(np.array(scores), axis=0) if scores else np.full(k_max, np.nan)


def random_top_k_curve(frame: pl.DataFrame, k_max: int) -> np.ndarray:
    """Expected top-k score of picking k schedules uniformly at random, averaged over
    programs: with sorted times t_1 <= ... <= t_n, the best of k random picks is t_i
    with probability C(n-i, k-1) / C(n, k)."""
    per_prog = []
    for _, g in frame.group_by("program_id"):
        t = np.sort(g["y_true"].to_numpy())
        n = len(t)
        if n < 2:
            continue
        row = []
        for k in range(1, k_max + 1):
            if k >= n:
                row.append(1.0)
                continue
            probs = np.array([math.comb(n - i, k - 1) for i in range(1, n + 1)], float) / math.comb(n, k)
            row.append(float(np.sum(probs * t[0] / t)))
        per_prog.append(row)
    return np.mean(np.array(per_prog), axis=0) if per_prog else np.full(k_max, np.nan)


def abs_pct_error(frame: pl.DataFrame) -> np.ndarray:
    """Per-schedule ``|y_pred - y_true| / y_true`` in percent (NaN predictions -> inf)."""
    t = frame["y_true"].to_numpy().astype(float)
    p = np.nan_to_num(frame["y_pred"].to_numpy().astype(float), nan=np.inf)
    return np.abs(p - t) / t * 100.0
