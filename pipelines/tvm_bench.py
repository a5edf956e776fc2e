"""Time compiled TVM candidates, one at a time, each in a forked child process.

The discipline is the Halide side's (:mod:`pipelines.bench`): the bench job holds
every core and the ``bench_slot`` resource; each candidate's library is loaded and
run in a child forked from this process (which has imported TVM once, so a child
costs a fork, not a 3-30 s import); a segfault or a hang kills the child, not the
job, and becomes a row with status ``crash`` or ``timeout``. Inside the child the
timing loop is :func:`pipelines.harness.time_pipeline` (warm-up, samples of several
runs, repeat until the 95% confidence half-width of the mean is within the target
precision, or a cap), so both compilers' run times mean the same thing.

Inputs are seeded uniform noise in [-1, 1) from the argument shapes in
``program.json``; the output is compared with the output of the *unscheduled*
workload (``reference.npy``, written when sampling): a schedule that computes a
different result is a ``runtime_error`` row ("wrong result"), not a timing.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np
import polars as pl

from featurize import schema
from pipelines import bench as halide_bench
from pipelines.bench import measure_in_child
from pipelines.harness import time_pipeline

INPUT_SEED = 20240601
#: Relative tolerance of the result check: max |out - ref| <= RTOL * (max |ref| + 1).
RTOL = 1e-3


def make_inputs(args: list[dict], seed: int = INPUT_SEED) -> list[np.ndarray]:
    """Seeded inputs (and zeroed outputs) for ``args`` = ``[{"shape", "dtype", "output"}]``."""
    rng = np.random.default_rng(seed)
    out = []
    for a in args:
        if a["output"]:
            out.append(np.zeros(a["shape"], dtype=a["dtype"]))
        else:
            out.append(rng.uniform(-1.0, 1.0, size=a["shape"]).astype(a["dtype"]))
    return out


class LoadedTVMProgram:
    """A compiled candidate with its argument tensors: ``run()``, ``output()``, ``checksum()``
    (the interface :func:`pipelines.harness.time_pipeline` times)."""

    def __init__(self, lib_path: str | os.PathLike, args: list[dict], seed: int = INPUT_SEED) -> None:
        import tvm

        self.module = tvm.runtime.load_module(str(lib_path))
        self.func = self.module[self.module.entry_name or "main"]
        dev = tvm.cpu(0)
        self.args = [tvm.runtime.tensor(a, dev) for a in make_inputs(args, seed)]
        self.out_index = [i for i, a in enumerate(args) if a["output"]]

    def run(self) -> None:
        self.func(*self.args)

    def output(self) -> np.ndarray:
        return self.args[self.out_index[-1]].numpy()

    def checksum(self) -> float:
        return float(sum(np.sum(self.args[i].numpy(), dtype=np.float64) for i in self.out_index))


def check_result(out: np.ndarray, ref: np.ndarray) -> str | None:
    """None if ``out`` matches ``ref``, else the reason."""
    if out.shape != ref.shape:
        return f"wrong result: shape {out.shape}, expected {ref.shape}"
    if not np.all(np.isfinite(out) == np.isfinite(ref)):
        return "wrong result: non-finite values where the reference has none (or vice versa)"
    fin = np.isfinite(ref)
    err = float(np.max(np.abs(out[fin].astype(np.float64) - ref[fin]), initial=0.0))
    tol = RTOL * (float(np.max(np.abs(ref[fin]), initial=0.0)) + 1.0)
    return None if err <= tol else f"wrong result: max abs error {err:.3g} > tolerance {tol:.3g}"


class WrongResultError(RuntimeError):
    """The scheduled program's output differs from the unscheduled program's."""


def time_library(
    lib_path: str | os.PathLike,
    args: list[dict],
    timing: dict,
    timeout_s: float,
    threads: int,
    ref_path: str | os.PathLike | None = None,
) -> dict:
    """Time one library in a forked child; a partial measurement row (status, error, stats)."""

    def measure() -> dict:
        os.environ["TVM_NUM_THREADS"] = str(threads)
        prog = LoadedTVMProgram(lib_path, args)
        if ref_path:
            prog.run()
            why = check_result(prog.output(), np.load(ref_path))
            if why:
                raise WrongResultError(why)
        return time_pipeline(prog, **timing)

    return measure_in_child(measure, timeout_s)


def machine_info(threads: int) -> dict:
    """The machine (same ``machine_id`` as the Halide side's), with TVM's versions and target."""
    from pipelines.bench import machine_info as halide_machine_info

    info = halide_machine_info(threads)
    versions = json.loads(info["versions"])
    for pkg in ("apache-tvm", "apache-tvm-ffi", "xgboost-cpu", "xgboost"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    versions["tvm_target"] = json.dumps({"kind": "llvm", "num-cores": threads})
    info["versions"] = json.dumps(versions, sort_keys=True)
    return info


def bench_candidates(
    candidates: pl.DataFrame,
    work_dir: str | os.PathLike,
    timing: dict,
    timeout_s: float,
    machine: dict,
    threads: int,
    timing_pass: int = 1,
) -> pl.DataFrame:
    """Measurement rows for every candidate of one program (failed compiles become rows too)."""
    work_dir = Path(work_dir)
    prog = json.loads((work_dir / "program.json").read_text())
    ref = work_dir / "reference.npy"

    def time_one(cand: dict) -> dict:
        return time_library(
            work_dir / cand["library"], prog["args"], timing, timeout_s, threads, ref if ref.exists() else None
        )

    return halide_bench.bench_candidates(
        candidates, work_dir, timing, timeout_s, machine, timing_pass=timing_pass, time_one=time_one
    )


def bench_program(work_dir, out_path, machine_path, timing: dict, timeout_s: float, threads: int) -> None:
    """Time every candidate of one program (pass 1); write measurements and the machine."""
    os.environ["TVM_NUM_THREADS"] = str(threads)
    import tvm  # noqa: F401  (imported once here; every forked child inherits it)

    cands = schema.read_table(Path(work_dir) / "candidates.parquet", "tvm_candidates")
    machine = machine_info(threads)
    frame = bench_candidates(cands, work_dir, timing, timeout_s, machine, threads)
    schema.write_table("measurements", frame, out_path)
    schema.write_json(machine, machine_path)


def retime(work_dirs, out_path, timing: dict, timeout_s: float, fraction: float, threads: int) -> None:
    """The noise-floor pass: re-time a fixed fraction of the schedules (timing pass 2)."""
    from pipelines.bench import selected_for_retime

    os.environ["TVM_NUM_THREADS"] = str(threads)
    import tvm  # noqa: F401

    machine = machine_info(threads)
    frames = [pl.from_arrow(schema.from_rows("measurements", []))]
    for wd in work_dirs:
        cands = schema.read_table(Path(wd) / "candidates.parquet", "tvm_candidates")
        keep = [selected_for_retime(s, fraction) for s in cands["schedule_id"].to_list()]
        cands = (
            cands.with_columns(pl.Series("_retime", keep, dtype=pl.Boolean))
            .filter(pl.col("_retime") & (pl.col("compile_status") == "ok"))
            .drop("_retime")
        )
        frames.append(bench_candidates(cands, wd, timing, timeout_s, machine, threads, timing_pass=2))
    schema.write_table("measurements", pl.concat(frames), out_path)
