"""The timing protocol on real compiled pipelines: input sizing, isolation, the calibration kernel."""

from __future__ import annotations

import os
import signal

import halide as hl
import polars as pl
import pytest

from featurize import schema
from pipelines.bench import ProgramTiming, machine_info, time_program, time_window_in_child
from pipelines.halide.bench import halide_loader
from pipelines.calibration import ensure_kernel, kernel_path
from pipelines.halide.sample import compile_pipeline
from pipelines.harness import LoadedPipeline, time_window


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    return ensure_kernel(tmp_path_factory.mktemp("calibration"))


def tiles_past_the_estimate(lib_path) -> None:
    """A valid schedule whose tiles read past the input's estimate: ``g`` is computed in
    tiles of 8 rounded up, so 10 output values read the input over [0, 16)."""
    inp = hl.ImageParam(hl.Float(32), 1, "inp")
    x, xo, xi = hl.Var("x"), hl.Var("xo"), hl.Var("xi")
    g, out = hl.Func("g"), hl.Func("out")
    g[x] = inp[x] * 2.0
    out[x] = g[x] + 1.0
    inp.set_estimates([(0, 10)])
    out.set_estimates([(0, 10)])
    g.compute_root().split(x, xo, xi, 8, hl.TailStrategy.RoundUp)
    compile_pipeline(hl.Pipeline(out), lib_path)


def test_inputs_are_sized_by_the_bounds_query_not_the_estimate(tmp_path) -> None:
    lib = tmp_path / "tiles.so"
    tiles_past_the_estimate(lib)
    pipe = LoadedPipeline(str(lib))
    assert pipe.input_bytes == 16 * 4  # the estimate says 10 floats; the tiles read 16
    pipe.run()
    w = time_window(pipe, window_s=0.001)
    assert w["window_min_s"] > 0 and w["n_runs"] >= 3
    assert pipe.outputs[0].shape == (10,)


def test_tiles_past_the_estimate_are_timed_not_failed(tmp_path, calibration, fast_protocol) -> None:
    lib = tmp_path / "lib/tiles.so"
    tiles_past_the_estimate(lib)
    from tests.pipelines.test_protocol import candidates

    cands = candidates({"tiles": 0.0})
    meas, samples = time_program(cands, lambda c: halide_loader(lib), fast_protocol, calibration, machine_info(1))
    row = meas.row(0, named=True)
    assert row["status"] == "ok", row["error"]
    assert row["runtime_s"] > 0 and row["input_bytes"] == 64
    assert samples.height >= fast_protocol.rounds


class Crasher:
    def run(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    def checksum(self) -> float:
        return 0.0


def test_a_crash_in_round_3_is_a_status_row(tmp_path, calibration, fast_protocol) -> None:
    lib = tmp_path / "lib/fine.so"
    tiles_past_the_estimate(lib)
    from tests.pipelines.test_protocol import candidates

    loads: dict[str, int] = {}

    def load_for(cand: dict):
        # Counted in the parent: the third window of "flaky" loads a candidate that segfaults.
        sid = cand["schedule_id"]
        loads[sid] = loads.get(sid, 0) + 1
        if sid == "flaky" and loads[sid] == 3:
            return Crasher
        return halide_loader(lib)

    protocol = fast_protocol.__class__(**{**fast_protocol.as_dict(), "rounds": 4, "slow_factor": 100.0})
    meas, samples = time_program(candidates({"flaky": 0.0, "steady": 0.0}), load_for, protocol, calibration,
                                 machine_info(1))  # fmt: skip
    row = {r["schedule_id"]: r for r in meas.iter_rows(named=True)}
    assert row["flaky"]["status"] == "crash"
    assert row["flaky"]["error"].startswith("round 3: killed by SIGSEGV")
    assert row["steady"]["status"] == "ok" and row["steady"]["n_good_windows"] >= 4
    flaky = samples.filter(pl.col("schedule_id") == "flaky").sort("round")
    assert flaky["status"].to_list() == ["ok", "ok", "crash"]  # raw rounds kept, none after the crash
    assert all(t > 0 for t in flaky["window_min_s"].to_list()[:2]) and flaky["window_min_s"][2] is None


def test_calibration_window_runs_beside_every_candidate_window(tmp_path, calibration, fast_protocol) -> None:
    lib = tmp_path / "fine.so"
    tiles_past_the_estimate(lib)
    r = time_window_in_child(halide_loader(lib), calibration, fast_protocol)
    assert r["status"] == "ok"
    assert r["calibration_s"] > 0 and r["window_min_s"] > 0 and r["input_bytes"] == 64
    # Built once per machine: the same path, not rebuilt.
    assert kernel_path(calibration.parent) == calibration
    mtime = calibration.stat().st_mtime_ns
    assert ensure_kernel(calibration.parent) == calibration and calibration.stat().st_mtime_ns == mtime


def test_machine_records_threads_and_pinning() -> None:
    m = machine_info(2)
    assert m["timing_threads"] == 2
    assert m["pinning"]  # e.g. "0-1": every core, not pinned
    # Every machines column but the calibration kernel's speed, which featurize takes from the samples.
    names = [k for k in schema.TABLES["machines"].names if k != "calibration_s"]
    assert set(names) <= set(m)
    assert m["vector_bits"] in (128, 256, 512) and m["isa"]
    row = schema.from_rows("machines", [{k: m[k] for k in names} | {"calibration_s": 1.7e-4}])
    assert row.num_rows == 1
