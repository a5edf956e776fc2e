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
    assert math.isnan(m["top5"])  # 3 schedules: any 5 picks contain the best
    # reference: median time 2 (prediction 1) -> scale 2 -> 2 vs 1 (100 %), 16 vs 4 (300 %)
    assert m["mape_calibrated"] == pytest.approx(200.0)
    assert m["top1_random"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)
    assert m["n_failed_predictions"] == 0


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
    assert m["top1"] == 1.0 and math.isnan(m["top5"])
    assert m["mape_calibrated"] == 0


def test_single_schedule_has_no_rank_metrics() -> None:
    m = metrics.program_metrics([2.0], [1.0])
    assert m["mape"] == pytest.approx(50.0)
    undefined = ("kendall_tau", "pairwise_acc", "top1", "top5", "mape_calibrated", "top1_random", "top5_random")
    assert all(math.isnan(m[k]) for k in undefined)


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


def test_metric_lists_include_calibrated_mape() -> None:
    assert "mape_calibrated" in metrics.METRICS
    assert metrics.HIGHER_IS_BETTER["mape_calibrated"] is False
    assert set(metrics.HIGHER_IS_BETTER) == set(metrics.METRICS)


def test_compute_metrics_keeps_its_keys() -> None:
    frame = pl.DataFrame({"program_id": ["a", "a"], "y_true": [1.0, 2.0], "y_pred": [1.0, 2.0]})
    out = metrics.compute_metrics(frame)
    old = {"mape", "rmse_log", "kendall_tau", "pairwise_acc", "top1", "top5"}
    old |= {"n_programs", "n_programs_ranked", "n_schedules"}
    new = {"mape_calibrated", "top1_random", "top5_random", "n_programs_top1", "n_programs_top5"}
    new |= {"n_programs_calibrated", "n_programs_failed", "n_failed_predictions"}
    assert set(out) >= old | new


# --- Failed predictions -----------------------------------------------------------------


def test_failed_prediction_scores_the_program_at_its_worst() -> None:
    # R = max(t) / min(t) = 4; the valid predictions alone (1 -> 1, 4 -> 4) are perfect.
    m = metrics.program_metrics([1.0, 2.0, 4.0], [1.0, math.nan, 4.0])
    assert m["n_failed_predictions"] == 1
    assert m["mape"] == pytest.approx(400.0)  # 100 * R
    assert m["rmse_log"] == pytest.approx(math.log(5.0))  # log(1 + R)
    assert m["mape_calibrated"] == pytest.approx(400.0)
    assert (m["kendall_tau"], m["pairwise_acc"]) == (-1.0, 0.0)
    assert m["top1"] == pytest.approx(1 / 4)  # picking the slowest schedule
    assert math.isnan(m["top5"])  # still undefined with 3 schedules
    assert m["top1_random"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)  # does not depend on p


@pytest.mark.parametrize("bad", [math.inf, -math.inf, 0.0, -1.0])
def test_infinite_zero_and_negative_predictions_fail(bad: float) -> None:
    m = metrics.program_metrics([1.0, 2.0, 4.0], [1.0, bad, 4.0])
    assert m["n_failed_predictions"] == 1 and m["mape"] == pytest.approx(400.0)


def test_failed_program_keeps_a_worse_valid_score() -> None:
    # R = 1 (cap: 100 %, log 2); the valid predictions are 10x off (900 %, log 10).
    m = metrics.program_metrics([1.0, 1.0, 1.0], [10.0, -1.0, 10.0])
    assert m["mape"] == pytest.approx(900.0)
    assert m["rmse_log"] == pytest.approx(math.log(10.0))
    # valid predictions calibrate perfectly (0 %), so the cap stands
    assert m["mape_calibrated"] == pytest.approx(100.0)
    # equal true times: rank metrics stay undefined, every pick is the best
    assert math.isnan(m["kendall_tau"]) and math.isnan(m["pairwise_acc"])
    assert m["top1"] == 1.0


