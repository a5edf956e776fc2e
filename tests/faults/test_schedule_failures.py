"""A schedule that fails to compile, crashes, hangs or errors becomes a row with a status."""

from __future__ import annotations

import subprocess
from pathlib import Path

import halide as hl
import polars as pl
import pytest

from featurize import schema
from pipelines.halide import sample as compile_mod
from pipelines.bench import machine_info, time_program
from pipelines.halide.bench import halide_loader
from pipelines.calibration import ensure_kernel
from pipelines.protocol import Protocol
from pipelines.halide.sample import compile_pipeline, compile_program
from featurize.schema import write_json

FAKE_LIB = r"""
#include <stdint.h>
#include <stddef.h>
struct meta { int32_t version, num_arguments; const void *arguments; const char *target, *name; };
static const struct meta m = {1, 0, NULL, "host", "pg_pipeline"};
const struct meta *pg_pipeline_metadata(void) { return &m; }
int pg_pipeline_argv(void **args) { BODY }
"""


def fake_library(tmp_path: Path, name: str, body: str) -> str:
    src = tmp_path / f"{name}.c"
    src.write_text(FAKE_LIB.replace("BODY", body))
    lib = tmp_path / f"lib/{name}.so"
    lib.parent.mkdir(exist_ok=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-O0", "-o", str(lib), str(src)], check=True)
    return f"lib/{name}.so"


def runtime_error_library(tmp_path: Path) -> str:
    """A real Halide pipeline whose output is bounded smaller than its estimates."""
    x = hl.Var("x")
    f = hl.Func("bounded")
    f[x] = hl.f32(x)
    f.bound(x, 0, 10)
    f.set_estimates([(0, 100)])
    compile_pipeline(hl.Pipeline(f), tmp_path / "lib/runtime_error.so")
    return "lib/runtime_error.so"


def candidate(sid: str, library: str, status: str = "ok", error: str = "") -> dict:
    return {
        "program_id": "p", "schedule_id": sid, "sampler": "test", "sampler_params": "{}",
        "autoscheduler": "none", "has_featurization": False, "schedule_text": sid,
        "sample_time_s": 0.0, "n_duplicates": 0, "compile_status": status, "compile_error": error,
        "compile_time_s": 0.1, "library": library, "featurization": b"",
    }  # fmt: skip


def test_each_failure_is_one_row_with_its_status(tmp_path, fast_protocol) -> None:
    cands = pl.from_arrow(
        schema.from_rows(
            "candidates",
            [
                candidate("segfault", fake_library(tmp_path, "segv", "*(volatile int *)0 = 1; return 0;")),
                candidate("hang", fake_library(tmp_path, "hang", "for (;;) {} return 0;")),
                candidate("rterror", runtime_error_library(tmp_path)),
                candidate("noncompiling", "lib/none.so", "compile_error", "Error: bad schedule"),
                candidate("fine", fake_library(tmp_path, "fine", "return 0;")),
            ],
        )
    )
    protocol = Protocol(**{**fast_protocol.as_dict(), "timeout_s": 2.0})
    calib = ensure_kernel(tmp_path / "calibration")
    rows, samples = time_program(cands, lambda c: halide_loader(tmp_path / c["library"]), protocol, calib, machine_info(1))
    status = dict(rows.select("schedule_id", "status").iter_rows())
    assert status == {
        "segfault": "crash",
        "hang": "timeout",
        "rterror": "runtime_error",
        "noncompiling": "compile_error",
        "fine": "ok",
    }
    errors = dict(rows.select("schedule_id", "error").iter_rows())
    assert "SIGSEGV" in errors["segfault"]
    assert "bounded" in errors["rterror"]  # Halide's own message names the buffer
    assert errors["noncompiling"] == "Error: bad schedule"
    assert rows.filter(pl.col("status") == "ok")["runtime_s"].item() > 0
    # Each failure was timed once, then left out of the later rounds.
    windows = dict(samples.group_by("schedule_id").len().iter_rows())
    assert windows["segfault"] == windows["hang"] == windows["rterror"] == 1
    assert "noncompiling" not in windows and windows["fine"] >= protocol.rounds


def test_a_compile_error_becomes_a_candidate_row(tmp_path, small_sampling, monkeypatch) -> None:
    def broken(pipeline, lib_path, target=None, runtime=None):
        raise RuntimeError("Error: LLVM could not compile this schedule")

    monkeypatch.setattr(compile_mod, "compile_pipeline", broken)  # inherited by the forked children
    entry = {"program_id": "p", "origin": "zoo", "spec": __import__("pipelines.halide.zoo", fromlist=["ZOO"]).ZOO[
        "separable_blur"][0]}  # fmt: skip
    write_json(entry, tmp_path / "entry.json")
    cands = compile_program(tmp_path / "entry.json", tmp_path / "work", small_sampling, 2)
    assert cands.height == 2
    assert set(cands["compile_status"]) == {"compile_error"}
    assert "LLVM could not compile" in cands["compile_error"][0]
    # The table on disk is complete, and timing turns the rows into measurements.
    on_disk = schema.read_table(tmp_path / "work/candidates.parquet", "candidates")
    assert on_disk.height == 2


@pytest.mark.parametrize("dropout", [1])
def test_sampler_delivers_distinct_schedules(tmp_path, small_sampling, dropout) -> None:
    from pipelines.halide.zoo import ZOO

    small_sampling["samplers"]["adams2019_dropout"].update(count=4, random_dropout=dropout, max_attempts=20)
    entry = {"program_id": "p", "origin": "zoo", "spec": ZOO["unsharp_mask"][0]}
    write_json(entry, tmp_path / "entry.json")
    cands = compile_program(tmp_path / "entry.json", tmp_path / "work", small_sampling, 2)
    assert cands.height == 4
    assert cands["schedule_id"].n_unique() == 4
    assert set(cands["compile_status"]) == {"ok"}
    assert all((tmp_path / "work" / lib).exists() for lib in cands["library"])
