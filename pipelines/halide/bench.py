"""The Halide side's timing adapter: compiled Halide libraries timed by the shared protocol
(:mod:`pipelines.bench`), pass 1 per program and the drift pass over all of them."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from featurize import schema
from featurize.schema import UserError
from pipelines.bench import machine_info, prepare_timing, retime_programs, time_program
from pipelines.calibration import ensure_kernel
from pipelines.harness import LoadedPipeline
from pipelines.protocol import Protocol


def halide_loader(lib_path: str | os.PathLike):
    """``load()`` for a compiled Halide candidate."""
    return lambda: LoadedPipeline(str(lib_path))


def bench_program(candidates_paths, out_path, samples_path, machine_path, protocol: Protocol, calibration_dir) -> None:
    """Time every candidate of one program (pass 1) in the same interleaved rounds: the
    candidates tables of its work directory (the compile stage's, and refine's when it ran);
    write measurements, samples and the machine."""
    paths = [Path(p) for p in ([candidates_paths] if isinstance(candidates_paths, (str, os.PathLike)) else candidates_paths)]
    if len({p.parent for p in paths}) != 1:
        raise UserError(f"{', '.join(map(str, paths))}: the candidates tables of one program share its work directory")
    candidates = pl.concat([schema.read_table(p, "candidates") for p in paths], how="vertical")
    calib = ensure_kernel(calibration_dir)  # compiled before pinning: it may use every core
    machine = machine_info(prepare_timing(protocol))
    base = paths[0].parent
    meas, samples = time_program(candidates, lambda c: halide_loader(base / c["library"]), protocol, calib, machine)
    schema.write_table("timing_samples", samples, samples_path)
    schema.write_table("measurements", meas, out_path)
    schema.write_json(machine, machine_path)


def retime(candidates_paths, out_path, samples_path, protocol: Protocol, fraction: float, calibration_dir) -> None:
    """The drift pass of a Halide dataset (:func:`retime_programs`)."""
    calib = ensure_kernel(calibration_dir)
    machine = machine_info(prepare_timing(protocol))
    programs = (
        (schema.read_table(path, "candidates"), lambda c, b=Path(path).parent: halide_loader(b / c["library"]))
        for path in candidates_paths
    )
    retime_programs(programs, out_path, samples_path, protocol, fraction, calib, machine)
