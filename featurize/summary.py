"""Figures that describe a dataset: sizes, sampler mix, failures, the timing noise."""

from __future__ import annotations

import polars as pl


def noise(data: dict[str, pl.DataFrame]) -> dict:
    """Split-half and drift agreement (:func:`pipelines.protocol.noise_figures`) on the
    featurized schedules, with the label method the dataset was timed with."""
    from pipelines.protocol import label_method, noise_figures, scored_schedules

    meas = data["measurements"]
    how = label_method(meas)
    return {"label_method": how, **noise_figures(meas, data["timing_samples"], scored_schedules(data["schedules"]), how)}


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
    }
