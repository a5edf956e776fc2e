"""Evaluation metrics: computed per program, then averaged over programs.

A cost model is used to compare schedules *of one program*, so every metric is
computed within each program and the per-program values are averaged (each
program counts once, however many schedules it has).

Per program, with true run times ``t`` and predicted run times ``p`` (seconds):

* ``mape``: mean of ``|p - t| / t``, **in percent**.
* ``rmse_log``: root mean squared error of ``log p - log t`` (natural log).
* ``kendall_tau``: Kendall's tau-b between ``p`` and ``t`` (:func:`scipy.stats.kendalltau`).
* ``pairwise_acc``: over pairs of schedules with different true times, the fraction
  the prediction orders the same way (a tied prediction counts one half).
* ``top1``: ``min(t) / t[argmin p]``: how close the model's pick is to the best (1 = best).
* ``top5``: ``min(t) / min(t[5 smallest p])``: the best of the model's five picks.

Rank metrics need at least two schedules; programs with fewer are left out of those
averages (``n_programs_ranked`` says how many counted). Undefined values are
``None`` in JSON.

:func:`noise_floor` computes the same metrics with the timing pass 2 re-time as the
"prediction" of pass 1: the error a perfect model would still show.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import polars as pl
from scipy.stats import kendalltau

from models.constants import BASELINES, EVAL_SPLITS, GNN_MODELS, SELECTION_SPLIT

METRICS = ("mape", "rmse_log", "kendall_tau", "pairwise_acc", "top1", "top5")
#: For each metric, whether higher is better.
HIGHER_IS_BETTER = {"mape": False, "rmse_log": False, "kendall_tau": True, "pairwise_acc": True, "top1": True, "top5": True}


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.mean(np.abs(y_pred - y_true) / y_true) * 100.0)


def rmse_log(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """RMSE of natural-log run times."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.sqrt(np.mean((np.log(y_pred) - np.log(y_true)) ** 2)))


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b; NaN when undefined (fewer than 2 schedules or a constant input)."""
    if len(y_true) < 2:
        return math.nan
    tau = kendalltau(y_true, y_pred).statistic
    return float(tau)


def pairwise_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of pairs with different true times that the prediction orders the same way."""
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    i, j = np.triu_indices(len(t), k=1)
    dt, dp = np.sign(t[i] - t[j]), np.sign(p[i] - p[j])
    mask = dt != 0
    if not mask.any():
        return math.nan
    score = np.where(dp[mask] == 0, 0.5, (dt[mask] == dp[mask]).astype(float))
    return float(score.mean())


