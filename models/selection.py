"""Schedule selection: how fast is the schedule a model picks, against Halide's own picks?

A cost model exists to steer a search, so besides its errors we measure what its pick
is worth. For every zoo and user program of a dataset whose candidates were all timed
(the dataset this run built), and every trained model:

* ``top1``: the measured time of the candidate the model predicts fastest;
* ``top5``: the best measured time among its five predicted fastest (a search that
  times five candidates);
* ``tuned``: the best of the top five and the reference picks (Halide's default,
  Mullapudi2016, Li2018): what ``perfgraph tune`` times and writes out, so never slower
  than Halide's pick by more than the timing noise;
* ``oracle``: the best measured time of any candidate the model could pick (every
  labelled schedule with a featurization): what a perfect model would find, so the
  sampling mix, not the model, bounds the gain above it;
* ``oracle_adams2019``: the same over the schedules Adams2019's search featurized alone,
  the oracle before the loop-nest reader (:mod:`featurize.halide.loopnest`) featurized the
  other autoschedulers' and manual schedules;

each as a speedup over Halide's default pick (Adams2019's beam search with its shipped
weights, sampler ``adams2019_beam``; the config's beam size), beside Mullapudi2016's and
Li2018's picks. Ties in the prediction are broken by schedule id
(:func:`models.metrics.pick_order`), as in the top-k metrics.

Speedups are summarised by their geometric mean over programs (per program, the
geometric mean over the model's training seeds first), with a 95% bootstrap interval
over programs, and the worst program's top-1 speedup.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from featurize import schema
from models.metrics import pick_order

#: Sampler name of Halide's default pick, and of the other reference autoschedulers.
HALIDE_DEFAULT = "adams2019_beam"
REFERENCES = ("mullapudi2016", "li2018")
#: Candidates a search timing the model's best picks tries (the ``top5`` pick).
TOP_K = 5
#: The picks reported for every model (see the module's docstring).
PICKS = ("top1", "top5", "tuned", "oracle", "oracle_adams2019")
#: Bootstrap resamples of the programs for the intervals.
BOOTSTRAP = 2000


def reference_times(dataset_dir: str | Path, origins: tuple[str, ...] = ("zoo", "user")) -> pl.DataFrame:
    """Per program of the dataset from ``origins`` (default: zoo and user): the measured time of
    Halide's default pick and of each reference autoscheduler's (``<sampler>_s``; null where it
    failed or was not drawn)."""
    tables = schema.read_dataset(dataset_dir, ("programs", "schedules", "measurements"))
    progs = tables["programs"].filter(pl.col("origin").is_in(list(origins)))["program_id"]
    meas = tables["measurements"].filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
    return reference_columns(progs, tables["schedules"], meas.select("schedule_id", "runtime_s"))


def reference_columns(program_ids, schedules: pl.DataFrame, runtimes: pl.DataFrame) -> pl.DataFrame:
    """One row per program of ``program_ids``, one ``<sampler>_s`` column per reference pick:
    its measured time from ``runtimes`` (``schedule_id``, ``runtime_s``), null where missing."""
    times = (
        schedules.filter(pl.col("sampler").is_in([HALIDE_DEFAULT, *REFERENCES]))
        .join(runtimes, on="schedule_id")
        .group_by("program_id", "sampler")
        .agg(pl.col("runtime_s").min())
    )
    wide = pl.DataFrame({"program_id": sorted(set(program_ids))}, schema={"program_id": pl.String})
    for sampler in (HALIDE_DEFAULT, *REFERENCES):
        t = times.filter(pl.col("sampler") == sampler).select("program_id", pl.col("runtime_s").alias(f"{sampler}_s"))
        wide = wide.join(t, on="program_id", how="left")
    return wide


def pick_times(preds: pl.DataFrame, k: int = TOP_K, others: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Per program of a ``predictions`` table: measured time of the top-1 pick, of the best of
    the top-``k``, of the best candidate and of the best but ``others`` (``top1_s``, ``top5_s``,
    ``oracle_s``, ``oracle_adams2019_s``), whether the top-1 is one of ``others``
    (``top1_other``: schedule ids the loop-nest reader featurized), and how many candidates there
    were. A non-finite prediction ranks last."""
    rows = []
    for (pid,), g in preds.sort("schedule_id").group_by("program_id", maintain_order=True):
        t = g["y_true"].to_numpy()
        p = g["y_pred"].to_numpy().astype(float)
        p = np.where(np.isfinite(p) & (p > 0), p, np.inf)
        ids = g["schedule_id"].to_list()
        order = pick_order(p, ids)
        own = np.array([i not in others for i in ids])
        rows.append({"program_id": pid, "n_candidates": len(t), "top1_s": float(t[order[0]]),
                     "top5_s": float(t[order[:k]].min()), "oracle_s": float(t.min()),
                     "oracle_adams2019_s": float(t[own].min()) if own.any() else None,
                     "top1_other": ids[order[0]] in others})  # fmt: skip
    return pl.DataFrame(rows, schema={"program_id": pl.String, "n_candidates": pl.Int64, "top1_s": pl.Float64,
                                      "top5_s": pl.Float64, "oracle_s": pl.Float64,
                                      "oracle_adams2019_s": pl.Float64, "top1_other": pl.Boolean})  # fmt: skip