def test_worst_top_k_picks_the_slowest() -> None:
    t = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert metrics.worst_top_k_score(t, 1) == pytest.approx(1 / 64)
    assert metrics.worst_top_k_score(t, 5) == pytest.approx(1 / 4)  # picks 64, 32, 16, 8, 4
    assert math.isnan(metrics.worst_top_k_score(t[:5], 5))


def test_compute_metrics_penalises_failed_programs() -> None:
    frame = pl.DataFrame(
        {
            "program_id": ["a", "a", "a", "b", "b", "c"],
            "y_true": [1.0, 2.0, 4.0, 1.0, 2.0, 3.0],
            "y_pred": [1.0, math.inf, 4.0, 1.0, 2.0, 0.0],
        }
    )
    out = metrics.compute_metrics(frame)
    # a: failed (R = 4); b: perfect; c: failed, one schedule (R = 1)
    assert out["mape"] == pytest.approx((400 + 0 + 100) / 3)  # a and c were dropped before (inf)
    assert out["rmse_log"] == pytest.approx((math.log(5) + 0 + math.log(2)) / 3)
    assert out["kendall_tau"] == pytest.approx(0.0)  # (-1 + 1) / 2
    assert out["pairwise_acc"] == pytest.approx(0.5)
    assert out["top1"] == pytest.approx((1 / 4 + 1) / 2)
    assert out["top1_random"] == pytest.approx(((1 + 1 / 2 + 1 / 4) / 3 + (1 + 1 / 2) / 2) / 2)
    assert out["top5"] is None and out["top5_random"] is None
    assert out["mape_calibrated"] == pytest.approx((400 + 0) / 2)
    assert (out["n_programs"], out["n_programs_ranked"], out["n_programs_top1"], out["n_programs_top5"]) == (3, 2, 2, 0)
    assert out["n_programs_calibrated"] == 2
    assert (out["n_programs_failed"], out["n_failed_predictions"], out["n_schedules"]) == (2, 2, 6)


# --- Constant predictions and constant truth -----------------------------------------------


def test_constant_prediction_has_tau_zero() -> None:
    m = metrics.program_metrics([1.0, 2.0, 4.0], [3.0, 3.0, 3.0])
    assert m["kendall_tau"] == 0.0
    assert m["pairwise_acc"] == pytest.approx(0.5)  # every pair tied
    assert m["top1"] == 1.0  # tie: the first row, the best


def test_constant_truth_is_not_ranked() -> None:
    frame = pl.DataFrame(
        {
            "program_id": ["a", "a", "a", "b", "b", "b", "c", "c"],
            "y_true": [1.0, 2.0, 4.0, 1.0, 2.0, 4.0, 2.0, 2.0],
            "y_pred": [3.0, 3.0, 3.0, 1.0, 2.0, 4.0, 1.0, 3.0],
        }
    )
    out = metrics.compute_metrics(frame)
    # a: constant prediction (tau 0) stays in; b: tau 1; c: equal true times, left out
    assert out["kendall_tau"] == pytest.approx(0.5)
    assert out["pairwise_acc"] == pytest.approx(0.75)
    assert out["n_programs_ranked"] == 2 and out["n_programs"] == 3


# --- Top-k --------------------------------------------------------------------------------


def test_top_k_needs_more_than_k_schedules() -> None:
    assert metrics.top_k_score([1.0, 2.0], [2.0, 1.0], 1) == pytest.approx(1 / 2)
    assert math.isnan(metrics.top_k_score([1.0], [1.0], 1))
    t = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert math.isnan(metrics.top_k_score(t, t[::-1], 5))
    t6 = [*t, 32.0]
    assert metrics.top_k_score(t6, t6[::-1], 5) == pytest.approx(1 / 2)


