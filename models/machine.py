"""What a cost model of several machines knows of a machine: a short feature vector.

Run times are a property of a (schedule, machine) pair. A model trained on several
machines' labels reads, beside a program's stage graph and its schedule features, the
machine its prediction is for, as the :data:`MACHINE_FEATURES` below, computed from the
``machines`` table (:mod:`featurize.schema`, schema version 4): the calibration kernel's
speed (the same fixed piece of work on every machine), the width of the vectors the
Halide target compiles for, and the cache sizes. Multi-task cost models such as TLP's
give each machine a head of its own; features instead put a machine never seen in
training somewhere sensible, and `perfgraph adapt` (:mod:`models.adapt`) then fits the
rest from a few local timings.

A fact the table does not hold (a dataset of schema version 3 recorded no caches) takes
the :data:`DEFAULTS` value, a typical x86 server core's, so that it reads as "nothing
known" rather than as an extreme.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import polars as pl

#: Reference values: a feature is the log2 of the fact over its reference, so 0 means
#: "like the reference" and each unit a factor of two.
REFERENCE = {"calibration_s": 2e-4, "vector_bits": 256, "l1d_kib": 32, "l2_kib": 512, "l3_kib": 32 * 1024}
#: Used where a machine's row has no value (not recorded).
DEFAULTS = {"l1d_kib": 32, "l2_kib": 512, "l3_kib": 32 * 1024}

#: The features, in order, and what each is (log2 of the machine's value over REFERENCE's).
MACHINE_FEATURES = {
    "speed": "log2(reference calibration time / this machine's): higher is faster on the calibration kernel",
    "vector_bits": "log2(vector register width of the Halide target / 256 bits): -1 SSE/NEON, 0 AVX2, 1 AVX-512",
    "l1d": "log2(one core's L1 data cache / 32 KiB)",
    "l2": "log2(one core's L2 / 512 KiB)",
    "l3": "log2(the L3 the OS reports / 32 MiB), capped at 4 (a VM may report its host's whole L3)",
}
MACHINE_DIM = len(MACHINE_FEATURES)


def _log2_ratio(value: Any, key: str) -> float:
    v = value if value is not None and value == value and value > 0 else DEFAULTS.get(key, REFERENCE[key])
    return math.log2(float(v) / REFERENCE[key])


def machine_vector(row: Mapping[str, Any]) -> np.ndarray:
    """The :data:`MACHINE_FEATURES` of one ``machines`` row, ``[MACHINE_DIM]`` float32.

    A row without a calibration time (never timed) reads as the reference's speed."""
    cal = row.get("calibration_s")
    speed = math.log2(REFERENCE["calibration_s"] / cal) if cal is not None and cal == cal and cal > 0 else 0.0
    return np.array(
        [
            speed,
            _log2_ratio(row.get("vector_bits"), "vector_bits"),
            _log2_ratio(row.get("l1d_kib"), "l1d_kib"),
            _log2_ratio(row.get("l2_kib"), "l2_kib"),
            min(4.0, _log2_ratio(row.get("l3_kib"), "l3_kib")),
        ],
        dtype=np.float32,
    )


def machine_vectors(machines: pl.DataFrame) -> dict[str, np.ndarray]:
    """``machine_id -> machine_vector`` for every row of a ``machines`` table."""
    return {row["machine_id"]: machine_vector(row) for row in machines.iter_rows(named=True)}


def describe(row: Mapping[str, Any]) -> str:
    """One line naming a machine, for logs and reports: CPU, vector width, calibration time."""
    cal = row.get("calibration_s")
    cal_text = f", calibration {cal * 1e3:.3f} ms" if cal else ""
    return f"{row.get('machine_id')} ({row.get('cpu_model')}, {row.get('vector_bits')}-bit vectors{cal_text})"


def host_machine_row(timing: dict, calibration_dir) -> dict:
    """This machine's ``machines`` row as a timing job here would record it (the timing
    protocol's threads and pinning), its calibration speed measured now: ten windows of the
    calibration kernel, a few seconds (the kernel is built once per machine)."""
    from featurize.build import machines_table
    from pipelines.bench import machine_info, pinned_for_timing, time_window_in_child
    from pipelines.calibration import ensure_kernel
    from pipelines.harness import LoadedPipeline
    from pipelines.protocol import Protocol

    protocol = Protocol.from_config(timing)
    calib = ensure_kernel(calibration_dir)
    with pinned_for_timing(protocol) as threads:
        machine = machine_info(threads)
        windows = [time_window_in_child(lambda: LoadedPipeline(str(calib)), calib, protocol) for _ in range(10)]
    times = np.array([w.get("calibration_s", np.nan) for w in windows], dtype=float)
    samples = pl.DataFrame({"machine_id": machine["machine_id"], "program_id": "calibration", "timing_pass": 1,
                            "calibration_s": times})  # fmt: skip
    return machines_table({machine["machine_id"]: machine}, samples).row(0, named=True)


def prediction_machine(trained, host_row: dict | None) -> tuple[str, list[dict]]:
    """The machine a trained model's predictions are for, and the ``machines`` rows that
    describe it: for a model that reads machine features, this host (``host_row``; its own
    recorded row if the model was trained or adapted here); for any other, the machine of
    its labels, the only one it knows."""
    rows = {r["machine_id"]: r for r in trained.machine_rows}
    if trained.machine_aware and host_row is not None:
        return host_row["machine_id"], [rows.get(host_row["machine_id"], host_row)]
    return trained.machine_id, [r for r in rows.values() if r["machine_id"] == trained.machine_id]
