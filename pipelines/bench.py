"""Time the compiled candidates of a program with the protocol of :mod:`pipelines.protocol`.

The Snakemake rule that calls this holds every core of the machine (and the
``bench_slot`` resource), so nothing else runs while it times, and nothing polls it.
Every window (one candidate in one round) runs in a forked child process: a
segfault or a hang kills the child, not the job, and becomes a measurement row
with status ``crash`` or ``timeout`` (and a ``timing_samples`` row for that
window); the candidate is not timed in later rounds.
"""

from __future__ import annotations

import contextlib
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
import time
from importlib import metadata
from pathlib import Path

import polars as pl

from featurize import schema
import numpy as np

from pipelines.calibration import shutdown_thread_pool
from pipelines.harness import LoadedPipeline, PipelineRunError, time_window
from pipelines.protocol import Protocol, fast_calibration, flag_slow, needs_more, round_orders
from pipelines.protocol import label as protocol_label

_CTX = mp.get_context("fork")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(packages) -> dict[str, str]:
    """Python's version and each installed package's (those not installed are left out)."""
    versions = {"python": platform.python_version()}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return versions


def cpu_affinity() -> str:
    """The cores the timing process may run on, e.g. ``"0-1"`` (all of a 2-core machine: no pinning).

    Timing deliberately uses every core with no pinning: the schedules are made for the
    machine's parallelism, and Halide's worker threads cannot be pinned from outside."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cores:
        return ""
    if cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}" if len(cores) > 1 else str(cores[0])
    return ",".join(map(str, cores))


#: The instruction-set extensions that change the code Halide or LLVM emits, in the order of
#: /proc/cpuinfo's flag names (``machines.isa`` keeps the ones a CPU has).
ISA_FLAGS = (
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    "neon", "asimd", "sve", "sve2",
)


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo names them (``flags`` on x86, ``Features`` on Arm)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_of_target(halide_target: str) -> str:
    """The :data:`ISA_FLAGS` a Halide target string implies (for machines whose /proc/cpuinfo
    was not recorded): its own features, under /proc/cpuinfo's names."""
    features = set(halide_target.split("-"))
    features |= {"sse4_1" for f in features if f == "sse41"} | {"avx512f" for f in features if f == "avx512"}
    return ",".join(f for f in ISA_FLAGS if f in features)


def vector_bits(halide_target: str) -> int:
    """The widest vector register the Halide target compiles for: 512 (AVX-512), 256 (AVX/AVX2),
    128 (SSE, NEON); SVE's width is the machine's, 128 until Halide's target says otherwise."""
    features = set(halide_target.split("-"))
    if "avx512" in features:
        return 512
    if features & {"avx", "avx2"}:
        return 256
    return 128


