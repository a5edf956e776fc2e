"""Evaluation metrics: computed per program, then averaged over programs.

A cost model is used to compare schedules *of one program*, so every metric is
computed within each program and the per-program values are averaged (each
program counts once, however many schedules it has).

Per program, with true run times ``t`` and predicted run times ``p`` (seconds):

* ``mape``: mean of ``|p - t| / t``, **in percent**.
* ``rmse_log``: root mean squared error of ``log p - log t`` (natural log).
* ``kendall_tau``: Kendall's tau-b between ``p`` and ``t`` (:func:`scipy.stats.kendalltau`);
  0 for a constant prediction (it ranks nothing) of times that are not all equal.
* ``pairwise_acc``: over pairs of schedules with different true times, the fraction
  the prediction orders the same way (a tied prediction counts one half).
* ``top1``: ``min(t) / t[first pick]``: how close the model's pick is to the best (1 = best).
* ``top5``: ``min(t) / min(t[first 5 picks])``: the best of the model's five picks.
* ``mape_calibrated``: the MAPE left after rescaling the predictions by one measured
  schedule (below); scale-free, like the rank metrics.

**Picks.** Top-k picks schedules by increasing prediction. Ties in the prediction go
to the smaller ``schedule_id`` when the frame has one (so the score does not depend
on the order of rows), else to the earlier row of the program.

**Calibration.** The reference is the schedule of median true time (the lower median
for an even count; ties broken like picks): a typical schedule, neither the best nor
the worst, so the calibration is neither flattered nor ruined by an extreme one, and
the choice depends neither on row order nor on how ids are spelled. With
``scale = t_ref / p_ref``, ``mape_calibrated`` is the MAPE of ``scale * p`` against
``t`` over the *other* schedules: what a search that has timed one candidate knows.

**Undefined values** are NaN per program, left out of the averages, and ``None`` in
JSON; counts say how many programs each average covers:

* τ and pairwise accuracy need two schedules with different true times
  (``n_programs_ranked``);
* top-k needs *more* than k schedules, since with k or fewer any k picks contain the
  best (``n_programs_top1``, ``n_programs_top5``). Beside each, ``top1_random`` /
  ``top5_random`` is the expected score of k picks drawn uniformly without
  replacement, over the same programs: with sorted times ``t_1 <= ... <= t_n`` the
  best of the picks is ``t_i`` with probability ``C(n-i, k-1) / C(n, k)``;
* ``mape_calibrated`` needs two schedules (``n_programs_calibrated``).

**Failed predictions.** A prediction that is NaN, infinite or not positive is failed
(``n_failed_predictions``; ``n_programs_failed`` programs have one or more). Such a
program is not dropped: each metric defined for it takes its worst value.

* ``kendall_tau`` = -1 and ``pairwise_acc`` = 0;
* top-k = ``min(t) / t_(n-k+1)``, the score of picking the k slowest schedules
  (top-1: ``min(t) / max(t)``);
* the errors are unbounded, so they get a cap, with ``R = max(t) / min(t)``:
  ``mape`` and ``mape_calibrated`` = ``100 * R`` percent, ``rmse_log`` =
  ``log(1 + R)``: the errors of predicting ``(1 + R) * t`` for every schedule, at
  least as bad as predicting 0 and worse than any guess in ``[min(t), max(t)]``. If
  the program's valid predictions alone score worse than the cap, that score stands,
  so a failure never scores better than the predictions that did not fail.

:func:`noise_floor` computes the same metrics with one half of the timing rounds as the
"prediction" of the other half (split-half), on the schedules models are scored on, and
adds the drift of a later re-time (:mod:`pipelines.protocol`). Neither is "the error of a
perfect model": each bounds how finely a model's error can be told apart from timing noise.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import polars as pl
from scipy.stats import kendalltau

from models.constants import BASELINES, EVAL_SPLITS, GNN_MODELS, SELECTION_SPLIT

METRICS = ("mape", "rmse_log", "kendall_tau", "pairwise_acc", "top1", "top5", "mape_calibrated")
#: For each metric, whether higher is better.
HIGHER_IS_BETTER = {
    "mape": False,
    "rmse_log": False,
    "kendall_tau": True,
    "pairwise_acc": True,
    "top1": True,
    "top5": True,
    "mape_calibrated": False,
}
#: Averaged beside :data:`METRICS`: the expected top-k score of random picks.
RANDOM_BASELINES = ("top1_random", "top5_random")

#: What each metric means, for the summary and the report (one copy: both read it from here).
METRIC_DOCS = {
    "mape": "mean absolute percentage error of run time, percent (lower is better)",
    "mape_calibrated": "MAPE after rescaling each program's predictions by one measured schedule (the one of "
    "median true time), over its other schedules: scale-free, fair to models such as TVM's that predict "
    "relative scores; what a search that timed one candidate knows (lower is better)",
    "rmse_log": "RMSE of natural-log run time (lower is better)",
    "kendall_tau": "Kendall τ-b between predicted and true run times within a program (higher is better)",
    "pairwise_acc": "fraction of schedule pairs a model orders correctly within a program (higher is better)",
    "top1": "best true time / true time of the model's best pick (1 = optimal)",
    "top5": "best true time / best true time among the model's 5 best picks (1 = optimal); only on programs "
    "with more than 5 schedules (top-1: more than 1); top1_random / top5_random: the expected score of random picks",
    "failures": "a NaN, infinite or non-positive prediction is a failure (n_failed_predictions); its "
    "program is scored at the worst value of each metric, never dropped",
    "averaging": "computed per program, then averaged over programs; then averaged over the model's "
    "training seeds (<metric>_std: their standard deviation; n_seeds: how many)",
}
#: Count of programs where each metric is defined, as reported by :func:`compute_metrics`.
COUNTS = {
    "n_programs_ranked": "kendall_tau",
    "n_programs_top1": "top1",
    "n_programs_top5": "top5",
    "n_programs_calibrated": "mape_calibrated",
}


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.mean(np.abs(y_pred - y_true) / y_true) * 100.0)


def rmse_log(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """RMSE of natural-log run times."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.sqrt(np.mean((np.log(y_pred) - np.log(y_true)) ** 2)))


