"""Figures that describe a dataset: sizes, sampler mix, failures, the timing noise floor."""

from __future__ import annotations

import polars as pl


def noise_floor(measurements: pl.DataFrame) -> pl.DataFrame:
    """Pairs (pass 1, pass 2) of the re-timed schedules, with their relative difference."""
    ok = measurements.filter(pl.col("status") == "ok")
    first = ok.filter(pl.col("timing_pass") == 1).select("program_id", "schedule_id", t1="runtime_median_s")
    second = ok.filter(pl.col("timing_pass") == 2).select("program_id", "schedule_id", t2="runtime_median_s")
    return first.join(second, on=["program_id", "schedule_id"]).with_columns(
        rel_diff=(pl.col("t2") - pl.col("t1")).abs() / pl.col("t1")
    )


def dataset_summary(data: dict[str, pl.DataFrame]) -> dict:
    """One dict of headline figures for a dataset loaded with :func:`featurize.schema.read_dataset`."""
    m1 = data["measurements"].filter(pl.col("timing_pass") == 1)
    pairs = noise_floor(data["measurements"])
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
        "runtime_ms_min": float(ok["runtime_median_s"].min() * 1e3) if ok.height else None,
        "runtime_ms_median": float(ok["runtime_median_s"].median() * 1e3) if ok.height else None,
        "runtime_ms_max": float(ok["runtime_median_s"].max() * 1e3) if ok.height else None,
        "compile_time_s_median": float(m1["compile_time_s"].median()) if m1.height else None,
        "noise_floor_pairs": pairs.height,
        "noise_floor_mape": float(pairs["rel_diff"].mean()) if pairs.height else None,
        "noise_floor_max_rel_diff": float(pairs["rel_diff"].max()) if pairs.height else None,
    }
