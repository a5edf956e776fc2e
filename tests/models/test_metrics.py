from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from models import metrics


def test_program_metrics_hand_computed() -> None:
    m = metrics.program_metrics([1.0, 2.0, 4.0], [1.0, 1.0, 8.0])
    assert m["mape"] == pytest.approx(50.0)
    assert m["rmse_log"] == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    # pairs: (0,1) tied prediction, (0,2) and (1,2) concordant -> tau-b = 2 / sqrt(3 * 2)
    assert m["kendall_tau"] == pytest.approx(2 / math.sqrt(6))
    assert m["pairwise_acc"] == pytest.approx(2.5 / 3)
    assert m["top1"] == pytest.approx(1.0)  # tie broken by position: schedule 0, the best
    assert m["top5"] == pytest.approx(1.0)


def test_program_metrics_reversed_order() -> None:
    t = np.array([1.0, 2, 4, 8, 16, 32])
    m = metrics.program_metrics(t, t[::-1].copy())
    assert m["kendall_tau"] == pytest.approx(-1.0)
    assert m["pairwise_acc"] == pytest.approx(0.0)
    assert m["top1"] == pytest.approx(1 / 32)
    assert m["top5"] == pytest.approx(1 / 2)  # picks are 32, 16, 8, 4, 2
    assert m["mape"] == pytest.approx(np.mean(np.abs(t[::-1] - t) / t) * 100)


def test_perfect_prediction() -> None:
    t = [3.0, 1.0, 2.0]
    m = metrics.program_metrics(t, t)
    assert m["mape"] == 0 and m["rmse_log"] == 0
    assert m["kendall_tau"] == pytest.approx(1.0) and m["pairwise_acc"] == 1.0
    assert m["top1"] == 1.0 and m["top5"] == 1.0


def test_single_schedule_has_no_rank_metrics() -> None:
    m = metrics.program_metrics([2.0], [1.0])
    assert m["mape"] == pytest.approx(50.0)
    assert all(math.isnan(m[k]) for k in ("kendall_tau", "pairwise_acc", "top1", "top5"))


def test_program_metrics_rejects_bad_truth() -> None:
    with pytest.raises(ValueError, match="positive"):
        metrics.program_metrics([0.0, 1.0], [1.0, 1.0])


def test_compute_metrics_averages_over_programs() -> None:
    frame = pl.DataFrame(
        {
            "program_id": ["a", "a", "a", "b"],
            "y_true": [1.0, 2.0, 4.0, 2.0],
            "y_pred": [1.0, 2.0, 4.0, 1.0],
        }
    )
    out = metrics.compute_metrics(frame)
    # program a: perfect; program b: 50 % -> mean 25 %, not the per-schedule 12.5 %
    assert out["mape"] == pytest.approx(25.0)
    assert out["rmse_log"] == pytest.approx(math.log(2) / 2)
    assert out["kendall_tau"] == pytest.approx(1.0)  # only program a is ranked
    assert out["top1"] == pytest.approx(1.0)
    assert (out["n_programs"], out["n_programs_ranked"], out["n_schedules"]) == (2, 1, 4)


def test_noise_floor_pass2_vs_pass1() -> None:
    rows = []
    for sid, t1, t2 in [("s1", 1.0, 1.1), ("s2", 2.0, 1.8), ("s3", 4.0, 4.0)]:
        rows.append(("p", sid, "m", 1, "ok", t1))
        rows.append(("p", sid, "m", 2, "ok", t2))
    rows.append(("p", "s4", "m", 1, "ok", 8.0))  # not re-timed: ignored
    rows.append(("p", "s5", "m", 1, "ok", 3.0))
    rows.append(("p", "s5", "m", 2, "timeout", None))  # failed re-time: ignored
    meas = pl.DataFrame(
        rows,
        schema=["program_id", "schedule_id", "machine_id", "timing_pass", "status", "runtime_median_s"],
        orient="row",
    )
    out = metrics.noise_floor(meas)
    assert out["n_schedules"] == 3 and out["n_programs"] == 1
    assert out["mape"] == pytest.approx((10 + 10 + 0) / 3)
    assert out["pairwise_acc"] == pytest.approx(1.0)
    empty = metrics.noise_floor(meas.filter(pl.col("timing_pass") == 1))
    assert empty["n_schedules"] == 0 and empty["mape"] is None


def test_best_gnn_is_chosen_on_validation_not_on_the_reported_split() -> None:
    # gine is best on val, gcn on test: the ratio must divide by gine's test MAPE.
    results = {
        "gcn": {"val": {"mape": 50.0}, "test": {"mape": 10.0, "rmse_log": 0.1}},
        "gine": {"val": {"mape": 20.0}, "test": {"mape": 40.0, "rmse_log": 0.4}},
        "adams2019": {"test": {"mape": 80.0, "rmse_log": 0.8}},
    }
    r = metrics.headline_ratios(results)["test"]
    assert (r["best_gnn"], r["selected_on"]) == ("gine", "val")
    assert r["adams2019"]["mape_ratio_vs_best_gnn"] == pytest.approx(2.0)
    assert r["adams2019"]["rmse_log_ratio_vs_best_gnn"] == pytest.approx(2.0)
    assert r["adams2019"]["mape_ratio_vs_gcn"] == pytest.approx(8.0)


def test_best_gnn_without_validation_metrics_says_where_it_was_chosen() -> None:
    results = {
        "gcn": {"test": {"mape": 10.0, "rmse_log": 0.1}},
        "gine": {"test": {"mape": 40.0, "rmse_log": 0.4}},
        "tvm_xgb": {"test": {"mape": 30.0, "rmse_log": 0.3}},
    }
    r = metrics.headline_ratios(results)["test"]
    assert (r["best_gnn"], r["selected_on"]) == ("gcn", "test")
    assert r["tvm_xgb"]["mape_ratio_vs_best_gnn"] == pytest.approx(3.0)