def _ranked(y_true: np.ndarray) -> bool:
    """Whether rank metrics are defined: two or more schedules, not all equally fast."""
    t = np.asarray(y_true, float)
    return len(t) >= 2 and bool(np.any(t != t[0]))


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b.

    0 when the prediction is constant (it orders no pair); NaN when undefined (fewer
    than 2 schedules, or all true times equal).
    """
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if not _ranked(t):
        return math.nan
    if np.all(p == p[0]):
        return 0.0
    return float(kendalltau(t, p).statistic)


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


def pick_order(keys: np.ndarray, schedule_ids: Sequence | None = None) -> np.ndarray:
    """Indices that sort ``keys`` ascending; ties by ``schedule_ids`` if given, else by position."""
    keys = np.asarray(keys, float)
    if schedule_ids is None:
        return np.argsort(keys, kind="stable")
    return np.lexsort((np.asarray(list(schedule_ids)), keys))


def top_k_score(y_true: np.ndarray, y_pred: np.ndarray, k: int, schedule_ids: Sequence | None = None) -> float:
    """``min(t) / min(t of the k schedules with the smallest prediction)``.

    Ties in the prediction are broken by ``schedule_ids`` when given, else by position
    (stable sort), so the score is deterministic. NaN unless there are more than ``k``
    schedules: with ``k`` or fewer, the picks always contain the best.
    """
    t = np.asarray(y_true, float)
    if len(t) <= k:
        return math.nan
    picks = pick_order(y_pred, schedule_ids)[:k]
    return float(t.min() / t[picks].min())


def random_top_k_score(y_true: np.ndarray, k: int) -> float:
    """Expected :func:`top_k_score` of ``k`` picks drawn uniformly without replacement.

    With sorted times ``t_1 <= ... <= t_n``, the best of the picks is ``t_i`` with
    probability ``C(n-i, k-1) / C(n, k)``. NaN unless there are more than ``k`` schedules.
    """
    t = np.sort(np.asarray(y_true, float))
    n = len(t)
    if n <= k:
        return math.nan
    probs = np.array([math.comb(n - i, k - 1) for i in range(1, n + 1)], float) / math.comb(n, k)
    return float(np.sum(probs * t[0] / t))


def worst_top_k_score(y_true: np.ndarray, k: int) -> float:
    """The lowest :func:`top_k_score` possible: picking the ``k`` slowest schedules."""
    t = np.sort(np.asarray(y_true, float))
    return math.nan if len(t) <= k else float(t[0] / t[len(t) - k])


def calibration_reference(y_true: np.ndarray, schedule_ids: Sequence | None = None) -> int:
    """Index of the schedule that calibrates :func:`calibrated_mape`: the (lower) median
    true time, ties broken by ``schedule_ids`` when given, else by position."""
    order = pick_order(y_true, schedule_ids)
    return int(order[(len(order) - 1) // 2])


def calibrated_mape(y_true: np.ndarray, y_pred: np.ndarray, schedule_ids: Sequence | None = None) -> float:
    """MAPE, in percent, of the predictions rescaled by one measured schedule.

    The reference is :func:`calibration_reference`; the predictions are multiplied by
    ``t_ref / p_ref`` and compared with the truth over the other schedules. NaN with
    fewer than 2 schedules.
    """
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(t) < 2:
        return math.nan
    ref = calibration_reference(t, schedule_ids)
    others = np.arange(len(t)) != ref
    return mape(t[others], p[others] * (t[ref] / p[ref]))


def failed_predictions(y_pred: np.ndarray) -> np.ndarray:
    """Mask of the failed predictions: NaN, infinite or not positive."""
    p = np.asarray(y_pred, float)
    return ~(np.isfinite(p) & (p > 0))


def _scores(t: np.ndarray, p: np.ndarray, ids: np.ndarray | None) -> dict[str, float]:
    """Every metric of :data:`METRICS`, for valid predictions only."""
    return {
        "mape": mape(t, p),
        "rmse_log": rmse_log(t, p),
        "kendall_tau": kendall_tau(t, p),
        "pairwise_acc": pairwise_accuracy(t, p),
        "top1": top_k_score(t, p, 1, ids),
        "top5": top_k_score(t, p, 5, ids),
        "mape_calibrated": calibrated_mape(t, p, ids),
    }


def _worst_scores(t: np.ndarray, p: np.ndarray, ids: np.ndarray | None) -> dict[str, float]:
    """The scores of a program with a failed prediction (see the module docstring)."""
    ok = ~failed_predictions(p)
    valid = _scores(t[ok], p[ok], None if ids is None else ids[ok]) if ok.any() else {}
    r = float(t.max() / t.min())

    def capped(name: str, cap: float) -> float:
        return float(np.nanmax([cap, valid.get(name, math.nan)]))

    ranked = _ranked(t)
    return {
        "mape": capped("mape", 100.0 * r),
        "rmse_log": capped("rmse_log", math.log1p(r)),
        "kendall_tau": -1.0 if ranked else math.nan,
        "pairwise_acc": 0.0 if ranked else math.nan,
        "top1": worst_top_k_score(t, 1),
        "top5": worst_top_k_score(t, 5),
        "mape_calibrated": capped("mape_calibrated", 100.0 * r) if len(t) >= 2 else math.nan,
    }


def program_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    schedule_ids: Sequence | None = None,
) -> dict[str, float]:
    """All metrics for the schedules of one program (run times in seconds).

    Args:
        y_true (np.ndarray): True run times, positive and finite.
        y_pred (np.ndarray): Predicted run times; if any is failed (NaN, infinite or not
            positive), every metric takes its worst value (module docstring).
        schedule_ids (Sequence, optional): The schedules' ids, to break ties in the
            picks and in the calibration reference independently of the order of rows.
            (default: :obj:`None`: by position)

    Returns:
        dict: Every metric of :data:`METRICS` and :data:`RANDOM_BASELINES` (NaN where
        undefined), and ``n_failed_predictions``.
    """
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(t) == 0:
        raise ValueError("no schedules")
    if len(p) != len(t) or (schedule_ids is not None and len(schedule_ids) != len(t)):
        raise ValueError("y_true, y_pred and schedule_ids must have one value per schedule")
    if not (np.all(t > 0) and np.all(np.isfinite(t))):
        raise ValueError("true run times must be positive and finite")
    ids = None if schedule_ids is None else np.asarray(list(schedule_ids))
    n_failed = int(failed_predictions(p).sum())
    out = _worst_scores(t, p, ids) if n_failed else _scores(t, p, ids)
    out["top1_random"] = random_top_k_score(t, 1)
    out["top5_random"] = random_top_k_score(t, 5)
    out["n_failed_predictions"] = n_failed
    return out


def _clean(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def average_metrics(per_program: Iterable[dict[str, float]]) -> dict[str, float | None]:
    """Mean over programs of each metric (and random baseline), ignoring programs where
    it is undefined."""
    rows = list(per_program)
    out: dict[str, float | None] = {}
    for m in METRICS + RANDOM_BASELINES:
        vals = np.array([r.get(m, math.nan) for r in rows], dtype=float)
        vals = vals[np.isfinite(vals)]
        out[m] = _clean(float(vals.mean())) if len(vals) else None
    return out


def _programs(frame: pl.DataFrame) -> Iterator[tuple[str, int, dict[str, float]]]:
    """``(program_id, n_schedules, program_metrics)`` per program, by ``program_id``; with a
    ``machine_id`` column, per program and machine (a program timed on two machines is two
    rankings: each machine's schedules against each other).

    Rows are ordered by ``schedule_id`` within a program when the frame has one."""
    has_ids = "schedule_id" in frame.columns
    keys = ["program_id", "machine_id"] if "machine_id" in frame.columns else ["program_id"]
    frame = frame.sort([*keys, "schedule_id"] if has_ids else keys, maintain_order=True, nulls_last=True)
    for key, g in frame.group_by(keys, maintain_order=True):
        ids = g["schedule_id"].to_list() if has_ids else None
        yield key[0], g.height, program_metrics(g["y_true"].to_numpy(), g["y_pred"].to_numpy(), ids)


def compute_metrics(frame: pl.DataFrame) -> dict[str, float | int | None]:
    """Metrics of a predictions frame, averaged over programs.

    Args:
        frame (pl.DataFrame): ``program_id``, ``y_true``, ``y_pred`` (seconds) and
            optionally ``schedule_id`` (for ties; see the module docstring).

    Returns:
        dict: The mean of each metric of :data:`METRICS` and :data:`RANDOM_BASELINES`;
        ``n_programs``; the programs where a metric is defined (``n_programs_ranked``
        for τ and pairwise accuracy, ``n_programs_top1``, ``n_programs_top5``,
        ``n_programs_calibrated``); ``n_programs_failed`` and ``n_failed_predictions``;
        and ``n_schedules``.
    """
    rows = [m for _, _, m in _programs(frame)]
    out: dict[str, float | int | None] = dict(average_metrics(rows))
    out["n_programs"] = len(rows)
    for count, metric in COUNTS.items():
        out[count] = sum(math.isfinite(r[metric]) for r in rows)
    out["n_programs_failed"] = sum(r["n_failed_predictions"] > 0 for r in rows)
    out["n_failed_predictions"] = sum(r["n_failed_predictions"] for r in rows)
    out["n_schedules"] = frame.height
    return out


def per_machine_metrics(frame: pl.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """:func:`compute_metrics` of each machine's rows of a predictions frame (a model of several
    machines is scored on each machine's labels apart)."""
    if "machine_id" not in frame.columns:
        return {}
    return {m: compute_metrics(g) for (m,), g in frame.group_by("machine_id", maintain_order=True) if m is not None}


def per_program_metrics(frame: pl.DataFrame) -> pl.DataFrame:
    """One row of metrics per program (for plots and debugging)."""
    return pl.DataFrame([{"program_id": pid, "n_schedules": n, **m} for pid, n, m in _programs(frame)])


NOISE_TABLES = ("measurements", "timing_samples", "schedules")


def _restrict(frame: pl.DataFrame, programs: Iterable[str] | None, machine_id: str | None) -> pl.DataFrame:
    if machine_id is not None:
        frame = frame.filter(pl.col("machine_id") == machine_id)
    if programs is not None:
        frame = frame.filter(pl.col("program_id").is_in(list(programs)))
    return frame


def noise_pairs(
    tables: dict[str, pl.DataFrame], programs: Iterable[str] | None = None, machine_id: str | None = None
) -> pl.DataFrame:
    """``(program_id, schedule_id, y_true, y_pred)``, seconds: the split-half labels (odd
    rounds as truth, even rounds as "prediction") of the schedules models are scored on
    (featurized, labelled), so the noise row ranks whole programs, like the models do.

    ``tables`` holds ``measurements``, ``timing_samples`` and ``schedules``."""
    from featurize.noise import label_method, scored_schedules, split_half_pairs

    how = label_method(_restrict(tables["measurements"], programs, machine_id))
    samples = _restrict(tables["timing_samples"], programs, machine_id)
    return (
        split_half_pairs(samples, how)
        .join(scored_schedules(tables["schedules"]), on=["program_id", "schedule_id"])
        .select("program_id", "schedule_id", y_true="label_a", y_pred="label_b")
        .sort("program_id", "schedule_id")
    )


def noise_floor(
    tables: dict[str, pl.DataFrame], programs: Iterable[str] | None = None, machine_id: str | None = None
) -> dict[str, Any]:
    """The timing noise beside the models, on the schedules they are scored on.

    The metrics of :func:`noise_pairs` (split-half: one half of the timing rounds
    "predicting" the other), plus ``split_half`` and ``drift`` agreement figures (MAPE,
    median ratio, p10/p90 ratio; :func:`featurize.noise.agreement`): drift compares
    the later re-time with the labels.

    Args:
        tables (dict): ``measurements``, ``timing_samples`` and ``schedules``.
        programs (Iterable[str], optional): Restrict to these programs (e.g. a split).
        machine_id (str, optional): Restrict to one machine.
    """
    from featurize.noise import agreement, drift_pairs, scored_schedules

    pairs = noise_pairs(tables, programs, machine_id)
    if pairs.height:
        out: dict[str, Any] = compute_metrics(pairs)
    else:
        out = {m: None for m in METRICS}
        out.update(n_programs=0, n_programs_ranked=0, n_schedules=0)
    drift = drift_pairs(_restrict(tables["measurements"], programs, machine_id)).join(
        scored_schedules(tables["schedules"]), on=["program_id", "schedule_id"]
    )
    out["split_half"] = agreement(pairs.rename({"y_true": "label_a", "y_pred": "label_b"}))
    out["drift"] = agreement(drift)
    return out


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
                "mape_calibrated_ratio_vs_best_gnn": _ratio(
                    bm.get("mape_calibrated"), results[chosen][split_name].get("mape_calibrated")
                ),
            }
            if "gcn" in gnns:
                entry[base]["mape_ratio_vs_gcn"] = _ratio(bm.get("mape"), gnns["gcn"])
        ratios[split_name] = entry
    return ratios


