"""Figures that describe a dataset: sizes, sampler mix, failures, the timing noise."""

from __future__ import annotations

import polars as pl


def noise(data: dict[str, pl.DataFrame]) -> dict:
    """Split-half and drift agreement (:func:`featurize.noise.noise_figures`) on the
    featurized schedules, with the label method the dataset was timed with."""
    from featurize.noise import label_method, noise_figures, scored_schedules

    meas = data["measurements"]
    how = label_method(meas)
    return {"label_method": how, **noise_figures(meas, data["timing_samples"], scored_schedules(data["schedules"]), how)}


#: A sample "near the best" is within this factor of its program's fastest featurized schedule.
NEAR_BEST = 1.5


def sampler_spread(schedules: pl.DataFrame, measurements: pl.DataFrame) -> dict:
    """How far the featurized samples of each program spread, overall and per sampler.

    On the featurized schedules with a label (pass 1): per program, ``spread`` is the
    slowest over the fastest and ``near_best_share`` the share within :data:`NEAR_BEST`
    of the fastest. Per sampler, over the programs it has a sample in: the median of its
    own within-program spread, its share of samples near the program's best (the best of
    every sampler), and the geometric mean of its best sample over the program's best.
    """
    t = (
        schedules.filter(pl.col("has_featurization"))
        .select("program_id", "schedule_id", "sampler")
        .join(
            measurements.filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
            .select("program_id", "schedule_id", "runtime_s"),
            on=["program_id", "schedule_id"],
        )
        .filter(pl.col("runtime_s") > 0)
        .with_columns(best=pl.col("runtime_s").min().over("program_id"))
        .with_columns(over_best=pl.col("runtime_s") / pl.col("best"))
    )
    if t.height == 0:
        return {"programs": 0}
    per_prog = t.group_by("program_id").agg(
        spread=pl.col("runtime_s").max() / pl.col("runtime_s").min(),
        near_best_share=(pl.col("over_best") <= NEAR_BEST).mean(),
        n=pl.len(),
    )
    per_sampler = (
        t.group_by("sampler", "program_id")
        .agg(
            spread=pl.col("runtime_s").max() / pl.col("runtime_s").min(),
            near=(pl.col("over_best") <= NEAR_BEST).sum(),
            n=pl.len(),
            best_over_best=pl.col("over_best").min(),
        )
        .group_by("sampler")
        .agg(
            programs=pl.len(),
            samples=pl.col("n").sum(),
            spread_median=pl.col("spread").median(),
            near_best_share=pl.col("near").sum() / pl.col("n").sum(),
            best_over_best_geomean=pl.col("best_over_best").log().mean().exp(),
        )
        .sort("sampler")
    )
    return {
        "programs": per_prog.height,
        "near_best": NEAR_BEST,
        "spread_median": float(per_prog["spread"].median()),
        "spread_p10": float(per_prog["spread"].quantile(0.1)),
        "spread_p90": float(per_prog["spread"].quantile(0.9)),
        "near_best_share_median": float(per_prog["near_best_share"].median()),
        "programs_with_quarter_near_best": float((per_prog["near_best_share"] >= 0.25).mean()),
        "by_sampler": {r.pop("sampler"): r for r in per_sampler.iter_rows(named=True)},
    }


def dataset_summary(data: dict[str, pl.DataFrame]) -> dict:
    """One dict of headline figures for a dataset loaded with :func:`featurize.schema.read_dataset`."""
    m1 = data["measurements"].filter(pl.col("timing_pass") == 1)
    samples = data["timing_samples"].filter(pl.col("timing_pass") == 1)
    ok = m1.filter(pl.col("status") == "ok")
    return {
        "programs": data["programs"].height,
        "programs_by_origin": dict(data["programs"].group_by("origin").len().sort("origin").iter_rows()),
        "stages": data["nodes"].height,
        "edges": data["edges"].height,
        "schedules": data["schedules"].height,
        "schedules_featurized": int(data["schedules"]["has_featurization"].sum()),
        "schedules_by_sampler": dict(data["schedules"].group_by("sampler").len().sort("sampler").iter_rows()),
        "schedules_per_program_median": float(data["schedules"].group_by("program_id").len()["len"].median()),
        "measurements_by_status": dict(m1.group_by("status").len().sort("status").iter_rows()),
        "failed_share": float((m1["status"] != "ok").mean()) if m1.height else 0.0,
        "runtime_ms_min": float(ok["runtime_s"].min() * 1e3) if ok.height else None,
        "runtime_ms_median": float(ok["runtime_s"].median() * 1e3) if ok.height else None,
        "runtime_ms_max": float(ok["runtime_s"].max() * 1e3) if ok.height else None,
        "compile_time_s_median": float(m1["compile_time_s"].median()) if m1.height else None,
        "timing_windows": samples.height,
        "timing_windows_slow_share": float(samples["slow"].mean()) if samples.height else None,
        "noise": noise(data),
        "spread": sampler_spread(data["schedules"], data["measurements"]),
    }