def test_random_top_k_is_exact() -> None:
    # k = 1: the mean of min(t) / t_i
    assert metrics.random_top_k_score([2.0, 1.0], 1) == pytest.approx((1 + 1 / 2) / 2)
    # k = 5 of 6: 5 of the 6 draws contain the best, the other one's best is 2
    t = [32.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert metrics.random_top_k_score(t, 5) == pytest.approx((5 * 1 + 1 / 2) / 6)
    assert math.isnan(metrics.random_top_k_score(t[:5], 5))


def test_top_k_ties_go_to_the_smaller_schedule_id() -> None:
    t, p = [1.0, 2.0, 4.0], [1.0, 1.0, 8.0]
    assert metrics.top_k_score(t, p, 1) == 1.0  # by position: row 0
    assert metrics.top_k_score(t, p, 1, ["s2", "s1", "s3"]) == pytest.approx(1 / 2)  # s1 is row 1
    frame = pl.DataFrame({"program_id": ["a"] * 3, "schedule_id": ["s2", "s1", "s3"], "y_true": t, "y_pred": p})
    out = metrics.compute_metrics(frame)
    assert out["top1"] == pytest.approx(1 / 2)
    assert metrics.compute_metrics(frame.reverse()) == out  # independent of row order
    rows = metrics.per_program_metrics(frame.reverse())
    assert rows["top1"].to_list() == [pytest.approx(1 / 2)]


# --- Calibrated MAPE ------------------------------------------------------------------------


def test_calibrated_mape_hand_computed() -> None:
    t, p = [1.0, 2.0, 4.0, 8.0], [1.0, 4.0, 8.0, 8.0]
    # lower median time: 2 (row 1, prediction 4) -> scale 1/2 -> others 0.5, 4, 4
    assert metrics.calibration_reference(t) == 1
    assert metrics.calibrated_mape(t, p) == pytest.approx((50 + 0 + 50) / 3)
    assert metrics.mape(t, p) == pytest.approx(50.0)
    assert math.isnan(metrics.calibrated_mape([1.0], [2.0]))


def test_calibrated_mape_is_scale_free() -> None:
    t = np.array([3.0, 1.0, 2.0, 5.0])
    p = np.array([2.0, 1.5, 2.5, 4.0])
    assert metrics.calibrated_mape(t, 1000 * p) == pytest.approx(metrics.calibrated_mape(t, p))


def test_calibration_reference_ties_by_schedule_id() -> None:
    t, p = [2.0, 1.0, 2.0], [1.0, 1.0, 2.0]
    # by position: order rows 1, 0, 2 -> reference row 0 (scale 2): 2 vs 1, 4 vs 2 -> 100 %
    assert metrics.calibration_reference(t) == 0
    assert metrics.calibrated_mape(t, p) == pytest.approx(100.0)
    # by id: a (row 1), b (row 2), c (row 0) -> reference row 2 (scale 1): 1 vs 2, 1 vs 1 -> 25 %
    ids = ["c", "a", "b"]
    assert metrics.calibration_reference(t, ids) == 2
    assert metrics.calibrated_mape(t, p, ids) == pytest.approx(25.0)


def _noise_tables() -> dict[str, pl.DataFrame]:
    from featurize import schema

    windows = []
    # s1: odd rounds {1.0, 1.2} -> 1.0, even {1.1} -> 1.1; s2: odd {2.0}, even {1.8, 2.2} -> 1.8;
    # s3: 4.0 in both halves; s4 is not featurized, so no model is scored on it: left out.
    for sid, times in [("s1", [1.0, 1.1, 1.2]), ("s2", [2.0, 1.8, 9.0, 2.2]), ("s3", [4.0, 4.0]), ("s4", [1.0, 5.0])]:
        for r, t in enumerate(times, start=1):
            windows.append({"program_id": "p", "schedule_id": sid, "machine_id": "m", "timing_pass": 1, "round": r,
                            "status": "ok", "window_min_s": t, "calibration_s": 1.0,
                            "slow": sid == "s2" and r == 3})  # fmt: skip
    meas = []
    for sid, t1, t2 in [("s1", 1.0, 1.05), ("s2", 1.8, 1.8), ("s3", 4.0, None), ("s4", 1.0, 2.0)]:
        meas.append({"program_id": "p", "schedule_id": sid, "machine_id": "m", "timing_pass": 1, "status": "ok",
                     "runtime_s": t1, "label_method": "min"})
        if t2 is not None:
            meas.append({"program_id": "p", "schedule_id": sid, "machine_id": "m", "timing_pass": 2, "status": "ok",
                         "runtime_s": t2, "label_method": "min"})
    sched = [{"program_id": "p", "schedule_id": s, "has_featurization": s != "s4"} for s in ("s1", "s2", "s3", "s4")]
    return {
        "measurements": pl.from_arrow(schema.from_rows("measurements", meas)),
        "timing_samples": pl.from_arrow(schema.from_rows("timing_samples", windows)),
        "schedules": pl.from_arrow(schema.from_rows("schedules", sched)),
    }


def test_noise_floor_split_half_and_drift_on_scored_schedules() -> None:
    tables = _noise_tables()
    out = metrics.noise_floor(tables)
    assert out["n_schedules"] == 3 and out["n_programs"] == 1
    # split-half pairs (truth, "prediction"): (1.0, 1.1), (2.0, 1.8), (4.0, 4.0)
    assert out["mape"] == pytest.approx((10 + 10 + 0) / 3)
    assert out["split_half"]["mape"] == pytest.approx(out["mape"])
    assert out["split_half"]["median_ratio"] == pytest.approx(1.0)
    assert out["pairwise_acc"] == pytest.approx(1.0)
    # drift: s1 1.0 -> 1.05, s2 1.8 -> 1.8; s3 not re-timed, s4 not scored.
    assert out["drift"]["n_schedules"] == 2
    assert out["drift"]["mape"] == pytest.approx(2.5)
    assert out["drift"]["median_ratio"] == pytest.approx(1.025)
    empty = metrics.noise_floor(tables, programs=["other"])
    assert empty["n_schedules"] == 0 and empty["mape"] is None and empty["drift"]["mape"] is None


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


def test_average_over_seeds_and_ratio_per_seed() -> None:
    run = lambda mape, tau: {"val": {"mape": mape, "kendall_tau": tau, "n_programs": 3},  # noqa: E731
                             "test": {"mape": mape * 2, "kendall_tau": tau, "n_programs": 4}}  # fmt: skip
    gcn = [run(10.0, 0.5), run(20.0, 0.7), run(30.0, None)]
    avg = metrics.average_over_seeds(gcn)
    assert avg["test"]["mape"] == pytest.approx(40.0) and avg["test"]["mape_std"] == pytest.approx(20.0)
    assert avg["val"]["kendall_tau"] == pytest.approx(0.6)  # the run without a tau is left out of it
    assert avg["test"]["n_seeds"] == 3 and avg["test"]["n_programs"] == 4
    single = metrics.average_over_seeds([run(10.0, 0.5)])
    assert single["test"]["mape_std"] == 0.0 and single["test"]["n_seeds"] == 1
    base = [run(40.0, 0.1), run(40.0, 0.1), run(90.0, 0.1)]
    results = {"gcn": avg, "adams2019": metrics.average_over_seeds(base)}
    ratios = metrics.seed_ratio_spread({"gcn": gcn, "adams2019": base}, metrics.headline_ratios(results))
    r = ratios["test"]["adams2019"]
    assert r["mape_ratio_vs_best_gnn"] == pytest.approx(
        metrics.average_over_seeds(base)["test"]["mape"] / avg["test"]["mape"])
    assert r["mape_ratio_vs_best_gnn_seeds"] == pytest.approx([4.0, 2.0, 3.0])
    assert r["mape_ratio_vs_best_gnn_seed_mean"] == pytest.approx(3.0)
    assert r["mape_ratio_vs_best_gnn_seed_std"] == pytest.approx(1.0)
    assert r["mape_ratio_vs_best_gnn_seed_median"] == pytest.approx(3.0)
    assert r["mape_ratio_vs_best_gnn_seed_range"] == pytest.approx([2.0, 4.0])
    # The baseline's seeds: raw test MAPE 80, 80, 180, so 2.25x apart (a seed far off shows here).
    assert r["baseline_seed_mapes"] == pytest.approx([80.0, 80.0, 180.0])
    assert r["baseline_seed_mape_spread"] == pytest.approx(2.25)
