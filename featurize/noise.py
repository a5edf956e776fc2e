"""Noise figures of a dataset's timing tables: the protocol's labels re-made from the raw
windows (``timing_samples``), split-half and drift agreement, and what each figure bounds.
The timing protocol itself (how windows are taken and labelled) is :mod:`pipelines.protocol`."""

from __future__ import annotations

import numpy as np
import polars as pl


def good_windows(samples: pl.DataFrame) -> pl.DataFrame:
    """The windows a label is made of: timed fine, and not during a slow phase."""
    return samples.filter((pl.col("status") == "ok") & ~pl.col("slow"))


def labels(samples: pl.DataFrame, how: str) -> pl.DataFrame:
    """``(program_id, schedule_id, machine_id, timing_pass, runtime_s)`` from a ``timing_samples``
    frame: the protocol's label of each schedule, re-aggregated from the raw windows.

    ``calibrated`` scales by each job's fast calibration time (job = program and pass)."""
    key = ["program_id", "schedule_id", "machine_id", "timing_pass"]
    good = good_windows(samples)
    if how == "min":
        return good.group_by(key).agg(pl.col("window_min_s").min().alias("runtime_s"))
    if how == "median":
        return good.group_by(key).agg(pl.col("window_min_s").median().alias("runtime_s"))
    fast = (
        samples.filter(pl.col("calibration_s") > 0)
        .group_by("program_id", "machine_id", "timing_pass")
        .agg(pl.col("calibration_s").quantile(0.1, "linear").alias("fast_cal"))
    )
    return (
        good.join(fast, on=["program_id", "machine_id", "timing_pass"])
        .group_by(key)
        .agg(((pl.col("window_min_s") / pl.col("calibration_s")).median() * pl.col("fast_cal").first()).alias("runtime_s"))
    )


def split_half_pairs(samples: pl.DataFrame, how: str, timing_pass: int = 1) -> pl.DataFrame:
    """``(program_id, schedule_id, label_a, label_b)``: the label from the odd rounds against
    the label from the even rounds of the same job, for schedules with good windows in both."""
    s = samples.filter(pl.col("timing_pass") == timing_pass)
    halves = []
    for parity, name in ((1, "label_a"), (0, "label_b")):
        half = s.filter(pl.col("round") % 2 == parity)
        halves.append(labels(half, how).select("program_id", "schedule_id", "machine_id", pl.col("runtime_s").alias(name)))
    return halves[0].join(halves[1], on=["program_id", "schedule_id", "machine_id"]).drop("machine_id")


def drift_pairs(measurements: pl.DataFrame) -> pl.DataFrame:
    """``(program_id, schedule_id, label_a, label_b)``: pass-1 labels and the later pass-2
    re-time of the same schedules on the same machine (both status ok)."""
    ok = measurements.filter((pl.col("status") == "ok") & (pl.col("runtime_s") > 0))
    key = ["program_id", "schedule_id", "machine_id"]
    first = ok.filter(pl.col("timing_pass") == 1).select(*key, label_a="runtime_s")
    second = ok.filter(pl.col("timing_pass") == 2).select(*key, label_b="runtime_s")
    return first.join(second, on=key).drop("machine_id")


def agreement(pairs: pl.DataFrame) -> dict:
    """How two labels of the same schedules agree: MAPE (%) of ``label_b`` against ``label_a``,
    the median ratio b/a and its 10th/90th percentiles, and the number of schedules."""
    if pairs.height == 0:
        return {"mape": None, "median_ratio": None, "p10_ratio": None, "p90_ratio": None, "n_schedules": 0}
    a, b = pairs["label_a"].to_numpy(), pairs["label_b"].to_numpy()
    r = b / a
    return {
        "mape": float(np.mean(np.abs(b - a) / a) * 100.0),
        "median_ratio": float(np.median(r)),
        "p10_ratio": float(np.quantile(r, 0.1)),
        "p90_ratio": float(np.quantile(r, 0.9)),
        "n_schedules": int(pairs.height),
    }


#: What each noise figure bounds, in words (summary.json, summary.md and the report quote these).
NOISE_DOCS = {
    "split_half": "label from the odd timing rounds vs the label from the even rounds of the same job: "
    "how far the protocol's label moves when the same schedule is re-measured minutes apart within "
    "one job; a model's MAPE cannot meaningfully go below it",
    "drift": "a later, separate re-time of a share of the schedules vs their labels: how far labels "
    "move over a longer time (other load on the host, thermal state); the median ratio shows a "
    "systematic shift of the whole machine",
}


def scored_schedules(schedules: pl.DataFrame) -> pl.DataFrame:
    """``(program_id, schedule_id)`` of the schedules models are scored on: the featurized ones."""
    return schedules.filter(pl.col("has_featurization")).select("program_id", "schedule_id")


def label_method(measurements: pl.DataFrame) -> str:
    """The aggregate the labels were made with (``min`` if the rows disagree or there are none)."""
    methods = measurements.filter(pl.col("status") == "ok")["label_method"].unique().to_list()
    return methods[0] if len(methods) == 1 else "min"


def noise_figures(
    measurements: pl.DataFrame, samples: pl.DataFrame, scored: pl.DataFrame | None, how: str
) -> dict:
    """Both noise figures, restricted to ``scored`` (``program_id, schedule_id``: the schedules
    the models are scored on) when given."""

    def restrict(pairs: pl.DataFrame) -> pl.DataFrame:
        return pairs if scored is None else pairs.join(scored.select("program_id", "schedule_id"), on=["program_id", "schedule_id"])

    return {
        "split_half": agreement(restrict(split_half_pairs(samples, how))),
        "drift": agreement(restrict(drift_pairs(measurements))),
    }
