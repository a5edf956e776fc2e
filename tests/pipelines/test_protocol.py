"""The timing protocol on synthetic timings: rounds, shuffles, slow phases, labels, noise figures."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from featurize import schema
from featurize import noise
from pipelines import protocol as proto
from pipelines.bench import ProgramTiming

MACHINE = {"machine_id": "m0"}


def candidates(times: dict[str, float], failed: dict[str, str] | None = None) -> pl.DataFrame:
    rows = []
    for sid in times:
        status = (failed or {}).get(sid, "ok")
        rows.append({"program_id": "p", "schedule_id": sid, "sampler": "test", "sampler_params": "{}",
                     "autoscheduler": "none", "has_featurization": True, "schedule_text": sid,
                     "sample_time_s": 0.0, "n_duplicates": 0, "compile_status": status,
                     "compile_error": "" if status == "ok" else "Error: no", "compile_time_s": 0.1,
                     "library": f"lib/{sid}.so", "featurization": b""})  # fmt: skip
    return pl.from_arrow(schema.from_rows("candidates", rows))


class SyntheticMachine:
    """Windows of known true times on a machine that runs ``slowdown`` x slower during the
    windows whose global index is in ``slow_windows`` (candidate and calibration alike)."""

    def __init__(self, times: dict[str, float], slow_windows: set[int], slowdown: float = 2.0) -> None:
        self.times, self.slow_windows, self.slowdown = times, slow_windows, slowdown
        self.calls: list[str] = []

    def __call__(self, cand: dict) -> dict:
        i = len(self.calls)
        self.calls.append(cand["schedule_id"])
        f = self.slowdown if i in self.slow_windows else 1.0
        jitter = 1.0 + 0.002 * (i % 3)  # a little noise that the label must not care about
        t = self.times[cand["schedule_id"]] * f * jitter
        return {"status": "ok", "error": "", "window_min_s": t, "window_median_s": t * 1.01, "n_runs": 10,
                "calibration_s": 1e-4 * f * jitter, "output_checksum": 1.0, "input_bytes": 64}  # fmt: skip


def test_round_orders_are_seeded_shuffles() -> None:
    ids = [f"s{i}" for i in range(8)]
    orders = proto.round_orders(ids, 4, seed=0, salt="p")
    assert all(sorted(o) == sorted(ids) for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # not the same order every round
    assert proto.round_orders(list(reversed(ids)), 4, seed=0, salt="p") == orders  # input order does not matter
    assert proto.round_orders(ids, 4, seed=1, salt="p") != orders


def test_slow_phase_is_flagged_remeasured_and_ignored() -> None:
    times = {"a": 1e-3, "b": 2e-3, "c": 4e-3, "d": 8e-3}
    rounds = 5
    # The machine is 2x slower for a phase of 6 consecutive windows in rounds 2-3.
    machine = SyntheticMachine(times, slow_windows=set(range(5, 11)))
    p = proto.Protocol(rounds=rounds, aggregate="median", max_extra_rounds=3)
    timing = ProgramTiming(candidates(times), machine, p, MACHINE)
    timing.run()
    meas, samples = timing.tables()

    # Every window of the slow phase was flagged, and only those.
    flagged = samples.sort("started_s")["slow"].to_list()
    assert [i for i, f in enumerate(flagged) if f] == list(range(5, 11))
    # Each candidate got back to `rounds` good windows in extra rounds.
    good = samples.filter(~pl.col("slow")).group_by("schedule_id").len()
    assert set(good["len"]) == {rounds}
    assert samples["round"].max() > rounds
    # The label ignores the slow phase: every aggregate is within the injected jitter.
    label = dict(meas.select("schedule_id", "runtime_s").iter_rows())
    for sid, t in times.items():
        assert label[sid] == pytest.approx(t, rel=0.005)
    assert meas["n_slow_windows"].sum() == 6
    # Unflagged, the median would have been dragged up only if 3+ windows were slow; the mean
    # over all windows is visibly wrong, which is what the flags prevent.
    all_mean = samples.group_by("schedule_id").agg(pl.col("window_min_s").mean())
    assert any(v > times[s] * 1.1 for s, v in all_mean.iter_rows())


@pytest.mark.parametrize("how", proto.AGGREGATES)
def test_every_aggregate_recovers_the_true_times(how: str) -> None:
    times = {"a": 1e-3, "b": 3e-3}
    machine = SyntheticMachine(times, slow_windows={1, 2})
    timing = ProgramTiming(candidates(times), machine, proto.Protocol(rounds=4, aggregate=how), MACHINE)
    timing.run()
    meas, samples = timing.tables()
    for sid, t in meas.select("schedule_id", "runtime_s").iter_rows():
        assert t == pytest.approx(times[sid], rel=0.005)
    # Re-aggregating the raw windows gives the stored label.
    again = noise.labels(samples, how).join(meas.select("schedule_id", "runtime_s"), on="schedule_id")
    assert np.allclose(again["runtime_s"], again["runtime_s_right"])


def test_whole_machine_slow_for_one_candidate_is_not_its_label() -> None:
    # Without the shuffled rounds, one long slow phase would sit on one candidate.
    times = {"a": 1e-3, "b": 1e-3, "c": 1e-3}
    machine = SyntheticMachine(times, slow_windows={0, 3, 6}, slowdown=1.5)  # position 0 in rounds 1-3
    timing = ProgramTiming(candidates(times), machine, proto.Protocol(rounds=3, max_extra_rounds=0), MACHINE)
    timing.run()
    meas, _ = timing.tables()
    assert meas["runtime_s"].max() == pytest.approx(1e-3, rel=0.01)


def test_failed_compiles_and_failed_windows_are_status_rows() -> None:
    times = {"a": 1e-3, "b": 2e-3, "bad": 1.0}
    machine = SyntheticMachine(times, slow_windows=set())

    def measure(cand: dict) -> dict:
        if cand["schedule_id"] == "b" and machine.calls.count("b") == 2:
            machine.calls.append("b")
            return {"status": "crash", "error": "killed by SIGSEGV"}
        return machine(cand)

    timing = ProgramTiming(candidates(times, failed={"bad": "compile_error"}), measure, proto.Protocol(rounds=4), MACHINE)
    timing.run()
    meas, samples = timing.tables()
    row = {r["schedule_id"]: r for r in meas.iter_rows(named=True)}
    assert row["bad"]["status"] == "compile_error" and row["bad"]["runtime_s"] is None
    assert row["b"]["status"] == "crash" and row["b"]["error"] == "round 3: killed by SIGSEGV"
    assert row["a"]["status"] == "ok"
    # The crash is a window row too, and b was not timed after it.
    b = samples.filter(pl.col("schedule_id") == "b").sort("round")
    assert b["status"].to_list() == ["ok", "ok", "crash"]


def test_flag_slow_against_the_fast_calibration() -> None:
    cal = np.array([1.0, 1.0, 1.02, 1.1, 1.3, 2.0, np.nan])
    assert proto.flag_slow(cal, 1.25).tolist() == [False, False, False, False, True, True, True]
    assert proto.fast_calibration(cal) == pytest.approx(1.0)


def test_protocol_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="unknown timing settings"):
        proto.Protocol.from_config({"rounds": 3, "max_time_s": 1})
    with pytest.raises(ValueError, match="aggregate"):
        proto.Protocol(aggregate="mean")


def samples_frame(rows: list[tuple]) -> pl.DataFrame:
    keys = ("program_id", "schedule_id", "round", "window_min_s", "calibration_s", "slow")
    out = []
    for r in rows:
        d = dict(zip(keys, r))
        out.append({**d, "machine_id": "m0", "timing_pass": 1, "position": 0, "started_s": 0.0, "status": "ok",
                    "error": "", "window_median_s": d["window_min_s"], "n_runs": 3, "output_checksum": 0.0,
                    "input_bytes": 4})  # fmt: skip
    return pl.from_arrow(schema.from_rows("timing_samples", out))


def test_split_half_and_drift_on_hand_made_data() -> None:
    samples = samples_frame([
        ("p", "a", 1, 1.0, 1.0, False), ("p", "a", 2, 1.1, 1.0, False), ("p", "a", 3, 0.9, 1.0, False),
        ("p", "a", 4, 1.2, 1.0, False),
        ("p", "b", 1, 2.0, 1.0, False), ("p", "b", 2, 2.0, 1.0, False), ("p", "b", 3, 9.0, 2.0, True),
    ])  # fmt: skip
    pairs = noise.split_half_pairs(samples, "min").sort("schedule_id")
    # a: odd rounds {1.0, 0.9} -> 0.9, even rounds {1.1, 1.2} -> 1.1; b: odd {2.0} (round 3 slow), even {2.0}.
    assert pairs.select("schedule_id", "label_a", "label_b").rows() == [("a", 0.9, 1.1), ("b", 2.0, 2.0)]
    agree = noise.agreement(pairs)
    assert agree["mape"] == pytest.approx((0.2 / 0.9) / 2 * 100)
    assert agree["median_ratio"] == pytest.approx((1.1 / 0.9 + 1.0) / 2)
    assert agree["n_schedules"] == 2

    meas = pl.DataFrame({
        "program_id": ["p"] * 4, "schedule_id": ["a", "b", "a", "b"], "machine_id": ["m0"] * 4,
        "timing_pass": [1, 1, 2, 2], "status": ["ok", "ok", "ok", "timeout"], "runtime_s": [1.0, 2.0, 1.05, None],
    })  # fmt: skip
    drift = noise.drift_pairs(meas)
    assert drift.rows() == [("p", "a", 1.0, 1.05)]
    assert noise.agreement(drift)["mape"] == pytest.approx(5.0)
    assert noise.agreement(drift.head(0))["mape"] is None


def test_calibrated_label_divides_out_machine_speed() -> None:
    # The machine is 2x slower in round 2; the calibrated label scales it back by the calibration.
    samples = samples_frame([
        ("p", "a", 1, 1.0, 1.0, False), ("p", "a", 2, 2.0, 2.0, False), ("p", "a", 3, 1.0, 1.0, False),
    ])  # fmt: skip
    lab = noise.labels(samples, "calibrated")
    assert lab["runtime_s"].item() == pytest.approx(1.0)
    assert noise.labels(samples, "median")["runtime_s"].item() == pytest.approx(1.0)
    assert proto.label(np.array([1.0, 2.0]), np.array([1.0, 2.0]), "calibrated", 1.0) == pytest.approx(1.0)


def test_timing_samples_table_and_schema_version(tmp_path) -> None:
    samples = samples_frame([("p", "a", 1, 1.0, 1.0, False)])
    path = tmp_path / "timing_samples.parquet"
    schema.write_table("timing_samples", samples, path)
    back = schema.read_table(path, "timing_samples")
    assert back.columns == schema.TABLES["timing_samples"].names
    assert schema.SCHEMA_VERSION >= 3
    assert "timing_samples" in schema.TABLE_NAMES
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    meta = dict(t.schema.metadata)
    meta[schema.META_VERSION] = b"2"
    pq.write_table(t.replace_schema_metadata(meta), tmp_path / "old.parquet")
    with pytest.raises(schema.SchemaError, match="schema version 2"):
        schema.read_table(tmp_path / "old.parquet", "timing_samples")


def test_fastest_windows_must_agree_or_more_rounds_follow() -> None:
    # "a" sees the machine's fast phase in one round of three only; the flag cannot tell (the
    # calibration says the machine was fast), so the disagreeing fastest windows ask for more.
    times = {"a": 1e-3, "b": 2e-3}
    seen: dict[str, int] = {}

    def measure(cand: dict) -> dict:
        sid = cand["schedule_id"]
        seen[sid] = seen.get(sid, 0) + 1
        f = 1.0 if sid == "b" or seen[sid] in (2, 5) else 1.3
        t = times[sid] * f
        return {"status": "ok", "error": "", "window_min_s": t, "window_median_s": t, "n_runs": 5,
                "calibration_s": 1e-4, "output_checksum": 0.0, "input_bytes": 4}  # fmt: skip

    p = proto.Protocol(rounds=3, max_extra_rounds=4, agree_rel=0.02)
    timing = ProgramTiming(candidates(times), measure, p, MACHINE)
    timing.run()
    meas, _ = timing.tables()
    assert seen == {"a": 5, "b": 3}  # a: until its 2nd fast window (round 5); b agreed at once
    assert dict(meas.select("schedule_id", "n_windows").iter_rows()) == {"a": 5, "b": 3}
    assert proto.disagree(np.array([1.0, 1.3, 1.3]), 0.02) and not proto.disagree(np.array([1.0, 1.01]), 0.02)