# --- Several training seeds ----------------------------------------------------------------


def average_over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's ``{split: metrics}`` averaged over its training runs (one per seed).

    Each metric becomes the mean over the runs that have it, with ``<metric>_std`` (the
    sample standard deviation, 0 for one run) and ``n_seeds`` beside it; the counts
    (``n_programs``, ...) are the first run's, since every run sees the same programs.
    """
    out: dict[str, Any] = {}
    splits = {s for r in runs for s, m in r.items() if isinstance(m, dict) and s not in ("per_machine", "machines")}
    # A model of several machines: each machine's figures averaged the same way.
    machines = {m for r in runs for m in r.get("per_machine", {})}
    if machines:
        out["per_machine"] = {m: average_over_seeds([r["per_machine"][m] for r in runs if m in r.get("per_machine", {})])
                              for m in sorted(machines)}  # fmt: skip
        out["machines"] = {k: v for r in runs for k, v in r.get("machines", {}).items()}
    for split in sorted(splits):
        per_run = [r[split] for r in runs if isinstance(r.get(split), dict)]
        merged = dict(per_run[0])
        for m in METRICS:
            vals = np.array([r[m] for r in per_run if r.get(m) is not None], float)
            merged[m] = _clean(float(vals.mean())) if len(vals) else None
            merged[f"{m}_std"] = _clean(float(vals.std(ddof=1))) if len(vals) > 1 else (0.0 if len(vals) else None)
        merged["n_seeds"] = len(per_run)
        out[split] = merged
    return out


def seed_ratio_spread(runs_by_model: dict[str, list[dict[str, Any]]], ratios: dict[str, Any]) -> dict[str, Any]:
    """Add to ``ratios`` (from :func:`headline_ratios` on the averaged metrics) the ratio of
    each seed's run (run k of the baseline over run k of the best GNN, chosen on the averages)
    as ``mape_ratio_vs_best_gnn_seeds`` with its median (the headline's summary over seeds: one
    seed far off moves it least), range, mean and standard deviation; and the baseline's own raw
    MAPE per seed with the largest over the smallest (``baseline_seed_mape_spread``: a seed
    that diverged shows there, and is a defect of the baseline's training, not a number to
    average)."""
    for split, entry in ratios.items():
        best = entry.get("best_gnn")
        for base in BASELINES:
            if base not in entry or best not in runs_by_model or base not in runs_by_model:
                continue
            per = []
            for rb, rg in zip(runs_by_model[base], runs_by_model[best]):
                r = _ratio(_mape({"b": rb}, "b", split), _mape({"g": rg}, "g", split))
                if r is not None:
                    per.append(r)
            base_mapes = [m for m in (_mape({"b": rb}, "b", split) for rb in runs_by_model[base]) if m]
            entry[base]["mape_ratio_vs_best_gnn_seeds"] = per
            entry[base]["mape_ratio_vs_best_gnn_seed_median"] = float(np.median(per)) if per else None
            entry[base]["mape_ratio_vs_best_gnn_seed_range"] = [float(min(per)), float(max(per))] if per else None
            entry[base]["baseline_seed_mapes"] = base_mapes
            entry[base]["baseline_seed_mape_spread"] = (max(base_mapes) / min(base_mapes)) if base_mapes else None
            entry[base]["mape_ratio_vs_best_gnn_seed_mean"] = float(np.mean(per)) if per else None
            entry[base]["mape_ratio_vs_best_gnn_seed_std"] = float(np.std(per, ddof=1)) if len(per) > 1 else None
    return ratios