def cache_kib(cpu: int = 0) -> dict[str, int | None]:
    """Sizes of the caches cpu ``cpu`` sees, in KiB, from sysfs: ``l1d_kib`` and ``l2_kib`` (one
    core's, on the machines seen so far) and ``l3_kib`` (as the OS reports it: a VM may show its
    host's whole L3). ``None`` where sysfs does not say."""
    sizes: dict[str, int | None] = {"l1d_kib": None, "l2_kib": None, "l3_kib": None}
    for index in sorted(Path(f"/sys/devices/system/cpu/cpu{cpu}/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        key = {1: "l1d_kib", 2: "l2_kib", 3: "l3_kib"}.get(level)
        if key is None or (level == 1 and kind != "Data"):
            continue
        scale = {"K": 1, "M": 1024, "G": 1024 * 1024}.get(size[-1:], None)
        sizes[key] = int(size[:-1]) * scale if scale else int(size) // 1024
    return sizes


def machine_info(timing_threads: int) -> dict:
    """The machine a measurement was taken on; ``machine_id`` hashes what matters for timing.

    Besides the identity, the facts a model of several machines reads (``models.machine``): the
    ISA extensions, the target's vector width and the cache sizes. The calibration kernel's speed
    is added from the timing samples when the dataset is built (:func:`featurize.build`)."""
    import halide as hl

    versions = package_versions(("halide", "numpy", "polars", "pyarrow", "torch", "torch_geometric", "xgboost", "snakemake"))
    info = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "n_cores": os.cpu_count() or 1,
        "timing_threads": timing_threads,
        "pinning": cpu_affinity(),
        "halide_target": str(hl.get_host_target()),
        "versions": json.dumps(versions, sort_keys=True),
    }
    flags = cpu_flags()
    info["isa"] = ",".join(f for f in ISA_FLAGS if f in flags)
    info["vector_bits"] = vector_bits(info["halide_target"])
    info.update(cache_kib())
    key = json.dumps({k: info[k] for k in ("hostname", "cpu_model", "n_cores", "timing_threads", "pinning", "halide_target")})
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


def time_window_in_child(load, calibration_lib: str | os.PathLike, protocol: Protocol) -> dict:
    """One protocol window in a forked child: load the candidate (``load()`` returns an object
    with ``run()`` and ``checksum()``), time the calibration kernel, then the candidate.

    Returns a partial sample row: status and error, or the window's figures with the
    calibration time measured right before it."""

    def measure() -> dict:
        target = load()
        cal = LoadedPipeline(str(calibration_lib))
        c = time_window(cal, window_s=protocol.calibration_s, min_runs=3, min_sample_s=protocol.min_sample_s)
        shutdown_thread_pool(cal.lib)
        w = time_window(target, **protocol.window_settings())
        return {**w, "calibration_s": c["window_min_s"], "output_checksum": target.checksum(),
                "input_bytes": getattr(target, "input_bytes", None)}  # fmt: skip

    return measure_in_child(measure, protocol.timeout_s)


class ProgramTiming:
    """The protocol applied to the candidates of one program: windows, then labels.

    ``measure_window(candidate_row)`` times one window and returns a partial sample row
    (:func:`time_window_in_child`, given the compiler's ``load()``); the rounds, the slow
    flags, the re-measurements and the labels are the same for every compiler.
    """

    def __init__(self, candidates: pl.DataFrame, measure_window, protocol: Protocol, machine: dict,
                 timing_pass: int = 1) -> None:  # fmt: skip
        self.cands = {c["schedule_id"]: c for c in candidates.iter_rows(named=True)}
        self.measure_window, self.protocol = measure_window, protocol
        self.machine, self.timing_pass = machine, timing_pass
        self.failed: dict[str, tuple[str, str]] = {}
        self.samples: list[dict] = []
        self.t0 = time.perf_counter()

    def window(self, sid: str, rnd: int, pos: int) -> None:
        cand = self.cands[sid]
        started = time.perf_counter() - self.t0
        r = self.measure_window(cand)
        self.samples.append({
            "program_id": cand["program_id"], "schedule_id": sid, "machine_id": self.machine["machine_id"],
            "timing_pass": self.timing_pass, "round": rnd, "position": pos, "started_s": started,
            "status": r["status"], "error": r.get("error", ""), "window_min_s": r.get("window_min_s"),
            "window_median_s": r.get("window_median_s"), "n_runs": r.get("n_runs"),
            "calibration_s": r.get("calibration_s"), "slow": False,
            "output_checksum": r.get("output_checksum"), "input_bytes": r.get("input_bytes"),
        })  # fmt: skip
        if r["status"] != "ok":
            self.failed[sid] = (r["status"], f"round {rnd}: {r['error']}")
        print(f"{cand['program_id']} {sid} pass {self.timing_pass} round {rnd}: {r['status']}"
              + (f" {r['window_min_s'] * 1e3:.4f} ms (calibration {r['calibration_s'] * 1e3:.4f} ms)"
                 if r["status"] == "ok" else f" ({r['error'][:200]})"), file=sys.stderr)  # fmt: skip

    def timed_ids(self) -> list[str]:
        return [s for s, c in self.cands.items() if c["compile_status"] == "ok"]

    def reflag(self) -> None:
        """Flag the windows timed while the machine was slow (against the whole job so far)."""
        ok = [s for s in self.samples if s["status"] == "ok"]
        slow = flag_slow(np.array([s["calibration_s"] for s in ok], float), self.protocol.slow_factor)
        for s, flag in zip(ok, slow):
            s["slow"] = bool(flag)

    def good_windows(self) -> dict[str, np.ndarray]:
        """Each candidate still timed: its good windows so far (seconds per run)."""
        good: dict[str, list[float]] = {s: [] for s in self.timed_ids() if s not in self.failed}
        for s in self.samples:
            if s["status"] == "ok" and not s["slow"] and s["schedule_id"] in good:
                good[s["schedule_id"]].append(s["window_min_s"])
        return {s: np.array(w) for s, w in good.items()}

    def run(self) -> None:
        p, salt = self.protocol, f"{next(iter(self.cands.values()), {}).get('program_id', '')}:{self.timing_pass}"
        for rnd, order in enumerate(round_orders(self.timed_ids(), p.rounds, p.seed, salt), start=1):
            for pos, sid in enumerate(order):
                if sid not in self.failed:
                    self.window(sid, rnd, pos)
        for extra in range(1, p.max_extra_rounds + 1):
            self.reflag()
            todo = needs_more(self.good_windows(), p.rounds, p.agree_rel)
            if not todo:
                break
            # Slow windows, or fastest windows that disagree, get an extra round, shuffled like the others.
            for pos, sid in enumerate(round_orders(todo, 1, p.seed, f"{salt}:extra{extra}")[0]):
                self.window(sid, p.rounds + extra, pos)
        self.reflag()

    def measurement(self, sid: str, fast_cal: float) -> dict:
        """The measurement row of one candidate; ``fast_cal`` is the job's fast calibration time."""
        cand = self.cands[sid]
        row = {"program_id": cand["program_id"], "schedule_id": sid, "machine_id": self.machine["machine_id"],
               "timing_pass": self.timing_pass, "compile_time_s": cand["compile_time_s"],
               "label_method": self.protocol.aggregate,
               "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
        mine = [s for s in self.samples if s["schedule_id"] == sid]
        ok = [s for s in mine if s["status"] == "ok"]
        row["n_windows"], row["n_slow_windows"] = len(mine), sum(s["slow"] for s in ok)
        if cand["compile_status"] != "ok":
            return {**row, "status": cand["compile_status"], "error": cand["compile_error"]}
        if sid in self.failed:
            status, error = self.failed[sid]
            return {**row, "status": status, "error": error}
        good = [s for s in ok if not s["slow"]] or ok  # every window slow: the best we have
        w = np.array([s["window_min_s"] for s in good])
        c = np.array([s["calibration_s"] for s in good])
        return {
            **row, "status": "ok", "error": "",
            "runtime_s": protocol_label(w, c, self.protocol.aggregate, fast_cal),
            "runtime_min_s": float(w.min()), "runtime_median_s": float(np.median(w)),
            "runtime_p10_s": float(np.quantile(w, 0.1)), "runtime_p90_s": float(np.quantile(w, 0.9)),
            "runtime_rel_spread": float(w.max() / w.min() - 1.0), "n_good_windows": len(good),
            "calibration_s": float(np.median(c)), "input_bytes": good[-1]["input_bytes"],
            "output_checksum": good[-1]["output_checksum"],
        }  # fmt: skip

    def tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(measurements, timing_samples) of this program."""
        fast = fast_calibration(np.array([s["calibration_s"] for s in self.samples if s["status"] == "ok"]))
        rows = [self.measurement(s, fast) for s in self.cands]
        meas = pl.from_arrow(schema.from_rows("measurements", rows))
        samples = pl.from_arrow(schema.from_rows("timing_samples", self.samples))
        return meas, samples


def time_program(candidates: pl.DataFrame, load_for, protocol: Protocol, calibration_lib, machine: dict,
                 timing_pass: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """Measurement rows (one per candidate; failed compiles and failed windows are rows too)
    and the raw timing windows of one program's candidates, timed by the protocol."""
    def measure_window(cand: dict) -> dict:
        return time_window_in_child(load_for(cand), calibration_lib, protocol)

    timing = ProgramTiming(candidates, measure_window, protocol, machine, timing_pass)
    timing.run()
    return timing.tables()


def prepare_timing(protocol: Protocol, env_var: str = "HL_NUM_THREADS") -> int:
    """Set up this process for timing: the thread pool's size (``env_var``, read by the
    runtime in every forked child) and, with ``protocol.pin``, the cores it runs on (the
    last ``threads`` of those allowed, away from core 0 where the system's own work tends
    to land). Returns the thread count."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    threads = protocol.threads or len(allowed) or os.cpu_count() or 1
    os.environ[env_var] = str(threads)
    if protocol.pin and allowed and threads < len(allowed):
        os.sched_setaffinity(0, allowed[-threads:])
    return threads


@contextlib.contextmanager
def pinned_for_timing(protocol: Protocol, env_var: str = "HL_NUM_THREADS"):
    """:func:`prepare_timing` for a process that goes on afterwards (``perfgraph tune``, a
    test, a notebook): yields the thread count and gives back the cores and ``env_var``."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    before = os.environ.get(env_var)
    try:
        yield prepare_timing(protocol, env_var)
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        if before is None:
            os.environ.pop(env_var, None)
        else:
            os.environ[env_var] = before


def selected_for_retime(schedule_id: str, fraction: float, salt: str = "noise") -> bool:
    """Deterministic, hash-based choice of the schedules re-timed for the noise floor."""
    h = int(hashlib.sha256(f"{salt}:{schedule_id}".encode()).hexdigest()[:8], 16)
    return h < fraction * 0x100000000


def retime_selection(candidates: pl.DataFrame, fraction: float) -> pl.DataFrame:
    """The candidates of the drift re-time: a fixed share of those that compiled and carry a
    featurization (the schedules models are scored on)."""
    keep = [selected_for_retime(s, fraction) for s in candidates["schedule_id"].to_list()]
    return candidates.filter(
        pl.Series(keep, dtype=pl.Boolean) & (pl.col("compile_status") == "ok") & pl.col("has_featurization")
    )


def retime_programs(programs, out_path, samples_path, protocol: Protocol, fraction: float, calibration_lib,
                    machine: dict) -> None:  # fmt: skip
    """The drift pass (timing pass 2) over ``programs`` = ``[(candidates, load_for)]``, for
    either compiler: a fixed share of each program's schedules, re-timed by the protocol after
    every program's first pass; writes the measurements and their windows."""
    meas, samples = [], []
    for cands, load_for in programs:
        cands = retime_selection(cands, fraction)
        if cands.height:
            m, s = time_program(cands, load_for, protocol, calibration_lib, machine, timing_pass=2)
            meas.append(m)
            samples.append(s)
    schema.write_table("timing_samples", concat_or_empty("timing_samples", samples), samples_path)
    schema.write_table("measurements", concat_or_empty("measurements", meas), out_path)


def concat_or_empty(table_name: str, frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([pl.from_arrow(schema.from_rows(table_name, [])), *frames])
