"""Time the compiled candidates of a program, one at a time, each in its own child.

The Snakemake rule that calls this holds every core of the machine (and the
``bench_slot`` resource), so nothing else runs while it times. Each candidate
runs in a forked child process: a segfault or a hang kills the child, not the
job, and becomes a measurement row with status ``crash`` or ``timeout``.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import hashlib
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import polars as pl

from featurize import schema
from pipelines.harness import LoadedPipeline, PipelineRunError, time_pipeline

_CTX = mp.get_context("fork")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(timing_threads: int) -> dict:
    """The machine a measurement was taken on; ``machine_id`` hashes what matters for timing."""
    import halide as hl

    versions = {"python": platform.python_version()}
    for pkg in ("halide", "numpy", "polars", "pyarrow", "torch", "torch_geometric", "xgboost", "snakemake"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    info = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "n_cores": os.cpu_count() or 1,
        "timing_threads": timing_threads,
        "halide_target": str(hl.get_host_target()),
        "versions": json.dumps(versions, sort_keys=True),
    }
    key = json.dumps({k: info[k] for k in ("hostname", "cpu_model", "n_cores", "timing_threads", "halide_target")})
    info["machine_id"] = hashlib.sha256(key.encode()).hexdigest()[:12]
    return info


def _child(conn, measure, err_path: str) -> None:
    # A crash here is a result, not a bug of ours: no Python traceback dump for it.
    faulthandler.disable()
    # Anything the library prints on stderr is kept for the row.
    fd = os.open(err_path, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 2)
    try:
        conn.send(("ok", measure()))
    except PipelineRunError as exc:
        conn.send(("runtime_error", str(exc)))
    except BaseException as exc:  # HalideError, TVMError, MemoryError, ...
        lines = str(exc).strip().splitlines()  # TVM's errors end with the message after a traceback
        conn.send(("runtime_error", f"{type(exc).__name__}: {lines[-1] if lines else ''}"))
    finally:
        conn.close()
        os._exit(0)


def measure_in_child(measure, timeout_s: float) -> dict:
    """Run ``measure()`` in a forked child; a partial measurement row (status, error, stats).

    ``measure`` returns the timing statistics; a segfault becomes ``crash``, no
    answer in ``timeout_s`` becomes ``timeout``, an exception ``runtime_error``.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".err") as err:
        parent, child = _CTX.Pipe()
        p = _CTX.Process(target=_child, args=(child, measure, err.name))
        p.start()
        child.close()
        try:
            if not parent.poll(timeout_s):
                p.kill()
                return {"status": "timeout", "error": f"no result within {timeout_s} s"}
            status, payload = parent.recv()
        except EOFError:
            p.join(5)
            code = p.exitcode
            name = signal.Signals(-code).name if code is not None and code < 0 else f"exit {code}"
            detail = err.read().strip()[-500:]
            return {"status": "crash", "error": f"killed by {name}" + (f": {detail}" if detail else "")}
        finally:
            if p.is_alive():
                p.kill()
            p.join()
            parent.close()
        if status == "ok":
            return {"status": "ok", "error": "", **payload}
        detail = err.read().strip()[-1000:]
        return {"status": status, "error": payload + (f": {detail}" if detail else "")}


def time_library(lib_path: str | os.PathLike, timing: dict, timeout_s: float) -> dict:
    """Time one compiled Halide pipeline in a child; a partial measurement row."""
    return measure_in_child(lambda: time_pipeline(LoadedPipeline(str(lib_path)), **timing), timeout_s)


def bench_candidates(
    candidates: pl.DataFrame,
    base_dir: str | os.PathLike,
    timing: dict,
    timeout_s: float,
    machine: dict,
    timing_pass: int = 1,
    time_one=None,
) -> pl.DataFrame:
    """Measurement rows for every candidate (failed compiles become rows too).

    ``time_one(candidate_row)`` times one compiled candidate (default: a Halide
    library under ``base_dir``); the TVM side passes its own.
    """
    if time_one is None:

        def time_one(cand: dict) -> dict:
            return time_library(Path(base_dir) / cand["library"], timing, timeout_s)

    rows = []
    for cand in candidates.iter_rows(named=True):
        row = {
            "program_id": cand["program_id"],
            "schedule_id": cand["schedule_id"],
            "machine_id": machine["machine_id"],
            "timing_pass": timing_pass,
            "compile_time_s": cand["compile_time_s"],
            "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if cand["compile_status"] != "ok":
            row.update(status=cand["compile_status"], error=cand["compile_error"])
        else:
            row.update(time_one(cand))
        rows.append(row)
        print(
            f"{row['program_id']} {row['schedule_id']} pass {timing_pass}: {row['status']}"
            + (f" {row['runtime_median_s'] * 1e3:.3f} ms" if row["status"] == "ok" else f" ({row['error'][:200]})"),
            file=sys.stderr,
        )
    return pl.from_arrow(schema.from_rows("measurements", rows))


def bench_program(candidates_path, out_path, machine_path, timing: dict, timeout_s: float, threads: int) -> None:
    """Time every candidate of one program (pass 1); write measurements and the machine."""
    os.environ["HL_NUM_THREADS"] = str(threads)
    candidates = schema.read_table(candidates_path, "candidates")
    machine = machine_info(threads)
    frame = bench_candidates(candidates, Path(candidates_path).parent, timing, timeout_s, machine)
    schema.write_table("measurements", frame, out_path)
    schema.write_json(machine, machine_path)


def selected_for_retime(schedule_id: str, fraction: float, salt: str = "noise") -> bool:
    """Deterministic, hash-based choice of the schedules re-timed for the noise floor."""
    h = int(hashlib.sha256(f"{salt}:{schedule_id}".encode()).hexdigest()[:8], 16)
    return h < fraction * 0x100000000


def retime(candidates_paths, out_path, timing: dict, timeout_s: float, fraction: float, threads: int) -> None:
    """The noise-floor pass: re-time a fixed fraction of the schedules that timed fine."""
    os.environ["HL_NUM_THREADS"] = str(threads)
    machine = machine_info(threads)
    frames = []
    for path in candidates_paths:
        cands = schema.read_table(path, "candidates").filter(
            (pl.col("compile_status") == "ok")
            & pl.col("schedule_id").map_elements(lambda s: selected_for_retime(s, fraction), return_dtype=pl.Boolean)
        )
        frames.append(bench_candidates(cands, Path(path).parent, timing, timeout_s, machine, timing_pass=2))
    empty = pl.from_arrow(schema.from_rows("measurements", []))
    schema.write_table("measurements", pl.concat([empty, *frames]), out_path)
