"""Time compiled TVM candidates with the Halide side's protocol (:mod:`pipelines.bench`).

Only loading a candidate is TVM's own (:func:`tvm_loader`); the rounds, the
calibration kernel, the windows and the labels are shared, so both compilers' run
times mean the same thing. Every window runs in a child forked from this process
(which has imported TVM once, so a child costs a fork, not a 3-30 s import); a
segfault or a hang kills the child, not the job, and becomes a row with status
``crash`` or ``timeout``.

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

from featurize import schema
from pipelines.bench import measure_in_child, prepare_timing, retime_programs, time_program
from pipelines.calibration import ensure_kernel
from pipelines.harness import time_window
from pipelines.protocol import Protocol

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
    (the interface :func:`pipelines.harness.time_window` times)."""

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


def tvm_loader(lib_path: str | os.PathLike, args: list[dict], threads: int, ref_path: str | os.PathLike | None = None):
    """``load()`` for a compiled TVM candidate (see :func:`pipelines.bench.time_window_in_child`):
    load it, run it once and check its output against the unscheduled workload's."""

    def load() -> LoadedTVMProgram:
        os.environ["TVM_NUM_THREADS"] = str(threads)
        prog = LoadedTVMProgram(lib_path, args)
        if ref_path:
            prog.run()
            why = check_result(prog.output(), np.load(ref_path))
            if why:
                raise WrongResultError(why)
        return prog

    return load


def time_once(lib_path, args: list[dict], window: dict, timeout_s: float, threads: int, ref_path=None) -> dict:
    """One timing window of one library in a forked child (no rounds, no calibration): the quick
    look MetaSchedule's evolutionary search needs between its generations."""
    load = tvm_loader(lib_path, args, threads, ref_path)
    return measure_in_child(lambda: time_window(load(), **window), timeout_s)


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


def program_loader(work_dir: str | os.PathLike, threads: int):
    """``load_for(candidate_row)`` for the candidates under ``work_dir``."""
    work_dir = Path(work_dir)
    prog = json.loads((work_dir / "program.json").read_text())
    ref = work_dir / "reference.npy"
    return lambda cand: tvm_loader(work_dir / cand["library"], prog["args"], threads, ref if ref.exists() else None)


def _prepare(protocol: Protocol, calibration_dir) -> tuple[int, Path]:
    """Threads and pinning as the Halide side (the calibration kernel is Halide's), then TVM."""
    calib = ensure_kernel(calibration_dir)
    threads = prepare_timing(protocol)
    os.environ["TVM_NUM_THREADS"] = str(threads)
    import tvm  # noqa: F401  (imported once here; every forked child inherits it)

    return threads, calib


def bench_program(work_dir, out_path, samples_path, machine_path, protocol: Protocol, calibration_dir) -> None:
    """Time every candidate of one program (pass 1); write measurements, samples and the machine."""
    threads, calib = _prepare(protocol, calibration_dir)
    cands = schema.read_table(Path(work_dir) / "candidates.parquet", "tvm_candidates")
    machine = machine_info(threads)
    meas, samples = time_program(cands, program_loader(work_dir, threads), protocol, calib, machine)
    schema.write_table("timing_samples", samples, samples_path)
    schema.write_table("measurements", meas, out_path)
    schema.write_json(machine, machine_path)


def retime(work_dirs, out_path, samples_path, protocol: Protocol, fraction: float, calibration_dir) -> None:
    """The drift pass of a TVM dataset (:func:`pipelines.bench.retime_programs`)."""
    threads, calib = _prepare(protocol, calibration_dir)
    programs = (
        (schema.read_table(Path(wd) / "candidates.parquet", "tvm_candidates"), program_loader(wd, threads))
        for wd in work_dirs
    )
    retime_programs(programs, out_path, samples_path, protocol, fraction, calib, machine_info(threads))
