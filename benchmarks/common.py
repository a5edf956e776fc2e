"""What every benchmark script records beside its figures, and how it writes them.

A figure without the machine and the load it was taken under is not comparable, so
each result JSON carries :func:`environment` (host, CPU, cores, load average before
and after, library versions, git commit) and is written atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from featurize.schema import write_json  # noqa: E402
from pipelines.bench import cpu_model, package_versions  # noqa: E402,F401  (cpu_model: re-exported for the benchmarks)

BENCH_DIR = ROOT / "results/bench"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def environment() -> dict:
    """The machine and software a figure was measured on."""
    versions = package_versions(("polars", "pyarrow", "duckdb", "torch", "torch_geometric", "xgboost", "halide", "snakemake"))
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "n_cores": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "git_commit": git_commit(),
        "versions": versions,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def timed(fn: Callable[[], object], repeats: int, warmup: int = 0) -> dict:
    """Wall seconds of ``fn()``: median, min and max over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def write_result(result: dict, out: str | os.PathLike) -> Path:
    """Add the environment (with the load average now) and write ``out`` atomically."""
    env = result.setdefault("environment", environment())
    env["load_avg_1m_after"] = os.getloadavg()[0]
    out = Path(out)
    write_json(result, out)
    print(json.dumps(result, indent=1, default=str))
    print(f"wrote {out}", file=sys.stderr)
    return out
