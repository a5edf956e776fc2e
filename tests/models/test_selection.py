"""models.selection: the measured worth of a model's picks, on hand-made predictions."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from models.selection import (
    geomean_interval,
    pick_speedups,
    pick_times,
    reference_speedups,
    seed_ensemble,
    session_labels,
    session_noise,
)


def preds(rows: list[tuple[str, str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"model": "m", "program_id": p, "schedule_id": s, "split": "zoo", "y_true": t, "y_pred": y} for p, s, t, y in rows]
    )


def test_pick_times_top1_top5_oracle_and_tie_break() -> None:
    rows = [("p", f"s{i}", t, y) for i, (t, y) in enumerate([(4.0, 1.0), (1.0, 9.0), (2.0, 2.0), (3.0, 3.0),
                                                               (5.0, 4.0), (6.0, 5.0), (1.5, 6.0)])]  # fmt: skip
    # A tie on the best prediction is broken by schedule id: "a" before "b".
    rows += [("q", "b", 1.0, 0.5), ("q", "a", 3.0, 0.5)]
    # A non-finite prediction ranks last, never first.
    rows += [("r", "x", 1.0, 1.0), ("r", "y", 5.0, math.nan)]
    got = {r["program_id"]: r for r in pick_times(preds(rows)).iter_rows(named=True)}
    assert (got["p"]["top1_s"], got["p"]["top5_s"], got["p"]["oracle_s"], got["p"]["n_candidates"]) == (4.0, 2.0, 1.0, 7)
    assert got["q"]["top1_s"] == 3.0 and got["q"]["oracle_s"] == 1.0
    assert got["r"]["top1_s"] == 1.0
    # Schedules the loop-nest reader featurized (here p's s1, its fastest, and q's a, its top-1):
    # the oracle without them, and whether the top-1 is one.
    got = {r["program_id"]: r for r in pick_times(preds(rows), others=frozenset({"s1", "a"})).iter_rows(named=True)}
    assert (got["p"]["oracle_s"], got["p"]["oracle_adams2019_s"], got["p"]["top1_other"]) == (1.0, 1.5, False)
    assert (got["q"]["oracle_adams2019_s"], got["q"]["top1_other"]) == (1.0, True)


def test_geomean_interval() -> None:
    s = geomean_interval(np.array([2.0, 0.5, 1.0, 4.0]))
    assert s["geomean"] == pytest.approx(2 ** 0.5) and s["min"] == 0.5 and s["n_programs"] == 4
    assert s["lo"] <= s["geomean"] <= s["hi"]
    assert geomean_interval(np.array([math.nan]))["geomean"] is None


def test_pick_speedups_over_the_default_pick_across_seeds() -> None:
    refs = pl.DataFrame({"program_id": ["p", "q"], "adams2019_beam_s": [2.0, 1.0],
                         "mullapudi2016_s": [1.0, 4.0], "li2018_s": [None, 1.0]})  # fmt: skip
    # Seed 0 picks p's 1-second schedule (2x over the default's 2 s), seed 1 its 4-second one (0.5x):
    # the per-program speedup is their geometric mean, 1x. On q both seeds pick the 2-second one (0.5x).
    runs = [
        [("p", "a", 1.0, 1.0), ("p", "b", 4.0, 2.0), ("q", "c", 2.0, 1.0), ("q", "d", 1.0, 3.0)],
        [("p", "a", 1.0, 2.0), ("p", "b", 4.0, 1.0), ("q", "c", 2.0, 1.0), ("q", "d", 1.0, 3.0)],
    ]
    summary, per_prog = pick_speedups([preds(rows) for rows in runs], refs, others=frozenset({"a"}))
    by = {r["program_id"]: r for r in per_prog.iter_rows(named=True)}
    # "a" (p's fastest) is the loop-nest reader's: seed 0's top-1 on p; without it p's oracle is 0.5x
    assert summary["top1_other"] == {"picks": 1, "of": 4}
    assert by["p"]["oracle_adams2019"] == pytest.approx(0.5) and by["q"]["oracle_adams2019"] == pytest.approx(1.0)
    assert by["p"]["top1"] == pytest.approx(1.0) and by["q"]["top1"] == pytest.approx(0.5)
    assert by["p"]["oracle"] == pytest.approx(2.0) and by["q"]["oracle"] == pytest.approx(1.0)
    assert by["p"]["mullapudi2016"] == pytest.approx(2.0) and by["q"]["li2018"] == pytest.approx(1.0)
    # `perfgraph tune` keeps the fastest of the top five and the reference picks: on p, Mullapudi2016's
    # 1 s equals the best of the top five (2x); on q Li2018 ties the default (1x), never below it.
    assert by["p"]["tuned"] == pytest.approx(2.0) and by["q"]["tuned"] == pytest.approx(1.0)
    assert summary["tuned"]["min"] >= 1.0
    assert summary["runs"] == 2 and summary["top1"]["geomean"] == pytest.approx(0.5 ** 0.5)
    assert summary["top1"]["min"] == pytest.approx(0.5)
    # each run on its own: seed 0 2x on p and 0.5x on q (1x, worst 0.5x); seed 1 0.5x on both
    assert [r["top1"] for r in summary["per_run"]] == pytest.approx([1.0, 0.5])
    assert [r["top1_min"] for r in summary["per_run"]] == pytest.approx([0.5, 0.5])
    refs_summary = reference_speedups(refs)
    assert refs_summary["mullapudi2016"]["geomean"] == pytest.approx(0.5 ** 0.5)  # 2x on p, 0.25x on q
    assert refs_summary["li2018"]["n_programs"] == 1


def test_session_labels_median_over_sessions_and_their_noise() -> None:
    def session(rows):
        return pl.DataFrame([{"program_id": p, "schedule_id": s, "status": st, "runtime_s": t} for p, s, st, t in rows])

    # a: 1.0, 1.2, 0.9 -> median 1.0, spread 1.2 / 0.9; b failed in the second session: the median
    # of its two ok sessions; c, another program, never moved.
    sessions = [
        session([("p", "a", "ok", 1.0), ("p", "b", "ok", 2.0), ("q", "c", "ok", 3.0)]),
        session([("p", "a", "ok", 1.2), ("p", "b", "timeout", None), ("q", "c", "ok", 3.0)]),
        session([("p", "a", "ok", 0.9), ("p", "b", "ok", 4.0), ("q", "c", "ok", 3.0)]),
    ]
    labels = {r["schedule_id"]: r for r in session_labels(sessions).iter_rows(named=True)}
    assert labels["a"]["runtime_s"] == pytest.approx(1.0) and labels["a"]["spread"] == pytest.approx(1.2 / 0.9)
    assert labels["b"]["runtime_s"] == pytest.approx(3.0) and labels["b"]["n_sessions"] == 2
    assert labels["c"]["n_sessions"] == 3 and labels["c"]["spread"] == pytest.approx(1.0)
    noise = {r["program_id"]: r for r in session_noise(sessions, session_labels(sessions)).iter_rows(named=True)}
    # p: a's |t / 1.0 - 1| = 0, 0.2, 0.1; b's |t / 3.0 - 1| = 1/3, 1/3
    assert noise["p"]["mean_abs_dev"] == pytest.approx((0.2 + 0.1 + 2 / 3) / 5)
    assert noise["p"]["max_abs_dev"] == pytest.approx(1 / 3) and noise["p"]["n_schedules"] == 2
    assert noise["q"]["max_abs_dev"] == pytest.approx(0.0)


def test_seed_ensemble_geometric_mean_of_the_runs_predictions() -> None:
    # a: 1 and 4 -> 2; b: 2 and 3 -> sqrt(6) = 2.45: the ensemble picks a, though seed 1 alone
    # picks b. c: a run that could not score it ranks it last.
    runs = [
        preds([("p", "a", 5.0, 1.0), ("p", "b", 1.0, 2.0), ("p", "c", 0.5, 0.1)]),
        preds([("p", "a", 5.0, 4.0), ("p", "b", 1.0, 3.0), ("p", "c", 0.5, math.nan)]),
    ]
    ens = {r["schedule_id"]: r for r in seed_ensemble(runs).iter_rows(named=True)}
    assert ens["a"]["y_pred"] == pytest.approx(2.0) and ens["b"]["y_pred"] == pytest.approx(6**0.5)
    assert ens["b"]["y_true"] == 1.0 and not math.isfinite(ens["c"]["y_pred"])
    assert pick_times(seed_ensemble(runs))["top1_s"].to_list() == [5.0]


def test_reference_times_of_the_programs_of_the_origins_asked(tmp_path) -> None:
    from featurize import schema
    from models.selection import reference_times

    programs = [{"program_id": "r00000", "origin": "random"}, {"program_id": "zoo_blur", "origin": "zoo"}]
    schedules = [
        {"program_id": p, "schedule_id": f"{p}-{s}", "sampler": s}
        for p in ("r00000", "zoo_blur")
        for s in ("adams2019_beam", "li2018", "adams2019_dropout")
    ]
    times = {"adams2019_beam": 2.0, "li2018": 8.0, "adams2019_dropout": 1.0}
    meas = [{"schedule_id": r["schedule_id"], "timing_pass": 1, "status": "ok", "runtime_s": times[r["sampler"]]}
            for r in schedules]  # fmt: skip
    for name, rows in (("programs", programs), ("schedules", schedules), ("measurements", meas)):
        schema.write_table(name, schema.from_rows(name, rows), schema.table_path(tmp_path, name))
    assert reference_times(tmp_path)["program_id"].to_list() == ["zoo_blur"]  # zoo and user by default
    random = reference_times(tmp_path, ("random",))
    assert random["program_id"].to_list() == ["r00000"]
    assert random.row(0, named=True) == {"program_id": "r00000", "adams2019_beam_s": 2.0, "mullapudi2016_s": None,
                                         "li2018_s": 8.0}  # fmt: skip