def seed_ensemble(run_predictions: list[pl.DataFrame]) -> pl.DataFrame:
    """One ``predictions``-like frame from a model's training runs: each candidate's predicted
    time is the geometric mean of the runs' (the usual way to use several seeds as one model).
    Candidates a run could not score (non-finite or non-positive) rank last."""
    stacked = pl.concat([p.select("program_id", "schedule_id", "y_true", "y_pred") for p in run_predictions])
    log_pred = pl.when(pl.col("y_pred").is_finite() & (pl.col("y_pred") > 0)).then(pl.col("y_pred").log())
    return (
        stacked.with_columns(log_pred=log_pred.otherwise(float("inf")))
        .group_by("program_id", "schedule_id", maintain_order=True)
        .agg(pl.col("y_true").first(), pl.col("log_pred").mean().exp().alias("y_pred"))
    )


def geomean_interval(speedups: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Geometric mean of ``speedups`` (one per program), its 95% bootstrap interval over
    programs, the smallest, and the count."""
    s = np.asarray(speedups, float)
    s = s[np.isfinite(s) & (s > 0)]
    if not len(s):
        return {"geomean": None, "lo": None, "hi": None, "min": None, "n_programs": 0}
    logs = np.log(s)
    rng = np.random.default_rng(seed)
    boot = logs[rng.integers(0, len(logs), size=(BOOTSTRAP, len(logs)))].mean(axis=1)
    return {
        "geomean": float(math.exp(logs.mean())),
        "lo": float(math.exp(np.quantile(boot, 0.025))),
        "hi": float(math.exp(np.quantile(boot, 0.975))),
        "min": float(s.min()),
        "n_programs": int(len(s)),
    }


def pick_speedups(run_predictions: list[pl.DataFrame], refs: pl.DataFrame,
                  others: frozenset[str] = frozenset()) -> tuple[dict[str, Any], pl.DataFrame]:  # fmt: skip
    """One model's pick speedups over Halide's default pick.

    Args:
        run_predictions: one ``predictions``-like frame (``program_id``, ``schedule_id``,
            ``y_true``, ``y_pred``) per training run of the model.
        refs: per program, the measured time of Halide's default pick (``adams2019_beam_s``)
            and of any other reference (``<sampler>_s``), as :func:`reference_times` gives.
        others: the schedule ids the loop-nest reader featurized (not Adams2019's search).

    Returns:
        (summary: {top1, top5, tuned, oracle, oracle_adams2019: :func:`geomean_interval`,
        top1_other: {picks, of}: how many runs' top-1 picks were one of ``others``, runs,
        per_run, per_program}, per-program speedups, each the geometric mean over the runs).
        ``per_run`` is each run's own top-1 figure (geomean, worst program): a single
        trained model is what a user has, and runs differ.
    """
    timed = refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_not_null())
    pids = timed["program_id"].implode()
    per_run = [pick_times(p.filter(pl.col("program_id").is_in(pids)), others=others).with_columns(run=pl.lit(i))
               for i, p in enumerate(run_predictions)]  # fmt: skip
    if not per_run:
        return {}, pl.DataFrame()
    base = pl.col(f"{HALIDE_DEFAULT}_s")
    others = [r for r in REFERENCES if f"{r}_s" in refs.columns]
    # One row per (run, program): each run's pick times beside the reference picks'.
    picks = pl.concat(per_run).join(timed, on="program_id")
    top1_speedup = base / pl.col("top1_s")
    per_prog = (
        # What `perfgraph tune` keeps: it times the top five and the reference picks (nulls: not timed).
        picks.with_columns(tuned_s=pl.min_horizontal("top5_s", base, *[pl.col(f"{r}_s") for r in others]))
        .group_by("program_id")
        .agg(
            pl.col("n_candidates").first(),
            *[(base / pl.col(f"{c}_s")).log().mean().exp().alias(c) for c in PICKS],
            *[(base / pl.col(f"{r}_s")).first().alias(r) for r in others],
        )
        .sort("program_id")
    )
    summary = {c: geomean_interval(per_prog[c].to_numpy()) for c in PICKS}
    summary["top1_other"] = {"picks": int(picks["top1_other"].sum()), "of": picks.height}
    summary["runs"] = len(per_run)
    per_run_top1 = (
        picks.group_by("run")
        .agg(top1_speedup.log().mean().exp().alias("top1"), top1_speedup.min().alias("top1_min"))
        .sort("run")
    )
    summary["per_run"] = per_run_top1.select("top1", "top1_min").to_dicts()
    summary["per_program"] = per_prog.to_dicts()
    return summary, per_prog


def session_labels(sessions: list[pl.DataFrame]) -> pl.DataFrame:
    """Labels from several timing sessions of the same candidates (``measurements`` tables,
    each a pass of the protocol over every candidate, minutes apart): per schedule, the median
    of its ``runtime_s`` over the sessions that timed it ``ok`` (``runtime_s``), how many did
    (``n_sessions``), and the slowest over the fastest session (``spread``).

    One session's interleaved rounds cancel the host's swings within it; what they cannot cancel
    is a change of the host's load between sessions, which on memory-bound programs moves one
    schedule's time more than another's (a different access pattern, another sensitivity to the
    memory bandwidth left by other tenants). The median over sessions is the label that survives
    that; the spread says how much one session's label could have said otherwise."""
    ok = pl.concat(
        [m.filter(pl.col("status") == "ok").select("program_id", "schedule_id", "runtime_s") for m in sessions]
    )
    return (
        ok.group_by("program_id", "schedule_id")
        .agg(
            pl.col("runtime_s").median(),
            pl.len().cast(pl.Int64).alias("n_sessions"),
            (pl.col("runtime_s").max() / pl.col("runtime_s").min()).alias("spread"),
        )
        .sort("program_id", "schedule_id")
    )


def session_noise(sessions: list[pl.DataFrame], labels: pl.DataFrame) -> pl.DataFrame:
    """Per program: how far one session's times are from the median over sessions
    (:func:`session_labels`): mean and 90th percentile of ``|session / median - 1|`` over its
    schedules and sessions, and the largest."""
    ok = pl.concat([m.filter(pl.col("status") == "ok").select("schedule_id", "runtime_s") for m in sessions])
    dev = ok.join(labels.select("program_id", "schedule_id", pl.col("runtime_s").alias("median_s")), on="schedule_id")
    dev = dev.with_columns((pl.col("runtime_s") / pl.col("median_s") - 1).abs().alias("dev"))
    return (
        dev.group_by("program_id")
        .agg(
            pl.col("schedule_id").n_unique().alias("n_schedules"),
            pl.col("dev").mean().alias("mean_abs_dev"),
            pl.col("dev").quantile(0.9).alias("p90_abs_dev"),
            pl.col("dev").max().alias("max_abs_dev"),
        )
        .sort("program_id")
    )


def reference_speedups(refs: pl.DataFrame) -> dict[str, Any]:
    """Mullapudi2016's and Li2018's picks over Halide's default pick."""
    timed = refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_not_null())
    base = timed[f"{HALIDE_DEFAULT}_s"].to_numpy()
    return {r: geomean_interval(base / timed[f"{r}_s"].to_numpy()) for r in REFERENCES if f"{r}_s" in refs.columns}


def selection(
    models_dir: str | Path, names: list[str], dataset_dir: str | Path, sub: str = "", n_seeds: int | None = None,
    origins: tuple[str, ...] = ("zoo", "user"),
) -> dict[str, Any]:
    """Pick speedups of every model over Halide's default pick on the programs of ``origins``
    (default: zoo and user) of ``dataset_dir`` (the dataset the runs'
    ``<run>/<sub>/predictions.parquet`` scored).

    Returns:
        dict: ``dataset``, ``halide_default`` (what it is), ``programs`` (with a default pick
        timed), ``references`` ({Mullapudi2016, Li2018: speedup summary}), ``models``
        ({name: {top1, top5, tuned, oracle: speedup summary, runs, per_program}}) and ``docs``.
    """
    from models.evaluate import seed_run_dirs

    refs = reference_times(dataset_dir, origins)
    schedules = schema.read_table(schema.table_path(dataset_dir, "schedules"), "schedules")
    others = frozenset(schedules.filter(pl.col("featurizer") == "loopnest")["schedule_id"])
    out: dict[str, Any] = {
        "dataset": str(dataset_dir),
        "halide_default": f"Adams2019 beam search with its shipped weights (sampler {HALIDE_DEFAULT})",
        "programs": refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_not_null())["program_id"].to_list(),
        "programs_without_default": refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_null())["program_id"].to_list(),
        "references": reference_speedups(refs),
        "models": {},
        "docs": __doc__.split("\n\n", 2)[1].strip() if __doc__ else "",
    }
    for name in names:
        files = [d / sub / "predictions.parquet" for d in seed_run_dirs(Path(models_dir) / name, n_seeds)]
        summary, _ = pick_speedups([schema.read_table(f, "predictions") for f in files if f.exists()], refs, others)
        if summary:
            out["models"][name] = summary
    return out