def top_k_score(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """``min(t) / min(t of the k schedules with the smallest prediction)``.

    Ties in the prediction are broken by position (stable sort), so the score is
    deterministic. NaN with fewer than 2 schedules (any pick is then the best)."""
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(t) < 2:
        return math.nan
    picks = np.argsort(p, kind="stable")[:k]
    return float(t.min() / t[picks].min())


def program_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """All metrics for the schedules of one program (run times in seconds)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(y_true) == 0:
        raise ValueError("no schedules")
    if not (np.all(y_true > 0) and np.all(np.isfinite(y_true))):
        raise ValueError("true run times must be positive and finite")
    y_pred = np.clip(np.nan_to_num(y_pred, nan=np.inf), 1e-30, None)
    return {
        "mape": mape(y_true, y_pred),
        "rmse_log": rmse_log(y_true, y_pred),
        "kendall_tau": kendall_tau(y_true, y_pred),
        "pairwise_acc": pairwise_accuracy(y_true, y_pred),
        "top1": top_k_score(y_true, y_pred, 1),
        "top5": top_k_score(y_true, y_pred, 5),
    }


def _clean(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def average_metrics(per_program: Iterable[dict[str, float]]) -> dict[str, float | None]:
    """Mean over programs of each metric, ignoring programs where it is undefined."""
    rows = list(per_program)
    out: dict[str, float | None] = {}
    for m in METRICS:
        vals = np.array([r[m] for r in rows], dtype=float)
        vals = vals[np.isfinite(vals)]
        out[m] = _clean(float(vals.mean())) if len(vals) else None
    return out


def compute_metrics(frame: pl.DataFrame) -> dict[str, float | int | None]:
    """Metrics of a predictions frame (``program_id``, ``y_true``, ``y_pred``; seconds),
    averaged over programs, plus ``n_programs``, ``n_programs_ranked`` and ``n_schedules``."""
    per_program = []
    ranked = 0
    for _, g in frame.sort("program_id").group_by("program_id", maintain_order=True):
        m = program_metrics(g["y_true"].to_numpy(), g["y_pred"].to_numpy())
        ranked += g.height >= 2
        per_program.append(m)
    out: dict[str, float | int | None] = dict(average_metrics(per_program))
    out["n_programs"] = len(per_program)
    out["n_programs_ranked"] = int(ranked)
    out["n_schedules"] = frame.height
    return out


def per_program_metrics(frame: pl.DataFrame) -> pl.DataFrame:
    """One row of metrics per program (for plots and debugging)."""
    rows = []
    for (pid,), g in frame.sort("program_id").group_by("program_id", maintain_order=True):
        rows.append({"program_id": pid, "n_schedules": g.height, **program_metrics(g["y_true"], g["y_pred"])})
    return pl.DataFrame(rows)


def noise_floor(
    measurements: pl.DataFrame,
    programs: Iterable[str] | None = None,
    machine_id: str | None = None,
) -> dict[str, float | int | None]:
    """The metrics between timing pass 1 (truth) and the pass 2 re-time (prediction).

    Uses schedules with an ok pass-1 *and* an ok pass-2 median on the same machine;
    rank metrics cover only the re-timed subset of each program's schedules.

    Args:
        measurements (pl.DataFrame): The ``measurements`` table.
        programs (Iterable[str], optional): Restrict to these programs (e.g. a split).
        machine_id (str, optional): Restrict to one machine.
    """
    ok = measurements.filter((pl.col("status") == "ok") & (pl.col("runtime_median_s") > 0))
    if machine_id is not None:
        ok = ok.filter(pl.col("machine_id") == machine_id)
    if programs is not None:
        ok = ok.filter(pl.col("program_id").is_in(list(programs)))
    key = ["program_id", "schedule_id", "machine_id"]

    def one_pass(k: int, name: str) -> pl.DataFrame:
        return (
            ok.filter(pl.col("timing_pass") == k)
            .group_by(key)
            .agg(pl.col("runtime_median_s").median().alias(name))
        )

    pairs = one_pass(1, "y_true").join(one_pass(2, "y_pred"), on=key, how="inner")
    if machine_id is None and pairs["machine_id"].n_unique() > 1:
        # Each (program, machine) is its own ranking problem.
        pairs = pairs.with_columns((pl.col("program_id") + "@" + pl.col("machine_id")).alias("program_id"))
    if pairs.height == 0:
        out: dict[str, float | int | None] = {m: None for m in METRICS}
        out.update(n_programs=0, n_programs_ranked=0, n_schedules=0)
        return out
    return compute_metrics(pairs.select("program_id", "y_true", "y_pred"))


# --- Headline ratios -------------------------------------------------------------------


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _mape(results: dict[str, Any], name: str, split_name: str) -> float | None:
    m = (results.get(name) or {}).get(split_name)
    return m.get("mape") if isinstance(m, dict) else None


def select_best_gnn(results: dict[str, Any], names: tuple[str, ...] = GNN_MODELS) -> tuple[str | None, str]:
    """The GNN with the lowest validation MAPE, and the split it was chosen on.

    Choosing on the test or zoo split itself would flatter the ratios reported there;
    if no GNN has validation metrics (models evaluated by an older version), returns
    ``(None, "")`` and callers fall back to per-split choice, which they label.
    """
    val = {g: _mape(results, g, SELECTION_SPLIT) for g in names}
    val = {g: v for g, v in val.items() if v is not None}
    if not val:
        return None, ""
    return min(val, key=val.get), SELECTION_SPLIT


def headline_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """``{split: {"best_gnn", "selected_on", baseline: {..._ratio_vs_best_gnn, mape_ratio_vs_gcn}}}``.

    ``results`` is ``{model: {split: metrics}}``. Each baseline's MAPE (and log RMSE)
    is divided by the best GNN's on the same held-out programs; above 1 the GNN wins.
    """
    ratios: dict[str, Any] = {}
    best, selected_on = select_best_gnn(results)
    for split_name in EVAL_SPLITS:
        gnns = {g: _mape(results, g, split_name) for g in GNN_MODELS}
        gnns = {g: v for g, v in gnns.items() if v is not None}
        if not gnns:
            continue
        chosen = best if best in gnns else min(gnns, key=gnns.get)
        entry: dict[str, Any] = {"best_gnn": chosen, "selected_on": selected_on if best in gnns else split_name}
        for base in BASELINES:
            if base not in results or not results[base].get(split_name):
                continue
            bm = results[base][split_name]
            entry[base] = {
                "mape_ratio_vs_best_gnn": _ratio(bm.get("mape"), gnns[chosen]),
                "rmse_log_ratio_vs_best_gnn": _ratio(bm.get("rmse_log"), results[chosen][split_name].get("rmse_log")),
            }
            if "gcn" in gnns:
                entry[base]["mape_ratio_vs_gcn"] = _ratio(bm.get("mape"), gnns["gcn"])
        ratios[split_name] = entry
    return ratios
